"""waiting_since across transitions, and the queue's regime filter: only regimes whose findings a
person must look at (not `allow`)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.models import Trade
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trade_transitions import trade_transition
from marketplace.services.trades import trade_create

pytestmark = pytest.mark.django_db


def checked(buyer, dataset) -> Trade:
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer, dataset_id=dataset.id).id)
    assert trade is not None
    return trade


def test_waiting_since_is_set_on_purchase_kept_across_rechecks_and_cleared_on_approval(rulepacks, buyer_eu, eu_health):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_health.id)
    since = trade.waiting_since
    assert since is not None and since == trade.status_changed_at

    trade = trade_check_compliance(trade_id=trade.id)
    assert (trade.status, trade.waiting_since) == ("in_review", since)
    trade = trade_transition(trade_id=trade.id, to=Trade.Status.CHECKING, actor_label="system:test", reason="re-check")
    trade = trade_check_compliance(trade_id=trade.id)
    assert (trade.status, trade.waiting_since) == ("in_review", since) and trade.status_changed_at > since

    trade = trade_transition(trade_id=trade.id, to=Trade.Status.APPROVED, actor_label="system:test")
    assert trade.waiting_since is None


def test_a_trade_that_stops_waiting_has_no_waiting_since(rulepacks, buyer_eu, eu_personal):
    trade = checked(buyer_eu, eu_personal)  # intra-EU: approved by the engine

    assert trade.status == "approved" and trade.waiting_since is None
    assert Trade.objects.get(pk=trade.pk).waiting_since is None


def test_the_queue_is_ordered_by_waiting_since(client_for, rulepacks, officer, buyer_eu, eu_health):
    first, second = checked(buyer_eu, eu_health), checked(buyer_eu, eu_health)
    # the first trade was re-checked a moment ago: its status_changed_at is the newest
    Trade.objects.filter(pk=first.pk).update(
        waiting_since=timezone.now() - timedelta(hours=5), status_changed_at=timezone.now()
    )

    queue = client_for(officer).get("/api/v1/reviews/").json()["results"]

    assert [t["id"] for t in queue] == [str(first.id), str(second.id)]
    assert queue[0]["waiting_hours"] >= 5 and queue[0]["waiting_since"]


def test_the_regime_filter_matches_regimes_with_a_finding_that_is_not_allow(
    client_for, rulepacks, officer, buyer_eu, eu_health, eu_public
):
    from tests.factories import MembershipFactory, OrganisationFactory

    health = checked(buyer_eu, eu_health)  # EU-ART9-1 review; the sanctions screen allows
    russian = MembershipFactory(organisation=OrganisationFactory(name="Moscow Data", jurisdiction="RU"), role="buyer")
    public_to_ru = checked(russian, eu_public)  # SAN-RU-1 review; the EU allows public data
    assert (health.status, public_to_ru.status) == ("in_review", "in_review")
    api = client_for(officer)

    def ids(regime: str) -> set[str]:
        response = api.get(f"/api/v1/reviews/?regime={regime}")
        assert response.status_code == 200
        return {t["id"] for t in response.json()["results"]}

    assert ids("EU") == {str(health.id)}
    assert ids("sanctions") == {str(public_to_ru.id)}
    assert ids("CN") == set()


@pytest.mark.parametrize("query", ["waiting_since_before=yesterday", "waiting_since_after=2026-13-40T00:00:00Z"])
def test_bad_waiting_since_bounds_are_400s(client_for, officer, query):
    response = client_for(officer).get(f"/api/v1/reviews/?{query}")

    assert response.status_code == 400 and query.split("=")[0] in response.json()["fields"]
