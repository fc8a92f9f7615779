"""Money over HTTP and through the services: escrow at purchase, settlement, release, refunds,
deposits, statements. Every check reads balances back from the API or the ledger."""

from decimal import Decimal

import pytest

from marketplace.models import Deposit, LedgerEntry, LedgerTransaction, Trade, Wallet
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, fund

pytestmark = pytest.mark.django_db


def balances(client) -> dict[str, tuple[str, str]]:
    return {b["currency"]: (b["available"], b["held"]) for b in client.get("/api/v1/wallet/").json()["balances"]}


@pytest.fixture
def poor_buyer(db):
    membership = MembershipFactory(
        organisation=OrganisationFactory(name="Thin Wallet Ltd", jurisdiction="DE"), role="buyer", funded=False
    )
    fund(membership.organisation, "150.00", ("EUR",))
    return membership


def buy(client, dataset):
    return client.post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json")


def test_a_purchase_holds_the_price_in_escrow(client_for, poor_buyer, eu_personal):
    buyer = client_for(poor_buyer)

    response = buy(buyer, eu_personal)

    assert response.status_code == 201
    assert balances(buyer) == {"EUR": ("50.00", "100.00")}


def test_not_enough_funds_is_a_409_and_creates_nothing(client_for, poor_buyer, eu_personal):
    buyer = client_for(poor_buyer)
    assert buy(buyer, eu_personal).status_code == 201

    second = buy(buyer, eu_personal)

    assert second.status_code == 409 and second.json()["code"] == "insufficient_funds"
    assert Trade.objects.count() == 1 and LedgerTransaction.objects.filter(kind="hold").count() == 1
    assert balances(buyer) == {"EUR": ("50.00", "100.00")}


def test_settlement_pays_the_provider_less_the_fee_and_the_platform_the_fee(
    settings, client_for, poor_buyer, provider_eu, officer, eu_personal
):
    settings.ELEMENTA_PLATFORM_FEE = Decimal("0.05")
    trade_id = buy(client_for(poor_buyer), eu_personal).json()["id"]
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")

    trade_settle(trade_id=trade_id)
    trade_settle(trade_id=trade_id)  # a duplicate delivery

    assert balances(client_for(poor_buyer)) == {"EUR": ("50.00", "0.00")}
    assert balances(client_for(provider_eu)) == {"EUR": ("95.00", "0.00")}
    platform = {p["currency"]: p for p in client_for(officer).get("/api/v1/wallet/platform/").json()}
    assert platform["EUR"]["revenue"] == "5.00" and platform["EUR"]["deposits"] == "150.00"
    assert LedgerTransaction.objects.filter(trade_id=trade_id, kind="settle").count() == 1


@pytest.mark.parametrize("how", ["cancel", "reject", "deny"])
def test_rejection_cancellation_and_denial_release_the_hold(
    client_for, rulepacks, poor_buyer, officer, eu_personal, how
):
    from marketplace.services.trade_compliance import trade_check_compliance

    buyer = client_for(poor_buyer)
    if how == "deny":
        poor_buyer.organisation.jurisdiction = "IR"
        poor_buyer.organisation.save()
    trade_id = buy(buyer, eu_personal).json()["id"]
    if how == "cancel":
        buyer.post(f"/api/v1/trades/{trade_id}/cancel/")
    elif how == "reject":
        trade_transition(trade_id=trade_id, to=Trade.Status.IN_REVIEW, actor_label="system:test")
        client_for(officer).post(f"/api/v1/trades/{trade_id}/reject/", {"reason": "no lawful basis"}, format="json")
    else:
        assert trade_check_compliance(trade_id=trade_id).status == Trade.Status.REJECTED

    assert balances(buyer) == {"EUR": ("150.00", "0.00")}
    assert LedgerTransaction.objects.filter(trade_id=trade_id, kind="release").count() == 1


