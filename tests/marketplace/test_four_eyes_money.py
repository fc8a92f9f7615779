"""Segregation of duties where money moves: nobody approves a deposit they asked for, an
officer's direct credit needs a second officer, and a refund over the threshold needs two."""

from decimal import Decimal

import pytest

from marketplace.models import Deposit, LedgerTransaction, RefundRequest, Trade
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db

DEPOSITS = "/api/v1/wallet/deposits/"


def balances(client) -> dict[str, tuple[str, str]]:
    return {b["currency"]: (b["available"], b["held"]) for b in client.get("/api/v1/wallet/").json()["balances"]}


# --- deposits -----------------------------------------------------------------------------------


def test_an_officer_cannot_approve_the_deposit_they_requested(client_for, officer, second_officer, buyer_us):
    me = client_for(officer)
    requested = me.post(DEPOSITS, {"amount": "1000.00", "currency": "EUR"}, format="json").json()

    own = me.post(f"{DEPOSITS}{requested['id']}/approve/", {"note": "trust me"}, format="json")
    colleague = client_for(second_officer).post(
        f"{DEPOSITS}{requested['id']}/approve/", {"note": "for the team"}, format="json"
    )

    assert own.status_code == 409 and own.json()["code"] == "same_person_not_allowed"
    # nor does a colleague credit their own organisation: only the payment provider's confirmation could
    assert colleague.status_code == 403 and colleague.json()["code"] == "own_organisation"
    assert Deposit.objects.get(pk=requested["id"]).status == "pending"
    assert "EUR" not in balances(me) and not LedgerTransaction.objects.filter(deposit_id=requested["id"]).exists()


def test_a_members_deposit_is_credited_by_an_officer_and_audited(client_for, officer, buyer_us):
    buyer = client_for(buyer_us)
    before = Decimal(balances(buyer)["EUR"][0])
    requested = buyer.post(DEPOSITS, {"amount": "1000.00", "currency": "EUR"}, format="json").json()

    approved = client_for(officer).post(f"{DEPOSITS}{requested['id']}/approve/", {"note": "SEPA seen"}, format="json")

    assert approved.status_code == 200 and approved.json()["status"] == "credited"
    assert Decimal(balances(buyer)["EUR"][0]) == before + Decimal("1000.00")
    event = client_for(officer).get("/api/v1/audit/?kind=deposit.credited").json()["results"][-1]
    assert event["actor_label"] == officer.user.username and event["data"]["requested_by"] == buyer_us.user.username


def test_a_direct_credit_needs_a_second_officer(client_for, officer, second_officer, buyer_us):
    org = str(buyer_us.organisation_id)
    before = balances(client_for(buyer_us))["EUR"]
    first = client_for(officer)

    requested = first.post(
        DEPOSITS, {"amount": "1000.00", "currency": "EUR", "organisation": org, "note": "wire 42"}, format="json"
    )
    own = first.post(f"{DEPOSITS}{requested.json()['id']}/approve/")

    assert requested.status_code == 201, requested.json()
    assert (requested.json()["status"], requested.json()["awaiting"], requested.json()["direct"]) == (
        "pending",
        "second_officer",
        True,
    )
    assert own.status_code == 409 and own.json()["code"] == "same_person_not_allowed"
    assert balances(client_for(buyer_us))["EUR"] == before  # nothing moved

    confirmed = client_for(second_officer).post(f"{DEPOSITS}{requested.json()['id']}/approve/")
    twice = client_for(second_officer).post(f"{DEPOSITS}{requested.json()['id']}/approve/")

    assert (
        confirmed.status_code == 200
        and confirmed.json()["status"] == "credited"
        and confirmed.json()["note"] == "wire 42"
    )
    assert twice.status_code == 409 and twice.json()["code"] == "deposit_not_pending"
    assert Decimal(balances(client_for(buyer_us))["EUR"][0]) == Decimal(before[0]) + Decimal("1000.00")
    assert LedgerTransaction.objects.filter(deposit_id=requested.json()["id"]).count() == 1


