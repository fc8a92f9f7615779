"""End to end: HTTP API → commit → a real Celery worker process → decision → settlement.

No eager mode: the worker is a separate process on the configured broker (filesystem by default,
Redis in CI's second run) and the test database, so a task enqueued before commit would find no
trade and these tests would fail.
"""

import pytest

from compliance.models import ComplianceCheck
from marketplace.models import Notification, Settlement, Trade
from marketplace.services.sweeper import trades_sweep_stuck
from marketplace.services.trade_transitions import trade_enqueue
from tests.conftest import wait_for_status
from tests.evidence import accept_document, accept_mechanism, upload_document, upload_mechanism
from tests.factories import TradeFactory
from tests.waiting import eventually

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINAL = {"settled", "rejected", "cancelled", "needs_documents", "in_review"}


@pytest.fixture(autouse=True)
def _worker(celery_worker, rulepacks):
    """Every test here runs against the session's worker process and the shipped packs."""


def buy(client, dataset, **extra):
    response = client.post("/api/v1/trades/", {"dataset": str(dataset.id), **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_intra_eu_trade_settles_by_itself(client_for, buyer_eu, eu_personal):
    buyer = client_for(buyer_eu)
    trade_id = buy(buyer, eu_personal)

    wait_for_status(trade_id, {"settled"} | FINAL)

    body = buyer.get(f"/api/v1/trades/{trade_id}/").json()
    assert body["status"] == "settled"
    assert body["decision"]["outcome"] == "allow"
    assert "EU-INTRA-1" in [f["rule"] for f in body["decision"]["findings"]]
    assert [(e["from"], e["to"]) for e in body["events"]] == [
        ("", "checking"),
        ("checking", "approved"),
        ("approved", "settled"),
    ]
    assert Settlement.objects.filter(trade_id=trade_id).count() == 1
    # each member of both parties is told that it settled, once, by the worker's outbox drain (and,
    # at purchase, that it was being checked), never of the `approved` it passed through
    settled_told = eventually(lambda: list(Notification.objects.filter(
        kind="trade_status", subject=f"Trade {trade_id[:8]} is now settled", sent_at__isnull=False)) or None)
    assert sorted(n.user_id for n in settled_told) == sorted(
        [buyer_eu.user_id, *eu_personal.provider.memberships.values_list("user_id", flat=True)])
    assert not Notification.objects.filter(subject=f"Trade {trade_id[:8]} is now approved").exists()


def test_review_then_officer_approval_settles(client_for, buyer_eu, officer, eu_health):
    trade_id = buy(client_for(buyer_eu), eu_health)
    wait_for_status(trade_id, FINAL)
    officer_client = client_for(officer)

    queue = officer_client.get("/api/v1/reviews/").json()["results"]
    assert [t["id"] for t in queue] == [trade_id]
    assert "EU-ART9-1" in [f["rule"] for f in queue[0]["decision"]["findings"]]
    approved = officer_client.post(
        f"/api/v1/trades/{trade_id}/approve/",
        {"reason": "Art. 9(2)(a) explicit consent records reviewed"},
        format="json",
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    assert wait_for_status(trade_id, {"settled"}).settled_at is not None
    assert officer_client.get("/api/v1/reviews/").json()["count"] == 0


def test_review_then_rejection_never_settles(client_for, buyer_eu, officer, eu_health):
    trade_id = buy(client_for(buyer_eu), eu_health)
    wait_for_status(trade_id, FINAL)

    client_for(officer).post(
        f"/api/v1/trades/{trade_id}/reject/", {"reason": "no Art. 9(2) condition for resale"}, format="json"
    )

    assert Trade.objects.get(pk=trade_id).status == "rejected"
    assert not Settlement.objects.filter(trade_id=trade_id).exists()


def test_embargoed_buyer_is_rejected_by_the_engine(client_for, buyer_ir, eu_public):
    trade_id = buy(client_for(buyer_ir), eu_public)

    trade = wait_for_status(trade_id, FINAL)

    assert trade.status == "rejected"
    assert trade.decision.decision["findings"][0]["rule"] == "SAN-US-1"


def test_a_missing_mechanism_waits_for_documents_and_naming_it_at_purchase_does_not_help(
    client_for, buyer_us, eu_personal
):
    buyer = client_for(buyer_us)
    without = buy(buyer, eu_personal)
    claimed = buy(buyer, eu_personal, mechanisms=[{"code": "eu_scc"}, {"code": "eu_tia"}])

    assert wait_for_status(without, FINAL).status == "needs_documents"
    assert wait_for_status(claimed, FINAL).status == "needs_documents"
    for trade_id in (without, claimed):
        assert buyer.get(f"/api/v1/trades/{trade_id}/").json()["decision"]["requirements"] == [["eu_scc"], ["eu_tia"]]


def test_buyer_can_cancel_while_waiting(client_for, buyer_us, eu_personal):
    buyer = client_for(buyer_us)
    trade_id = buy(buyer, eu_personal)
    wait_for_status(trade_id, FINAL)

    assert buyer.post(f"/api/v1/trades/{trade_id}/cancel/").json()["status"] == "cancelled"


def test_a_lost_message_is_recovered_by_the_sweeper(settings, buyer_eu, eu_personal):
    """A trade committed in `checking` whose task never reached the broker (process died after
    commit) is picked up by the periodic sweep and settles."""
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation)  # no task was enqueued
    settings.ELEMENTA_STUCK_AFTER = settings.ELEMENTA_STUCK_AFTER * 0

    assert trades_sweep_stuck() == {"check": 1, "settle": 0, "to_review": 0, "settlement_stuck": 0}

    assert wait_for_status(trade.id, {"settled"}).status == "settled"


def test_duplicate_deliveries_decide_and_settle_once(buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation)

    for _ in range(10):
        trade_enqueue("check", str(trade.id))
    wait_for_status(trade.id, {"settled"})
    for _ in range(10):
        trade_enqueue("settle", str(trade.id))
    for _ in range(10):
        trade_enqueue("check", str(trade.id))
    # one more round trip through the worker's queue so every duplicate above has been handled
    from config.celery_app import noop

    for _ in range(4):
        noop.delay().get(timeout=30)

    trade.refresh_from_db()
    assert trade.status == "settled"
    assert ComplianceCheck.objects.filter(subject_id=trade.id).count() == 1
    assert Settlement.objects.filter(trade=trade).count() == 1
    assert [e.to_status for e in trade.events.all()] == ["approved", "settled"]


def test_documents_accepted_over_http_release_a_waiting_trade(client_for, buyer_us, provider_eu, officer, eu_personal):
    buyer = client_for(buyer_us)
    trade_id = buy(buyer, eu_personal)
    assert wait_for_status(trade_id, FINAL).status == "needs_documents"

    scc = upload_document(buyer, trade_id, "eu_scc", reference="SCC module 1")
    accept_document(client_for(officer), scc["id"])
    assert wait_for_status(trade_id, FINAL).status == "needs_documents"  # still missing the TIA
    tia = upload_document(client_for(provider_eu), trade_id, "eu_tia", approved_on="2026-01-15")
    accept_document(client_for(officer), tia["id"])

    assert wait_for_status(trade_id, {"settled", "rejected", "cancelled", "in_review"}).status == "settled"
    events = [(e["from"], e["to"], e["actor"]) for e in buyer.get(f"/api/v1/trades/{trade_id}/").json()["events"]]
    who = officer.user.username
    assert events == [("", "checking", buyer_us.user.username), ("checking", "needs_documents", "system:compliance"),
                      ("needs_documents", "checking", who), ("checking", "needs_documents", "system:compliance"),
                      ("needs_documents", "checking", who), ("checking", "approved", "system:compliance"),
                      ("approved", "settled", "system:settlement")]


def test_accepted_standing_mechanisms_let_trades_settle_directly(client_for, buyer_us, officer, eu_personal):
    buyer = client_for(buyer_us)
    for code in ("eu_scc", "eu_tia"):
        accept_mechanism(client_for(officer), upload_mechanism(buyer, code, valid_until="2030-12-31")["id"])

    assert wait_for_status(buy(buyer, eu_personal), {"settled"} | FINAL).status == "settled"

