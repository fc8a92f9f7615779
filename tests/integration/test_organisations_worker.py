"""Party screening and notifications through a real Celery worker: importing a new sanctions-list
version re-screens a live grant after commit; officers' e-mails are sent by the worker from the outbox."""

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from compliance.models import SanctionsList
from marketplace.models import AccessGrant, GrantFlag, Notification, Trade
from marketplace.services.settlement import trade_settle
from tests.factories import MembershipFactory, OrganisationFactory, TradeFactory
from tests.organisations.sanctions import FIXTURES
from tests.organisations.test_onboarding import application


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.05)
    return result


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_new_list_version_flags_a_live_grant_through_the_worker(celery_worker, rulepacks, eu_public):
    call_command("import_sanctions_list", str(FIXTURES / "ofac-v1"), source="ofac_sdn")
    buyer = MembershipFactory(organisation=OrganisationFactory(name="Northwind Trading Ltd", jurisdiction="DE"))
    trade = TradeFactory(dataset=eu_public, buyer=buyer.organisation, status=Trade.Status.APPROVED)
    trade_settle(trade_id=trade.id)
    grant = AccessGrant.objects.get(trade=trade)
    assert not GrantFlag.objects.exists()

    call_command("import_sanctions_list", str(FIXTURES / "ofac-v2"), source="ofac_sdn")

    snapshot = SanctionsList.objects.order_by("-imported_at").first()
    assert snapshot is not None
    flag = wait_for(lambda: GrantFlag.objects.filter(grant=grant).first())
    assert flag.rulepack_ref == f"list:{snapshot.ref}" and flag.decision["outcome"] == "deny"
    assert wait_for(lambda: AccessGrant.objects.get(pk=grant.pk).suspended_at is not None)
    assert wait_for(lambda: SanctionsList.objects.get(pk=snapshot.pk).rescreened_at is not None)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_emails_officers_about_an_application(celery_worker, officer):
    officer.user.email = "officer@elementa.example"
    officer.user.save()
    started = timezone.now().timestamp()

    response = APIClient().post("/api/v1/organisations/apply/", application("Worker Test Lda"), format="json")

    assert response.status_code == 201
    wait_for(lambda: Notification.objects.filter(kind="onboarding_waiting", sent_at__isnull=False).exists())
    folder = Path(settings.VAR_DIR) / "mail"
    sent = [p.read_text() for p in folder.glob("*.log") if p.stat().st_mtime >= started - 1]
    assert any("To: officer@elementa.example" in m and "Worker Test Lda applied to join" in m for m in sent)
