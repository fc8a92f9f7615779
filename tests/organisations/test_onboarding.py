"""Onboarding over HTTP: an organisation applies, cannot trade until an officer verifies it (two
officers when screening finds something), then trades; its administrator invites members; changes
of legal facts are versions with history; officers are e-mailed about every item waiting for them."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.models import Dataset, Membership, Notification, Organisation, OrganisationFacts, Trade
from marketplace.services.notifications import notifications_digest, notifications_sweep
from marketplace.services.organisations import organisation_certifications_lapse
from marketplace.services.trade_compliance import trade_check_compliance
from tests.evidence import upload_document
from tests.factories import fund
from tests.organisations.sanctions import import_ofac

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def emails(db: None) -> Iterator[None]:
    """Everyone made by the factories gets an e-mail address (notifications go to it)."""
    from django.db.models.signals import post_save

    def give(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        if created and not instance.email:
            type(instance).objects.filter(pk=instance.pk).update(email=f"{instance.username}@example.com")
            instance.email = f"{instance.username}@example.com"

    post_save.connect(give, sender=get_user_model(), dispatch_uid="test-emails")
    yield
    post_save.disconnect(dispatch_uid="test-emails", sender=get_user_model())


def application(name: str = "Lisbon Weather Analytics Lda", **changes: Any) -> dict[str, Any]:
    organisation = {
        "legal_name": name,
        "registration_number": "PT-514 201 330",
        "register": "Registo Comercial de Lisboa",
        "jurisdiction": "PT",
        "headquarters": "PT",
        "kind": "company",
        "owners": [
            {"name": "Maria Silva", "jurisdiction": "PT", "share": 70, "kind": "owner"},
            {"name": "Atlantic Capital SGPS", "jurisdiction": "PT", "share": 30, "kind": "owner"},
        ],
        "certifications": [],
        "aliases": ["LWA"],
        "contact": {"name": "Maria Silva", "email": "maria@lwa.example"},
        "documents": [
            {"title": "Certidão permanente", "reference": "https://example.pt/certidao/1234", "sha256": "a" * 64}
        ],
        **changes,
    }
    return {
        "organisation": organisation,
        "admin": {"username": "maria", "email": "maria@lwa.example", "password": PASSWORD},
    }


def login(client: Any, username: str) -> Any:
    token = client.post("/api/v1/auth/token/", {"username": username, "password": PASSWORD}, format="json").json()[
        "token"
    ]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def send_outbox() -> None:
    notifications_sweep(older_than=timedelta(0))


def test_a_new_organisation_applies_is_verified_and_trades(
    client, client_for, officer, rulepacks, eu_public, mailoutbox
):
    response = client.post("/api/v1/organisations/apply/", application(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    org_id, facts_id = body["organisation"]["id"], body["facts"]["id"]
    assert body["organisation"]["status"] == "applied" and body["facts"]["second_officer_reasons"] == []
    send_outbox()
    assert [m.to for m in mailoutbox] == [[officer.user.email]] and "applied to join" in mailoutbox[0].subject

    admin = login(client, "maria")
    invited = admin.post(
        f"/api/v1/organisations/{org_id}/invitations/", {"email": "joao@lwa.example", "role": "buyer"}, format="json"
    )
    assert invited.status_code == 201, invited.json()
    send_outbox()
    invitation_mail = mailoutbox[-1]
    assert invitation_mail.to == ["joao@lwa.example"]
    token = invitation_mail.body.split("?token=")[1].split()[0]
    anonymous = client_for(None)
    joined = anonymous.post(
        "/api/v1/invitations/accept/", {"token": token, "username": "joao", "password": PASSWORD}, format="json"
    )
    assert joined.status_code == 201 and joined.json()["role"] == "buyer"
    assert (
        anonymous.post(
            "/api/v1/invitations/accept/", {"token": token, "username": "joao2", "password": PASSWORD}, format="json"
        ).json()["code"]
        == "invitation_invalid"
    )  # used once
    fund(Organisation.objects.get(pk=org_id))

    buyer = login(client_for(None), "joao")
    refused = buyer.post("/api/v1/trades/", {"dataset": str(eu_public.id)}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "organisation_not_verified"
    assert not Trade.objects.exists()

    verified = client_for(officer).post(
        f"/api/v1/organisation-facts/{facts_id}/verify/",
        {"decision": "accept", "reason": "register checked"},
        format="json",
    )
    assert verified.status_code == 200, verified.json()
    assert verified.json()["status"] == "verified" and verified.json()["valid_from"]
    organisation = Organisation.objects.get(pk=org_id)
    assert (organisation.status, organisation.facts_version, organisation.owner_jurisdictions) == (
        "verified",
        1,
        ["PT"],
    )

    bought = buyer.post("/api/v1/trades/", {"dataset": str(eu_public.id)}, format="json")
    assert bought.status_code == 201, bought.json()
    trade = trade_check_compliance(trade_id=bought.json()["id"])
    assert trade.status in (Trade.Status.APPROVED, Trade.Status.SETTLED)
    assert trade.decision.facts["parties"]["records"]["buyer"] == f"org:{org_id}@v1"  # which verified version it used


def test_bad_applications_are_400s_that_create_nothing(client):
    bad = application(jurisdiction="Narnia", owners=[{"name": "X", "jurisdiction": "PT", "share": 170}])
    bad["admin"]["password"] = "short"

    response = client.post("/api/v1/organisations/apply/", bad, format="json")

    assert response.status_code == 400
    assert {"jurisdiction", "owners[0].share"} <= set(response.json()["fields"])
    assert not Organisation.objects.exists()
    client.post("/api/v1/organisations/apply/", application(), format="json")
    again = client.post(
        "/api/v1/organisations/apply/",
        {**application(), "admin": {**application()["admin"], "username": "other"}},
        format="json",
    )
    assert again.status_code == 409 and again.json()["code"] == "organisation_name_taken"


def test_a_screening_hit_or_a_sanctioned_owner_needs_two_officers(
    client, client_for, officer, second_officer, rulepacks, mailoutbox
):
    import_ofac("ofac-v2")
    body = application(
        "Northwinds Trade Lda", owners=[{"name": "Ivan Petrov", "jurisdiction": "RU", "share": 40, "kind": "owner"}]
    )
    facts = client.post("/api/v1/organisations/apply/", body, format="json").json()["facts"]
    assert (
        facts["second_officer_reasons"] == [] and facts["screening"] == []
    )  # what screening found is for officers only
    reasons = client_for(officer).get(f"/api/v1/organisation-facts/{facts['id']}/").json()["second_officer_reasons"]
    assert any("NORTHWIND TRADING LLC" in r for r in reasons) and any(
        "owner 'Ivan Petrov' is in RU" in r for r in reasons
    )

    first = client_for(officer).post(
        f"/api/v1/organisation-facts/{facts['id']}/verify/", {"decision": "accept"}, format="json"
    )
    assert first.status_code == 202 and first.json()["status"] == "pending"
    send_outbox()
    assert any(
        m.to == [second_officer.user.email] and "second officer is needed" in m.subject for m in mailoutbox
    )  # four eyes
    same = client_for(officer).post(
        f"/api/v1/organisation-facts/{facts['id']}/verify/", {"decision": "accept"}, format="json"
    )
    assert same.status_code == 409 and same.json()["code"] == "second_officer_required"
    second = client_for(second_officer).post(
        f"/api/v1/organisation-facts/{facts['id']}/verify/", {"decision": "accept"}, format="json"
    )
    assert second.status_code == 200 and second.json()["status"] == "verified"
    assert second.json()["first_accepted_by"] == officer.user.username


def test_a_rejected_application_says_why_and_cannot_trade(client, client_for, officer):
    facts = client.post("/api/v1/organisations/apply/", application(), format="json").json()["facts"]
    no_reason = client_for(officer).post(
        f"/api/v1/organisation-facts/{facts['id']}/verify/", {"decision": "reject"}, format="json"
    )
    assert no_reason.status_code == 400
    rejected = client_for(officer).post(
        f"/api/v1/organisation-facts/{facts['id']}/verify/",
        {"decision": "reject", "reason": "registration number not in the register"},
        format="json",
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert Organisation.objects.get(pk=facts["organisation"]).status == "rejected"
    admin = login(client, "maria")
    mine = admin.get(f"/api/v1/organisations/{facts['organisation']}/facts/").json()
    assert mine[0]["reason"] == "registration number not in the register"


def _verified_org(client: Any, client_for: Any, officer: Membership) -> tuple[Any, str]:
    body = client.post("/api/v1/organisations/apply/", application(), format="json").json()
    client_for(officer).post(
        f"/api/v1/organisation-facts/{body['facts']['id']}/verify/", {"decision": "accept"}, format="json"
    )
    return login(client, "maria"), body["organisation"]["id"]


def test_changes_of_legal_facts_are_verified_versions_with_history(
    client, client_for, officer, rulepacks, django_capture_on_commit_callbacks
):
    admin, org_id = _verified_org(client, client_for, officer)
    changed = application(
        headquarters="ES",
        certifications=[
            {
                "code": "us_dpf",
                "evidence": "DPF list entry 123",
                "valid_until": str(timezone.localdate() + timedelta(days=30)),
            }
        ],
    )
    request = admin.post(
        f"/api/v1/organisations/{org_id}/facts/", {"organisation": changed["organisation"]}, format="json"
    )
    assert request.status_code == 201 and request.json()["number"] == 2
    again = admin.post(
        f"/api/v1/organisations/{org_id}/facts/", {"organisation": changed["organisation"]}, format="json"
    )
    assert again.status_code == 409 and again.json()["code"] == "organisation_facts_pending"
    assert Organisation.objects.get(pk=org_id).headquarters == "PT"  # it trades on the verified version meanwhile

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_for(officer).post(
            f"/api/v1/organisation-facts/{request.json()['id']}/verify/", {"decision": "accept"}, format="json"
        )

    assert any("_rescreen_organisation" in repr(c) for c in callbacks)  # its trades and grants are screened again
    history = admin.get(f"/api/v1/organisations/{org_id}/facts/").json()
    assert [(v["number"], v["status"], v["valid_to"] is None) for v in history] == [
        (1, "verified", False),
        (2, "verified", True),
    ]
    organisation = Organisation.objects.get(pk=org_id)
    assert (organisation.headquarters, organisation.certifications, organisation.facts_version) == ("ES", ["us_dpf"], 2)

    organisation_certifications_lapse(day=timezone.localdate() + timedelta(days=31))
    assert Organisation.objects.get(pk=org_id).certifications == []  # the evidence expired: it lapses on its own


def test_only_the_administrator_manages_members_and_officer_is_the_operators_role(client, client_for, officer):
    admin, org_id = _verified_org(client, client_for, officer)
    refused = admin.post(
        f"/api/v1/organisations/{org_id}/invitations/", {"email": "x@lwa.example", "role": "officer"}, format="json"
    )
    assert refused.status_code == 400 and refused.json()["code"] == "role_not_allowed"
    maria = Membership.objects.get(user__username="maria")
    last = admin.patch(f"/api/v1/organisations/{org_id}/members/{maria.user_id}/", {"role": "buyer"}, format="json")
    assert last.status_code == 409 and last.json()["code"] == "last_administrator"
    assert (
        client_for(officer)
        .post(f"/api/v1/organisations/{org_id}/invitations/", {"email": "y@x.example", "role": "buyer"}, format="json")
        .status_code
        == 403
    )


def test_the_operators_admin_creates_officers_by_invitation(client_for, operator, mailoutbox):
    admin = Membership.objects.create(
        user=Membership._meta.get_field("user").related_model.objects.create_user(
            username="root-admin", email="admin@elementa.example", password=PASSWORD
        ),
        organisation=operator,
        role="admin",
    )
    response = client_for(admin).post(
        f"/api/v1/organisations/{operator.id}/invitations/",
        {"email": "o3@elementa.example", "role": "officer"},
        format="json",
    )
    assert response.status_code == 201
    send_outbox()
    token = mailoutbox[-1].body.split("?token=")[1].split()[0]
    joined = client_for(None).post(
        "/api/v1/invitations/accept/", {"token": token, "username": "officer-3", "password": PASSWORD}, format="json"
    )
    assert joined.status_code == 201 and Membership.objects.get(user__username="officer-3").role == "officer"


def test_an_expired_or_forged_invitation_is_refused(client, client_for, officer, settings):
    admin, org_id = _verified_org(client, client_for, officer)
    admin.post(
        f"/api/v1/organisations/{org_id}/invitations/", {"email": "late@lwa.example", "role": "buyer"}, format="json"
    )
    forged = signing.TimestampSigner(salt="something-else").sign("00000000-0000-0000-0000-000000000000")
    settings.ELEMENTA_INVITATION_MAX_AGE_HOURS = -1
    token = Notification.objects.filter(email="late@lwa.example").get().body.split("?token=")[1].split()[0]
    for t in (token, forged):
        response = client_for(None).post(
            "/api/v1/invitations/accept/", {"token": t, "username": "late", "password": PASSWORD}, format="json"
        )
        assert response.status_code == 400 and response.json()["code"] == "invitation_invalid"


def test_officers_are_emailed_for_each_waiting_item_and_get_a_digest(
    client, client_for, officer, buyer_eu, eu_health, mailoutbox, rulepacks, settings
):
    client.post("/api/v1/organisations/apply/", application(), format="json")  # onboarding
    trade = trade_check_compliance(
        trade_id=client_for(buyer_eu)
        .post("/api/v1/trades/", {"dataset": str(eu_health.id)}, format="json")
        .json()["id"]
    )
    assert trade.status == Trade.Status.IN_REVIEW  # review
    upload_document(client_for(buyer_eu), trade.id, "eu_tia")  # evidence
    send_outbox()

    to_officer = [m.subject for m in mailoutbox if m.to == [officer.user.email]]
    assert any("applied to join" in s for s in to_officer)
    assert any("waits for review" in s for s in to_officer)
    assert any("evidence waits" in s for s in to_officer)
    assert any(m.to == [buyer_eu.user.email] and "is now in_review" in m.subject for m in mailoutbox)  # the parties

    settings.ELEMENTA_NOTIFY_DIGEST_AFTER_HOURS = 0
    assert notifications_digest() >= 1
    send_outbox()
    digest = next(m for m in mailoutbox if "waiting more than" in m.subject)
    assert "1 trades in review" in digest.body and "legal facts awaiting verification" in digest.body


def test_a_user_turns_a_kind_of_notification_off(client_for, buyer_eu, eu_health, rulepacks, mailoutbox):
    client = client_for(buyer_eu)
    response = client.patch("/api/v1/me/notifications/", {"enabled": {"trade_status": False}}, format="json")
    assert response.status_code == 200
    assert {k["kind"]: k["enabled"] for k in response.json()["kinds"]}["trade_status"] is False
    assert client.patch("/api/v1/me/notifications/", {"enabled": {"nonsense": True}}, format="json").status_code == 400

    trade_check_compliance(
        trade_id=client.post("/api/v1/trades/", {"dataset": str(eu_health.id)}, format="json").json()["id"]
    )
    send_outbox()
    assert not [m for m in mailoutbox if m.to == [buyer_eu.user.email]]


def test_seeded_and_factory_organisations_trade_as_verified(buyer_eu, eu_public):
    assert buyer_eu.organisation.status == "verified" and eu_public.provider.status == "verified"
    assert Dataset.objects.filter(pk=eu_public.pk, status="published").exists()
    assert OrganisationFacts.objects.count() == 0


def test_parties_hear_once_that_a_grant_expires_soon(buyer_eu, eu_public, mailoutbox):
    from marketplace.models import AccessGrant
    from marketplace.services.notifications import notifications_grants_expiring
    from marketplace.services.settlement import trade_settle
    from tests.factories import TradeFactory

    trade = TradeFactory(dataset=eu_public, buyer=buyer_eu.organisation, status=Trade.Status.APPROVED)
    trade_settle(trade_id=trade.id)
    AccessGrant.objects.filter(trade=trade).update(valid_until=timezone.now() + timedelta(days=3))

    assert notifications_grants_expiring() == 1
    assert notifications_grants_expiring() == 0  # once
    send_outbox()
    assert any(m.to == [buyer_eu.user.email] and "expires on" in m.subject for m in mailoutbox)
