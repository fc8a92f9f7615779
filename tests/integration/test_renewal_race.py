"""Renewing a subscription: ten concurrent requests for the same period through the HTTP API make
exactly one renewal trade, held and charged once; the others are told 409 `already_renewed`."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from marketplace.models import LedgerEntry, Trade, Wallet
from marketplace.services.sessions import session_create
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory, fund
from tests.integration.test_concurrency import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_enqueue(no_trade_work):
    """The threads drive the services themselves; the session's worker must not act meanwhile."""


def test_ten_concurrent_renewals_make_one_renewal_charged_once(client_for, provider_eu):
    buyer = MembershipFactory(
        organisation=OrganisationFactory(name="Renewing GmbH", jurisdiction="DE"), role="buyer", funded=False
    )
    fund(buyer.organisation, "1000.00", ("EUR",))
    dataset = DatasetFactory(
        provider=provider_eu.organisation,
        pricing="subscription",
        licence={"term_days": 30},
        price="40.00",
        currency="EUR",
    )
    first = client_for(buyer).post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json").json()["id"]
    trade_transition(trade_id=first, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=first)
    _, token = session_create(user=buyer.user)
    responses = []

    def renew() -> None:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        responses.append(api.post(f"/api/v1/trades/{first}/renew/"))

    errors = race([renew] * 10)

    assert errors == []
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9, [r.json() for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_renewed"}
    [renewal] = Trade.objects.filter(renews_id=first)
    # settle the one renewal: the buyer pays for two periods, never three
    trade_transition(trade_id=renewal.id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=renewal.id)
    wallet = Wallet.objects.get(organisation=buyer.organisation, currency="EUR")
    assert (wallet.available, wallet.held) == (Decimal("920.00"), Decimal("0.00"))
    assert Trade.objects.filter(buyer=buyer.organisation, status="settled").count() == 2
    assert sum(LedgerEntry.objects.values_list("amount", flat=True)) == 0
