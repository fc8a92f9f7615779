"""Trades over HTTP: who may buy, see, cancel and review; bad input changes nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.models import Review
from marketplace.models import Dataset, Trade
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, TradeFactory

pytestmark = pytest.mark.django_db


def test_buyer_opens_a_trade_in_checking_with_the_contract_shape(client_for, buyer_us, eu_personal):
    response = client_for(buyer_us).post(
        "/api/v1/trades/", {"dataset": str(eu_personal.id), "mechanisms": [{"code": "eu_scc"}]}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "checking"
    assert (body["price"], body["currency"], body["destination"], body["purpose"]) == ("100.00", "EUR", "US", "resale")
    assert body["mechanisms"] == [{"code": "eu_scc"}]
    assert body["decision"] is None
    events = client_for(buyer_us).get(f"/api/v1/trades/{body['id']}/").json()["events"]
    assert [(e["from"], e["to"], e["actor"]) for e in events] == [("", "checking", buyer_us.user.username)]


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "dataset"),
    ({"dataset": "not-a-uuid"}, "dataset"),
    ({"destination": "Narnia"}, "destination"),
    ({"purpose": "marketing"}, "purpose"),
    ({"mechanisms": [{"code": "handshake"}]}, "mechanisms"),
    ({"mechanisms": "eu_scc"}, "mechanisms"),
])
def test_bad_trade_input_is_a_400_naming_the_field(client_for, buyer_us, eu_personal, payload, field):
    body = {"dataset": str(eu_personal.id), **payload} if "dataset" not in payload and payload != {} else payload
    response = client_for(buyer_us).post("/api/v1/trades/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Trade.objects.exists()


def test_unpublished_or_unknown_dataset_cannot_be_bought(client_for, buyer_us, provider_eu):
    draft = DatasetFactory(provider=provider_eu.organisation, status=Dataset.Status.DRAFT)
    buyer = client_for(buyer_us)

    for dataset_id in (draft.id, "00000000-0000-0000-0000-000000000000"):
        response = buyer.post("/api/v1/trades/", {"dataset": str(dataset_id)}, format="json")
        assert response.status_code == 409 and response.json()["code"] == "dataset_not_available"
    assert not Trade.objects.exists()


def test_only_buyers_buy(client_for, provider_cn, officer, eu_personal):
    for member in (provider_cn, officer):
        response = client_for(member).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json")
        assert response.status_code == 403
    assert client_for(None).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json").status_code == 401


def test_a_buyer_cannot_buy_from_its_own_organisation(client_for, provider_eu, eu_personal):
    colleague = MembershipFactory(organisation=provider_eu.organisation, role="buyer")

    response = client_for(colleague).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json")

    assert response.status_code == 400 and response.json()["code"] == "own_dataset"


def test_trades_are_visible_to_their_parties_and_officers_only(
    client_for, buyer_eu, buyer_us, provider_eu, provider_cn, officer, eu_personal
):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation)
    url = f"/api/v1/trades/{trade.id}/"

    for member, status in ((buyer_eu, 200), (provider_eu, 200), (officer, 200), (buyer_us, 404), (provider_cn, 404)):
        assert client_for(member).get(url).status_code == status, member
        ids = [t["id"] for t in client_for(member).get("/api/v1/trades/").json()["results"]]
        assert (str(trade.id) in ids) == (status == 200), member


def test_only_the_buyer_cancels(client_for, buyer_eu, buyer_us, provider_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.NEEDS_DOCUMENTS)
    url = f"/api/v1/trades/{trade.id}/cancel/"

    assert client_for(buyer_us).post(url).status_code == 404
    assert client_for(provider_eu).post(url).status_code == 403
    response = client_for(buyer_eu).post(url, {"reason": "found another source"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["events"][-1] == {
        **response.json()["events"][-1],
        "from": "needs_documents",
        "to": "cancelled",
        "actor": buyer_eu.user.username,
        "reason": "found another source",
    }
    again = client_for(buyer_eu).post(url)
    assert again.status_code == 409 and again.json()["code"] == "trade_transition_not_allowed"


def test_a_settled_trade_cannot_be_cancelled(client_for, buyer_eu, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.SETTLED)

    response = client_for(buyer_eu).post(f"/api/v1/trades/{trade.id}/cancel/")

    assert response.status_code == 409
    trade.refresh_from_db()
    assert trade.status == Trade.Status.SETTLED


def test_officer_review_needs_a_reason_and_the_officer_role(client_for, officer, buyer_us, provider_eu, eu_health):
    trade = TradeFactory(dataset=eu_health, buyer=buyer_us.organisation, status=Trade.Status.IN_REVIEW)
    url = f"/api/v1/trades/{trade.id}/approve/"

    assert client_for(buyer_us).post(url, {"reason": "I approve myself"}, format="json").status_code == 403
    assert client_for(provider_eu).post(url, {"reason": "fine by me"}, format="json").status_code == 403
    missing = client_for(officer).post(url, {}, format="json")
    blank = client_for(officer).post(url, {"reason": "   "}, format="json")
    assert missing.status_code == blank.status_code == 400 and "reason" in missing.json()["fields"]
    trade.refresh_from_db()
    assert trade.status == Trade.Status.IN_REVIEW and not Review.objects.exists()

    rejected = client_for(officer).post(
        f"/api/v1/trades/{trade.id}/reject/", {"reason": "no consent records"}, format="json"
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert Review.objects.get().reason == "no consent records"


def test_review_queue_is_for_officers_oldest_first(client_for, officer, buyer_us, eu_health):
    newer = TradeFactory(dataset=eu_health, buyer=buyer_us.organisation, status=Trade.Status.IN_REVIEW)
    older = TradeFactory(dataset=eu_health, buyer=buyer_us.organisation, status=Trade.Status.IN_REVIEW,
                         status_changed_at=newer.status_changed_at.replace(year=2025))
    TradeFactory(dataset=eu_health, buyer=buyer_us.organisation, status=Trade.Status.CHECKING)

    assert client_for(buyer_us).get("/api/v1/reviews/").status_code == 403
    response = client_for(officer).get("/api/v1/reviews/")
    assert response.status_code == 200
    assert [t["id"] for t in response.json()["results"]] == [str(older.id), str(newer.id)]


def test_trade_list_query_count_does_not_grow_with_trades(client_for, officer, rulepacks, buyer_eu, eu_personal):
    from marketplace.services.trade_compliance import trade_check_compliance

    officer_client = client_for(officer)
    officer_client.get("/api/v1/me/")  # the session is verified (and cached) once, as for any client
    trade_check_compliance(trade_id=TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation).id)
    with CaptureQueriesContext(connection) as one:
        officer_client.get("/api/v1/trades/")
    for _ in range(20):
        trade = TradeFactory(dataset=DatasetFactory(provider=OrganisationFactory()), buyer=OrganisationFactory())
        trade_check_compliance(trade_id=trade.id)
    with CaptureQueriesContext(connection) as many:
        response = officer_client.get("/api/v1/trades/?page_size=50")

    assert response.json()["count"] == 21 and all(t["decision"] for t in response.json()["results"])
    assert len(many.captured_queries) == len(one.captured_queries) <= 5


def test_trade_list_filters(client_for, buyer_eu, eu_personal, eu_public):
    TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, status=Trade.Status.SETTLED)
    TradeFactory(dataset=eu_public, buyer=buyer_eu.organisation, status=Trade.Status.CHECKING)
    buyer = client_for(buyer_eu)

    assert buyer.get("/api/v1/trades/?status=settled").json()["count"] == 1
    assert buyer.get(f"/api/v1/trades/?dataset={eu_public.id}").json()["count"] == 1
    assert buyer.get("/api/v1/trades/?role=provider").json()["count"] == 0
    assert buyer.get("/api/v1/trades/?status=lost").status_code == 400