def test_a_rejected_deposit_is_audited_with_who_rejected_it(client_for, officer, buyer_us):
    requested = client_for(buyer_us).post(DEPOSITS, {"amount": "25.00", "currency": "EUR"}, format="json").json()

    rejected = client_for(officer).post(
        f"{DEPOSITS}{requested['id']}/reject/", {"note": "no transfer arrived"}, format="json"
    )

    assert (
        rejected.status_code == 200 and rejected.json()["status"] == "rejected" and rejected.json()["awaiting"] is None
    )
    [event] = client_for(officer).get("/api/v1/audit/?kind=deposit.rejected").json()["results"]
    assert event["actor_label"] == officer.user.username
    assert event["data"]["deposit"] == requested["id"] and event["data"]["note"] == "no transfer arrived"
    assert event["subject_id"] == str(buyer_us.organisation_id)


# --- refunds ------------------------------------------------------------------------------------


def settled_trade(client_for, buyer, provider, price: str) -> str:
    dataset = DatasetFactory.create(provider=provider.organisation, price=Decimal(price))
    trade_id = client_for(buyer).post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json").json()["id"]
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade_id)
    return trade_id


def test_a_refund_over_the_threshold_needs_two_officers(
    settings, client_for, buyer_eu, provider_eu, officer, second_officer
):
    settings.ELEMENTA_REFUND_FOUR_EYES_OVER = Decimal("1000")
    trade_id = settled_trade(client_for, buyer_eu, provider_eu, "1500.00")
    buyer_before = balances(client_for(buyer_eu))["EUR"]
    url = f"/api/v1/trades/{trade_id}/refund/"

    first = client_for(officer).post(url, {"reason": "dataset was empty"}, format="json")

    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["awaiting"] == "second_officer" and body["trade"]["status"] == "settled"
    assert (
        body["refund_request"]["requested_by"] == officer.user.username
        and body["refund_request"]["amount"] == "1500.00"
    )
    assert balances(client_for(buyer_eu))["EUR"] == buyer_before
    assert not LedgerTransaction.objects.filter(trade_id=trade_id, kind="refund").exists()

    again = client_for(officer).post(url, {"reason": "please"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "second_officer_required"

    second = client_for(second_officer).post(url, {"reason": "checked: the file is empty"}, format="json")

    assert second.status_code == 200, second.json()
    assert second.json()["status"] == "refunded" and second.json()["events"][-1]["reason"] == "dataset was empty"
    assert Decimal(balances(client_for(buyer_eu))["EUR"][0]) == Decimal(buyer_before[0]) + Decimal("1500.00")
    request = RefundRequest.objects.get(trade_id=trade_id)
    assert (request.status, request.requested_by, request.confirmed_by) == (
        "executed",
        officer.user,
        second_officer.user,
    )
    assert client_for(second_officer).post(url, {"reason": "thrice"}, format="json").status_code == 409
    kinds = [
        e["kind"]
        for e in client_for(officer).get(f"/api/v1/audit/?subject_id={trade_id}&kind=trade.refund").json()["results"]
    ]
    assert kinds == ["trade.refund_requested", "trade.refund_confirmed"]


def test_a_refund_at_or_under_the_threshold_needs_one_officer(settings, client_for, buyer_eu, provider_eu, officer):
    settings.ELEMENTA_REFUND_FOUR_EYES_OVER = Decimal("1000")
    trade_id = settled_trade(client_for, buyer_eu, provider_eu, "1000.00")

    response = client_for(officer).post(
        f"/api/v1/trades/{trade_id}/refund/", {"reason": "late delivery"}, format="json"
    )

    assert response.status_code == 200 and response.json()["status"] == "refunded"
    assert not RefundRequest.objects.exists()


def test_the_threshold_is_configurable(settings, client_for, buyer_eu, provider_eu, officer):
    settings.ELEMENTA_REFUND_FOUR_EYES_OVER = Decimal("50")
    trade_id = settled_trade(client_for, buyer_eu, provider_eu, "100.00")

    response = client_for(officer).post(
        f"/api/v1/trades/{trade_id}/refund/", {"reason": "late delivery"}, format="json"
    )

    assert response.status_code == 202 and response.json()["awaiting"] == "second_officer"
    assert Trade.objects.get(pk=trade_id).status == Trade.Status.SETTLED
