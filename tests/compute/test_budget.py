"""The ε budget is kept like money: reserved when a query is accepted, spent when its result is
released, given back when nothing was released; never negative, never overspent, even by
concurrent queries (PostgreSQL, real threads)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from marketplace.errors import ComputeQuotaExhaustedError, PrivacyBudgetExhaustedError
from marketplace.models import ComputeQuery, PrivacyBudget
from marketplace.services.compute import compute_query_run, compute_query_submit
from tests.compute.conftest import settled_compute_grant

DP = {"dp_epsilon_per_period": "3", "dp_epsilon_per_query": "1", "bounds": {"basket_size": [0, 400]}}
SQL = "SELECT province, AVG(basket_size) AS avg_basket, COUNT(*) AS n FROM orders GROUP BY province"


@pytest.mark.django_db
def test_released_queries_spend_epsilon_and_the_last_one_is_refused(
        in_process, rulepacks, buyer_sg, guangdong, offer_compute, client_for):
    offer_compute(guangdong, **DP)
    grant = settled_compute_grant(buyer_sg, guangdong)
    assert PrivacyBudget.objects.get(grant=grant).total == Decimal("3")

    for _ in range(3):
        query = compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql=SQL)
        ran = compute_query_run(query_id=query.id)
        assert ran.status == "released" and ran.epsilon_spent == Decimal("1")
        assert {row[0] for row in ran.result["rows"]} <= {
            "Guangdong",
            "Guangxi",
            "Hunan",
            "Fujian",
            "Jiangxi",
            "Hainan",
        }

    with pytest.raises(PrivacyBudgetExhaustedError):
        compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql=SQL)
    budget = PrivacyBudget.objects.get(grant=grant)
    assert (budget.spent, budget.reserved) == (Decimal("3"), Decimal("0"))
    shown = client_for(buyer_sg).get(f"/api/v1/grants/{grant.id}/").json()["privacy_budget"]
    assert shown == {"total": 3.0, "reserved": 0.0, "spent": 3.0, "left": 0.0}


@pytest.mark.django_db
def test_a_failed_run_gives_its_epsilon_back(in_process, rulepacks, buyer_sg, guangdong, offer_compute, settings):
    offer_compute(guangdong, **DP)
    grant = settled_compute_grant(buyer_sg, guangdong)
    query = compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql=SQL)
    assert PrivacyBudget.objects.get(grant=grant).reserved == Decimal("1")
    settings.ELEMENTA_COMPUTE_MEMORY_MB = 0  # the engine cannot even start: nothing is released

    ran = compute_query_run(query_id=query.id)

    assert ran.status == "failed" and ran.result is None
    budget = PrivacyBudget.objects.get(grant=grant)
    assert (budget.spent, budget.reserved) == (Decimal("0"), Decimal("0"))


@pytest.mark.django_db
def test_per_query_pricing_buys_a_number_of_queries(in_process, rulepacks, buyer_sg, guangdong, offer_compute):
    offer_compute(guangdong, pricing="per_query", price="5.00")
    grant = settled_compute_grant(buyer_sg, guangdong, queries=2)
    assert grant.trade.price == Decimal("10.00") and grant.queries_left == 2

    for _ in range(2):
        compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql="SELECT COUNT(*) FROM orders")
    with pytest.raises(ComputeQuotaExhaustedError):
        compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql="SELECT COUNT(*) FROM orders")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_queries_cannot_overspend_the_budget(in_process, rulepacks, buyer_sg, guangdong, offer_compute):
    offer_compute(guangdong, **DP)
    grant = settled_compute_grant(buyer_sg, guangdong)
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def submit() -> None:
        try:
            barrier.wait()
            compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql=SQL)
            outcomes.append("accepted")
        except PrivacyBudgetExhaustedError:
            outcomes.append("exhausted")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(outcomes) == ["accepted"] * 3 + ["exhausted"] * 7
    budget = PrivacyBudget.objects.get(grant=grant)
    assert budget.reserved == Decimal("3") and budget.spent == Decimal("0")
    assert ComputeQuery.objects.filter(grant=grant).count() == 3


@pytest.mark.django_db
def test_a_query_waiting_when_its_grant_is_revoked_does_not_run(
    in_process, rulepacks, buyer_sg, officer, guangdong, offer_compute
):
    from marketplace.services.grants import grant_revoke

    offer_compute(guangdong, **DP)
    grant = settled_compute_grant(buyer_sg, guangdong)
    query = compute_query_submit(grant_id=grant.id, membership=buyer_sg, sql=SQL)
    grant_revoke(grant_id=grant.id, actor_membership=officer, reason="re-screening")

    ran = compute_query_run(query_id=query.id)

    assert ran.status == "failed" and ran.reason_code == "grant_inactive" and ran.result is None
    assert PrivacyBudget.objects.get(grant=grant).reserved == Decimal("0")