def test_officer_refund_reverses_the_settlement_and_both_parties_see_why(
    client_for, poor_buyer, provider_eu, officer, eu_personal
):
    trade_id = buy(client_for(poor_buyer), eu_personal).json()["id"]
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade_id)

    assert (
        client_for(poor_buyer).post(f"/api/v1/trades/{trade_id}/refund/", {"reason": "mine"}, format="json").status_code
        == 403
    )
    missing_reason = client_for(officer).post(f"/api/v1/trades/{trade_id}/refund/", {}, format="json")
    refunded = client_for(officer).post(
        f"/api/v1/trades/{trade_id}/refund/", {"reason": "file was corrupt"}, format="json"
    )
    again = client_for(officer).post(f"/api/v1/trades/{trade_id}/refund/", {"reason": "twice"}, format="json")

    assert missing_reason.status_code == 400
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert again.status_code == 409
    assert balances(client_for(poor_buyer)) == {"EUR": ("150.00", "0.00")}
    assert balances(client_for(provider_eu)) == {"EUR": ("0.00", "0.00")}
    for party in (poor_buyer, provider_eu):
        assert client_for(party).get(f"/api/v1/trades/{trade_id}/").json()["events"][-1]["reason"] == "file was corrupt"


def test_a_refund_the_provider_cannot_cover_is_refused(client_for, poor_buyer, provider_eu, officer, eu_personal):
    trade_id = buy(client_for(poor_buyer), eu_personal).json()["id"]
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade_id)
    Wallet.objects.filter(organisation=provider_eu.organisation).update(available=Decimal("10.00"))  # spent elsewhere

    response = client_for(officer).post(
        f"/api/v1/trades/{trade_id}/refund/", {"reason": "late delivery"}, format="json"
    )

    assert response.status_code == 409 and response.json()["code"] == "refund_not_covered"
    assert Trade.objects.get(pk=trade_id).status == Trade.Status.SETTLED
    assert not LedgerTransaction.objects.filter(trade_id=trade_id, kind="refund").exists()


def test_member_deposit_waits_for_an_operator(client_for, poor_buyer, buyer_us, officer):
    buyer = client_for(poor_buyer)
    request = buyer.post("/api/v1/wallet/deposits/", {"amount": "500.00", "currency": "EUR"}, format="json")
    assert request.status_code == 201 and request.json()["status"] == "pending"
    deposit_id = request.json()["id"]
    assert balances(buyer)["EUR"] == ("150.00", "0.00")

    assert buyer.post(f"/api/v1/wallet/deposits/{deposit_id}/approve/").status_code == 403
    assert client_for(buyer_us).get(f"/api/v1/wallet/deposits/{deposit_id}/").status_code == 404
    approved = client_for(officer).post(
        f"/api/v1/wallet/deposits/{deposit_id}/approve/", {"note": "SEPA transfer received"}, format="json"
    )
    assert approved.status_code == 200 and approved.json()["status"] == "credited"
    assert client_for(officer).post(f"/api/v1/wallet/deposits/{deposit_id}/approve/").status_code == 409
    assert balances(buyer)["EUR"] == ("650.00", "0.00")


def test_operator_credits_an_organisation_directly_with_a_second_officer_and_members_cannot(
    client_for, poor_buyer, buyer_us, officer, second_officer,
):
    org = str(poor_buyer.organisation_id)
    assert (
        client_for(buyer_us)
        .post("/api/v1/wallet/deposits/", {"amount": "9.00", "currency": "EUR", "organisation": org}, format="json")
        .status_code
        == 403
    )

    requested = client_for(officer).post(
        "/api/v1/wallet/deposits/", {"amount": "1000", "currency": "JPY", "organisation": org}, format="json"
    )
    assert requested.status_code == 201 and requested.json()["status"] == "pending"
    assert requested.json()["awaiting"] == "second_officer" and requested.json()["direct"] is True
    assert "JPY" not in balances(client_for(poor_buyer))

    credited = client_for(second_officer).post(f"/api/v1/wallet/deposits/{requested.json()['id']}/approve/")

    assert (
        credited.status_code == 200 and credited.json()["status"] == "credited" and credited.json()["awaiting"] is None
    )
    assert balances(client_for(poor_buyer))["JPY"] == ("1000.00", "0.00")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("-5.00", "EUR"), ("0", "EUR"), ("10.001", "EUR"), ("10.50", "JPY"), ("5", "KWD"), ("5", "XXQ"), ("abc", "EUR")],
)
def test_bad_deposits_are_400s_and_change_nothing(client_for, poor_buyer, amount, currency):
    response = client_for(poor_buyer).post(
        "/api/v1/wallet/deposits/", {"amount": amount, "currency": currency}, format="json"
    )

    assert response.status_code == 400
    assert Deposit.objects.filter(status="pending").count() == 0


