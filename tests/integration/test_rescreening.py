"""Re-screening end to end (issue 5): an officer activates a rule-pack version over HTTP, and a
real Celery worker re-checks the open trades and flags the live grants it affects.

Here rather than in tests/compliance because the worker is session-wide: once started, it takes
every task enqueued after it, which the direct-call concurrency tests must not see.
"""

import time

import pytest

from marketplace.models import GrantFlag, Membership, Rescreening, Trade
from tests.compliance.test_rulepack_lifecycle import RULEPACKS, backtested, draft_without_switzerland, today
from tests.conftest import wait_for_status
from tests.factories import MembershipFactory, OrganisationFactory


@pytest.fixture
def buyer_ch(db: None) -> Membership:
    return MembershipFactory(organisation=OrganisationFactory(name="Zürich Analytics AG", jurisdiction="CH"), role=Membership.Role.BUYER)


def wait_for(predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.05)
    return result


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_activation_re_screens_through_the_worker(celery_worker, rulepacks, client_for, officer, second_officer, buyer_ch, buyer_us,
                                                  eu_personal):
    """HTTP activation → commit → signal → re-screening task → open trade re-checked by the worker,
    live grant flagged; no eager mode anywhere."""

    def purchase(buyer: Membership) -> str:
        response = client_for(buyer).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json")
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    to_swiss, to_us = purchase(buyer_ch), purchase(buyer_us)
    wait_for_status(to_swiss, {"settled"})
    wait_for_status(to_us, {"needs_documents"})
    api = client_for(officer)
    draft = draft_without_switzerland(api)
    backtested(api, draft["id"])

    # the author backtested it; a second officer, who wrote none of it, approves it by activating it
    activated = client_for(second_officer).post(f"{RULEPACKS}{draft['id']}/activate/", {"effective_from": today()}, format="json")

    assert activated.status_code == 200, activated.json()
    flag = wait_for(lambda: GrantFlag.objects.filter(grant__trade_id=to_swiss).first())
    assert flag.rulepack_ref == "eu@2026.12.01" and flag.decision["outcome"] == "needs_mechanism"
    run = wait_for(lambda: Rescreening.objects.filter(rulepack_id=draft["id"], finished_at__isnull=False).first())
    assert run.trades_rechecked == 1 and run.grants_flagged == 1

    def rechecked() -> bool:
        trade = Trade.objects.get(pk=to_us)
        return trade.status == "needs_documents" and trade.decision.rulepacks == ["sanctions@2025.07.01", "eu@2026.12.01"]

    wait_for(rechecked)
    moves = [(e.from_status, e.to_status, e.reason) for e in Trade.objects.get(pk=to_us).events.order_by("at", "id")]
    assert ("needs_documents", "checking", "rule pack eu@2026.12.01 activated") in moves
    assert moves[-1][:2] == ("checking", "needs_documents")
    assert [f["id"] for f in api.get("/api/v1/reviews/grants/").json()["results"]] == [str(flag.id)]
