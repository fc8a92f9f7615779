"""One live renewal per subscription period, enforced by the service and by the database."""

import pytest
from django.db import IntegrityError, transaction

from marketplace.models import Trade
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from tests.factories import DatasetFactory, TradeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(provider_eu, buyer_eu, client_for) -> str:
    dataset = DatasetFactory.create(
        provider=provider_eu.organisation, pricing="subscription", licence={"term_days": 30}, price="40.00"
    )
    first = client_for(buyer_eu).post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json").json()["id"]
    trade_transition(trade_id=first, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=first)
    return first


def test_a_second_renewal_of_the_same_period_is_409_already_renewed(client_for, buyer_eu, subscription):
    api = client_for(buyer_eu)

    assert api.post(f"/api/v1/trades/{subscription}/renew/").status_code == 201
    again = api.post(f"/api/v1/trades/{subscription}/renew/")

    assert again.status_code == 409 and again.json()["code"] == "already_renewed"
    assert Trade.objects.filter(renews_id=subscription).count() == 1


def test_a_rejected_renewal_leaves_the_period_open_for_another(client_for, buyer_eu, officer, subscription):
    api = client_for(buyer_eu)
    renewal = api.post(f"/api/v1/trades/{subscription}/renew/").json()["id"]
    trade_transition(trade_id=renewal, to=Trade.Status.REJECTED, actor_label="system:test", reason="test")

    second = api.post(f"/api/v1/trades/{subscription}/renew/")

    assert second.status_code == 201, second.json()
    assert set(Trade.objects.filter(renews_id=subscription).values_list("status", flat=True)) == {
        "rejected",
        "checking",
    }


def test_the_database_refuses_a_second_live_renewal(buyer_eu, eu_personal):
    first = TradeFactory(
        dataset=eu_personal, buyer=buyer_eu.organisation, pricing="subscription", status=Trade.Status.SETTLED
    )
    TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, renews=first, status=Trade.Status.CANCELLED)
    TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, renews=first, status=Trade.Status.SETTLED)

    with pytest.raises(IntegrityError), transaction.atomic():
        TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation, renews=first, status=Trade.Status.CHECKING)


def test_another_organisation_cannot_renew_a_subscription(client_for, buyer_us, subscription):
    response = client_for(buyer_us).post(f"/api/v1/trades/{subscription}/renew/")

    assert response.status_code in (403, 404)
    assert not Trade.objects.filter(renews_id=subscription).exists()