def test_ledger_lines_are_per_organisation_and_name_their_trade(client_for, poor_buyer, buyer_us, eu_personal):
    trade_id = buy(client_for(poor_buyer), eu_personal).json()["id"]

    lines = client_for(poor_buyer).get("/api/v1/wallet/entries/").json()["results"]

    assert [(line["kind"], line["account"], line["amount"], line["trade"]) for line in lines[:2]] == [
        ("hold", "held", "100.00", trade_id), ("hold", "available", "-100.00", trade_id)]
    assert all(
        line["trade"] != trade_id for line in client_for(buyer_us).get("/api/v1/wallet/entries/").json()["results"]
    )
    assert client_for(poor_buyer).get(f"/api/v1/wallet/entries/?transaction__trade={trade_id}").json()["count"] == 2


def test_provider_payout_report(client_for, poor_buyer, provider_eu, eu_personal):
    trade_id = buy(client_for(poor_buyer), eu_personal).json()["id"]
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade_id)

    response = client_for(provider_eu).get("/api/v1/wallet/payouts.csv")

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response["Content-Type"] == "text/csv"
    assert lines[0] == "settled_at,trade,dataset,buyer,currency,gross,platform_fee,net,status"
    assert lines[1].split(",")[1:] == [
        trade_id,
        "German retail customers",
        "Thin Wallet Ltd",
        "EUR",
        "100.00",
        "5.00",
        "95.00",
        "settled",
    ]
    assert len(client_for(poor_buyer).get("/api/v1/wallet/payouts.csv").getvalue().decode().splitlines()) == 1


def test_subscription_renewal_is_a_new_trade_at_todays_price(client_for, rulepacks, poor_buyer, provider_eu):
    dataset = DatasetFactory(
        provider=provider_eu.organisation, pricing="subscription", licence={"term_days": 30}, price="40.00"
    )
    buyer = client_for(poor_buyer)
    first = buy(buyer, dataset).json()["id"]
    assert buyer.post(f"/api/v1/trades/{first}/renew/").status_code == 409  # not settled yet
    trade_transition(trade_id=first, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=first)
    dataset.price = Decimal("45.00")
    dataset.save()

    unconfirmed = buyer.post(f"/api/v1/trades/{first}/renew/")  # today's price differs: the buyer must confirm it
    renewal = buyer.post(f"/api/v1/trades/{first}/renew/", {"expected_price": "45.00"}, format="json")

    assert unconfirmed.status_code == 409 and unconfirmed.json()["code"] == "price_changed"
    assert renewal.status_code == 201, renewal.json()
    body = renewal.json()
    assert (body["status"], body["renews"], body["price"]) == ("checking", first, "45.00")
    assert buyer.post(f"/api/v1/trades/{first}/renew/").status_code == 409  # one renewal per period


def test_one_time_purchases_do_not_renew(client_for, poor_buyer, eu_personal):
    trade_id = buy(client_for(poor_buyer), eu_personal).json()["id"]
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade_id)

    assert client_for(poor_buyer).post(f"/api/v1/trades/{trade_id}/renew/").status_code == 409


def test_prices_respect_the_currency_precision(client_for, provider_eu):
    base = {
        "title": "t",
        "subject_jurisdictions": ["DE"],
        "classification": "public",
        "categories": ["statistics"],
        "subjects": 0,
    }

    jpy = client_for(provider_eu).post(
        "/api/v1/datasets/", {**base, "price": "100.50", "currency": "JPY"}, format="json"
    )
    kwd = client_for(provider_eu).post(
        "/api/v1/datasets/", {**base, "price": "10.00", "currency": "KWD"}, format="json"
    )
    sub = client_for(provider_eu).post(
        "/api/v1/datasets/", {**base, "price": "10.00", "pricing": "subscription"}, format="json"
    )

    assert (jpy.status_code, "price" in jpy.json()["fields"]) == (400, True)
    assert (kwd.status_code, "currency" in kwd.json()["fields"]) == (400, True)
    assert (sub.status_code, "licence" in sub.json()["fields"]) == (400, True)


def test_every_transaction_balances(client_for, poor_buyer, eu_personal):
    buy(client_for(poor_buyer), eu_personal)

    for txn in LedgerTransaction.objects.prefetch_related("entries"):
        assert sum(e.amount for e in txn.entries.all()) == 0
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == 0
