"""Buyer protection over HTTP: a partial refund cannot be asked for by accident, the buyer pins the
price and licence it saw (409 `price_changed`), renewals show and confirm the next period's terms, and
buying what the organisation already holds needs `"repeat": true` (409 `already_held`)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.models import AccessGrant, LedgerTransaction, RefundRequest, Trade
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_transitions import trade_transition
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db

TRADES = "/api/v1/trades/"


def balances(client) -> dict[str, tuple[str, str]]:
    return {b["currency"]: (b["available"], b["held"]) for b in client.get("/api/v1/wallet/").json()["balances"]}


def settle(trade_id: Any) -> None:
    trade_transition(trade_id=trade_id, to=Trade.Status.APPROVED, actor_label="system:test")
    trade_settle(trade_id=trade_id)


def buy(client: Any, dataset: Any, **extra: Any) -> Any:
    return client.post(TRADES, {"dataset": str(dataset.id), **extra}, format="json")


# --- the refund that refunded everything ---------------------------------------------------------


def test_a_refund_with_an_amount_is_refused_and_refunds_nothing(settings, client_for, buyer_eu, provider_eu, officer):
    """The refund endpoint has no partial amount: `{"amount": "100.00"}` used to be ignored and the whole
    4,800 went back. Now the unknown field is a 400 and nothing moves."""
    settings.ELEMENTA_REFUND_FOUR_EYES_OVER = Decimal("100000")
    dataset = DatasetFactory.create(provider=provider_eu.organisation, price=Decimal("4800.00"))
    trade_id = buy(client_for(buyer_eu), dataset).json()["id"]
    settle(trade_id)
    before = balances(client_for(buyer_eu))["EUR"]

    response = client_for(officer).post(
        f"{TRADES}{trade_id}/refund/", {"reason": "partial refund", "amount": "100.00"}, format="json"
    )

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "unknown_field" and body["fields"] == {"amount": ["unknown field"]}
    assert Trade.objects.get(pk=trade_id).status == Trade.Status.SETTLED
    assert balances(client_for(buyer_eu))["EUR"] == before
    assert not LedgerTransaction.objects.filter(trade_id=trade_id, kind="refund").exists()
    assert not RefundRequest.objects.exists()
    assert AccessGrant.objects.get(trade_id=trade_id).revoked_at is None


# --- price pinning -------------------------------------------------------------------------------


def test_the_price_seen_is_the_price_paid(client_for, buyer_eu, eu_personal):
    seen = client_for(buyer_eu).get(f"/api/v1/datasets/{eu_personal.id}/").json()

    response = buy(
        client_for(buyer_eu), eu_personal, expected_price=seen["price"], expected_currency=seen["currency"].lower(),
        expected_licence_version=seen["licence_version"],
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["price"], response.json()["licence_version"]) == (seen["price"], seen["licence_version"])


def test_a_price_changed_since_the_buyer_saw_it_is_409_with_the_current_terms(
    client_for, buyer_eu, provider_eu, eu_personal
):
    seen = client_for(buyer_eu).get(f"/api/v1/datasets/{eu_personal.id}/").json()
    edit = client_for(provider_eu).patch(
        f"/api/v1/datasets/{eu_personal.id}/", {"price": "150.00", "licence": {"term_days": 90}}, format="json"
    )
    assert edit.status_code == 200 and edit.json()["licence_version"] == seen["licence_version"] + 1
    wallet_before = balances(client_for(buyer_eu))

    response = buy(client_for(buyer_eu), eu_personal, expected_price=seen["price"], expected_currency="EUR",
                   expected_licence_version=seen["licence_version"])

    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["code"] == "price_changed"
    assert set(body["fields"]) == {"expected_price", "expected_licence_version"}
    current = body["current"]
    assert (current["price"], current["currency"], current["licence_version"]) == (
        "150.00", "EUR", seen["licence_version"] + 1
    )
    assert current["licence"]["term_days"] == 90
    assert not Trade.objects.exists()
    assert balances(client_for(buyer_eu)) == wallet_before

    again = buy(client_for(buyer_eu), eu_personal, expected_price=current["price"],
                expected_currency=current["currency"], expected_licence_version=current["licence_version"])
    assert again.status_code == 201 and again.json()["price"] == "150.00"


def test_each_pinned_term_is_checked_on_its_own(client_for, buyer_eu, eu_personal):
    assert buy(client_for(buyer_eu), eu_personal, expected_currency="USD").json()["fields"] == {
        "expected_currency": ["the currency is now EUR"]
    }
    assert buy(client_for(buyer_eu), eu_personal, expected_licence_version=7).json()["code"] == "price_changed"
    assert buy(client_for(buyer_eu), eu_personal, expected_price="99.99").json()["code"] == "price_changed"
    assert not Trade.objects.exists()


def test_a_change_of_title_alone_keeps_the_licence_version(client_for, provider_eu, eu_personal):
    response = client_for(provider_eu).patch(f"/api/v1/datasets/{eu_personal.id}/", {"title": "New"}, format="json")

    assert response.status_code == 200 and response.json()["licence_version"] == 1


# --- renewals ------------------------------------------------------------------------------------


@pytest.fixture
def subscription(provider_eu, buyer_eu, client_for):
    dataset = DatasetFactory.create(
        provider=provider_eu.organisation, pricing="subscription", licence={"term_days": 30}, price="40.00"
    )
    first = buy(client_for(buyer_eu), dataset).json()["id"]
    settle(first)
    return dataset, first


def test_renewal_terms_show_the_next_period(client_for, buyer_eu, provider_eu, subscription):
    dataset, first = subscription
    url = f"{TRADES}{first}/renew/"
    unchanged = client_for(buyer_eu).get(url).json()
    assert unchanged["changed"] is False and unchanged["next"]["price"] == "40.00"

    client_for(provider_eu).patch(f"/api/v1/datasets/{dataset.id}/", {"price": "55.00"}, format="json")
    terms = client_for(buyer_eu).get(url).json()

    assert terms["changed"] is True
    assert (terms["next"]["price"], terms["next"]["licence_version"]) == ("55.00", 2)
    assert (terms["current"]["price"], terms["current"]["licence_version"]) == ("40.00", 1)
    assert not Trade.objects.filter(renews_id=first).exists()


def test_a_renewal_on_unchanged_terms_needs_no_confirmation(client_for, buyer_eu, subscription):
    _, first = subscription

    response = client_for(buyer_eu).post(f"{TRADES}{first}/renew/")

    assert response.status_code == 201, response.json()
    assert response.json()["price"] == "40.00"


def test_a_renewal_on_changed_terms_is_409_until_confirmed(client_for, buyer_eu, provider_eu, subscription):
    dataset, first = subscription
    client_for(provider_eu).patch(f"/api/v1/datasets/{dataset.id}/", {"price": "55.00"}, format="json")
    url = f"{TRADES}{first}/renew/"

    silent = client_for(buyer_eu).post(url)
    old_price = client_for(buyer_eu).post(url, {"expected_price": "40.00", "expected_licence_version": 1},
                                          format="json")

    for refused in (silent, old_price):
        assert refused.status_code == 409 and refused.json()["code"] == "price_changed", refused.json()
        assert refused.json()["current"]["price"] == "55.00"
    assert not Trade.objects.filter(renews_id=first).exists()

    confirmed = client_for(buyer_eu).post(
        url, {"expected_price": "55.00", "expected_currency": "EUR", "expected_licence_version": 2}, format="json"
    )
    assert confirmed.status_code == 201, confirmed.json()
    assert (confirmed.json()["price"], confirmed.json()["renews"]) == ("55.00", first)


def test_renewal_refuses_unknown_fields(client_for, buyer_eu, subscription):
    _, first = subscription

    response = client_for(buyer_eu).post(f"{TRADES}{first}/renew/", {"price": "1.00"}, format="json")

    assert response.status_code == 400 and response.json()["code"] == "unknown_field"
    assert not Trade.objects.filter(renews_id=first).exists()


# --- already held --------------------------------------------------------------------------------


@pytest.fixture
def held(client_for, buyer_eu, eu_personal) -> AccessGrant:
    trade_id = buy(client_for(buyer_eu), eu_personal).json()["id"]
    settle(trade_id)
    return AccessGrant.objects.get(trade_id=trade_id)


def test_buying_what_the_organisation_already_holds_is_409(client_for, buyer_eu, eu_personal, held):
    before = balances(client_for(buyer_eu))

    response = buy(client_for(buyer_eu), eu_personal)

    assert response.status_code == 409 and response.json()["code"] == "already_held", response.json()
    assert Trade.objects.count() == 1 and balances(client_for(buyer_eu)) == before


def test_repeat_true_buys_it_again(client_for, buyer_eu, eu_personal, held):
    response = buy(client_for(buyer_eu), eu_personal, repeat=True)

    assert response.status_code == 201, response.json()
    assert Trade.objects.count() == 2


def test_another_organisation_may_buy_what_one_holds(client_for, buyer_us, eu_personal, held):
    assert buy(client_for(buyer_us), eu_personal).status_code == 201


@pytest.mark.parametrize("ended", ["revoked", "expired"])
def test_a_revoked_or_expired_grant_does_not_block(client_for, buyer_eu, eu_personal, held, ended):
    now = timezone.now()
    if ended == "revoked":
        AccessGrant.objects.filter(pk=held.pk).update(revoked_at=now, revoked_reason="test")
    else:
        AccessGrant.objects.filter(pk=held.pk).update(valid_from=now - timedelta(days=2), valid_until=now)

    response = buy(client_for(buyer_eu), eu_personal)

    assert response.status_code == 201, response.json()


def test_a_suspended_grant_still_counts_as_held(client_for, buyer_eu, eu_personal, held):
    AccessGrant.objects.filter(pk=held.pk).update(suspended_at=timezone.now(), suspended_reason="test")

    assert buy(client_for(buyer_eu), eu_personal).json()["code"] == "already_held"


def test_the_already_held_check_costs_no_statement_of_its_own(client_for, buyer_eu, buyer_us, provider_eu):
    """The EXISTS rides on the dataset's read: buying with the check (repeat false) takes as many
    statements as buying without it (repeat true), price pinning included."""
    first, second = (DatasetFactory.create(provider=provider_eu.organisation) for _ in range(2))
    api = client_for(buyer_eu)
    buy(client_for(buyer_us), first)  # warm-up: first-request work is not the check's
    api.get("/api/v1/me/")  # and this session is cached, as on every request after a client's first
    with CaptureQueriesContext(connection) as checked:
        assert buy(api, first, expected_price="100.00", expected_currency="EUR").status_code == 201
    with CaptureQueriesContext(connection) as unchecked:
        assert buy(api, second, repeat=True).status_code == 201

    assert len(checked.captured_queries) == len(unchecked.captured_queries)
    assert "EXISTS" in next(q["sql"] for q in checked.captured_queries if "marketplace_dataset" in q["sql"]).upper()
