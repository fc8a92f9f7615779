"""Compute offers: the provider's terms, the policy floor, and who may set what."""

import pytest

from tests.compute.conftest import OFFER

pytestmark = pytest.mark.django_db


def test_k_can_never_be_below_five(client_for, provider_cn, guangdong):
    response = client_for(provider_cn).put(
        f"/api/v1/datasets/{guangdong.id}/compute-offer/", {**OFFER, "min_group_size": 4}, format="json"
    )

    assert response.status_code == 400 and "min_group_size" in response.json()["fields"]


@pytest.mark.parametrize(("change", "field"), [
    ({"columns": {"province": "secret"}}, "columns"),
    ({"columns": {"a": "identifier", "b": "identifier"}}, "columns"),
    ({"columns": {"drop table": "plain"}}, "columns"),
    ({"dp_epsilon_per_period": "3"}, "dp_epsilon_per_query"),
    ({"dp_epsilon_per_period": "1", "dp_epsilon_per_query": "2"}, "dp_epsilon_per_query"),
    ({"bounds": {"basket_size": [10, 1]}}, "bounds"),
    ({"currency": "XXQ"}, "currency"),
])
def test_an_invalid_offer_is_a_400_naming_the_field(client_for, provider_cn, guangdong, change, field):
    response = client_for(provider_cn).put(
        f"/api/v1/datasets/{guangdong.id}/compute-offer/", {**OFFER, **change}, format="json"
    )

    assert response.status_code == 400 and field in response.json()["fields"], response.json()


def test_the_provider_cannot_lift_an_officers_review_requirement(
    client_for, provider_cn, officer, guangdong, offer_compute
):
    offer_compute(guangdong)
    client_for(officer).post(f"/api/v1/datasets/{guangdong.id}/compute-offer/review-policy/",
                             {"review_sensitive_queries": True, "reason": "health-adjacent"}, format="json")

    refused = client_for(provider_cn).put(
        f"/api/v1/datasets/{guangdong.id}/compute-offer/", {**OFFER, "review_sensitive_queries": False}, format="json"
    )

    assert refused.status_code == 400 and refused.json()["fields"] == {"review_sensitive_queries": ["read-only field"]}
    assert offer_compute(guangdong)["review_sensitive_queries"] is True


def test_buying_compute_of_a_dataset_without_an_offer_is_refused(client_for, buyer_sg, guangdong):
    response = client_for(buyer_sg).post(
        "/api/v1/trades/", {"dataset": str(guangdong.id), "delivery": "compute"}, format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "compute_not_offered"


def test_queries_under_a_download_grant_are_refused(in_process, rulepacks, client_for, buyer_sg, guangdong):
    from marketplace.models import AccessGrant
    from marketplace.services.settlement import trade_settle
    from marketplace.services.trade_transitions import trade_transition
    from marketplace.services.trades import trade_create

    trade = trade_create(membership=buyer_sg, dataset_id=guangdong.id)
    trade_transition(trade_id=trade.id, to="approved", actor_label="system:test")
    trade_settle(trade_id=trade.id)
    grant = AccessGrant.objects.get(trade=trade)

    response = client_for(buyer_sg).post(
        f"/api/v1/grants/{grant.id}/queries/", {"sql": "SELECT COUNT(*) FROM orders"}, format="json"
    )

    assert response.status_code == 409 and response.json()["code"] == "not_a_compute_grant"
