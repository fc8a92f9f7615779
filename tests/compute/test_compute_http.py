"""Compute-to-data end to end, over HTTP, with a real worker listening on compute.cn: a buyer in
Singapore learns the average basket size per Chinese province from the Guangdong dataset, and the
data never leaves China (no download, no file listing; only the released aggregate)."""

import time
from statistics import mean

import pytest

from marketplace.compute.demo import TINY, demo_orders_rows
from marketplace.models import AccessGrant, ComputeQuery, Trade
from tests.conftest import wait_for_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINISHED = {"released", "failed", "refused", "held"}


@pytest.fixture(autouse=True)
def _worker(celery_worker, rulepacks):
    """The session's worker process (default queue and every compute queue) and the shipped packs."""


def wait_for_query(client, query_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/queries/{query_id}/").json()
        if body["status"] in FINISHED:
            return body
        assert time.monotonic() < deadline, f"query {query_id} still {body['status']}"
        time.sleep(0.05)


def buy_compute(client, dataset) -> tuple[dict, dict]:
    response = client.post("/api/v1/trades/", {"dataset": str(dataset.id), "delivery": "compute"}, format="json")
    assert response.status_code == 201, response.json()
    trade = wait_for_status(response.json()["id"], {"settled", "rejected", "needs_documents", "in_review"})
    assert trade.status == "settled", client.get(f"/api/v1/trades/{trade.id}/").json()["decision"]
    grant = AccessGrant.objects.get(trade=trade)
    return client.get(f"/api/v1/trades/{trade.id}/").json(), client.get(f"/api/v1/grants/{grant.id}/").json()


def test_singapore_buyer_learns_average_basket_per_province_without_the_data_leaving_china(
        client_for, buyer_sg, guangdong, offer_compute):
    offer_compute(guangdong)
    buyer = client_for(buyer_sg)

    trade, grant = buy_compute(buyer, guangdong)

    # the law saw a compute trade: released aggregates are anonymised output, flagged with the reading cited
    assert trade["delivery"] == "compute" and trade["decision"]["outcome"] == "allow_flagged"
    compute_finding = next(f for f in trade["decision"]["findings"] if f["rule"] == "CN-COMPUTE-1")
    assert "PIPL Arts. 4, 73(4)" in compute_finding["citation"] and compute_finding["rulepack"] == "cn@2026.11.27"
    assert Trade.objects.get(pk=trade["id"]).decision.facts["delivery"] == "compute"
    # the grant lists what may be queried, with the roles
    assert grant["delivery"] == "compute"
    [table] = grant["tables"]
    assert table["name"] == "orders" and table["min_group_size"] == 10
    assert {c["name"]: c["role"] for c in table["columns"]}["customer_id"] == "identifier"

    sql = ("SELECT province, AVG(basket_size) AS avg_basket, COUNT(*) AS customers FROM orders GROUP BY province ORDER "
           "BY province")
    accepted = buyer.post(f"/api/v1/grants/{grant['id']}/queries/", {"sql": sql}, format="json")
    assert accepted.status_code == 202, accepted.json()
    assert accepted.json()["queue"] == "compute.cn"  # runs only where the data is stored

    body = wait_for_query(buyer, accepted.json()["id"])

    assert body["status"] == "released", body
    rows = {r[0]: r for r in body["result"]["rows"]}
    expected = {}
    for province, _, basket, _ in demo_orders_rows():
        expected.setdefault(province, []).append(basket)
    assert body["result"]["columns"] == ["province", "avg_basket", "customers"]
    assert TINY[0] not in rows  # 3 customers < k = 10: suppressed
    assert set(rows) == {p for p, v in expected.items() if len(v) >= 10}
    for province, values in expected.items():
        if province in rows:
            assert rows[province][1] == pytest.approx(mean(values)) and rows[province][2] == len(values)
    report = body["report"]
    assert report["rows_read"] == 5000 and report["groups_total"] == 7 and report["groups_suppressed"] == 1
    assert report["epsilon_spent"] == 0 and len(body["result_sha256"]) == 64
    assert body["tables"][0]["version"] == 1

    csv_text = buyer.get(f"/api/v1/queries/{body['id']}/?format=csv").content.decode()
    assert csv_text.splitlines()[0] == "province,avg_basket,customers" and "Guangdong" in csv_text
    assert buyer.get(f"/api/v1/queries/{body['id']}/", HTTP_ACCEPT="text/csv").content.decode() == csv_text

    # the data itself never leaves: no download, no file listing under a compute grant
    download = buyer.get(f"/api/v1/grants/{grant['id']}/download/")
    assert download.status_code == 403 and download.json()["code"] == "grant_compute_only"
    assert buyer.get(f"/api/v1/datasets/{guangdong.id}/files/").status_code == 403


def test_a_refused_query_is_a_400_naming_the_reason_and_runs_nothing(client_for, buyer_sg, guangdong, offer_compute):
    offer_compute(guangdong)
    buyer = client_for(buyer_sg)
    _, grant = buy_compute(buyer, guangdong)

    response = buyer.post(f"/api/v1/grants/{grant['id']}/queries/", {"sql": "SELECT * FROM orders"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "query_refused" and response.json()["fields"]["reason"] == ["query_select_star"]
    assert not ComputeQuery.objects.exists()


def test_idempotency_key_submits_once(client_for, buyer_sg, guangdong, offer_compute):
    offer_compute(guangdong)
    buyer = client_for(buyer_sg)
    _, grant = buy_compute(buyer, guangdong)
    sql = {"sql": "SELECT COUNT(*) FROM orders"}

    first = buyer.post(f"/api/v1/grants/{grant['id']}/queries/", sql, format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    again = buyer.post(f"/api/v1/grants/{grant['id']}/queries/", sql, format="json", HTTP_IDEMPOTENCY_KEY="q-1")

    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert ComputeQuery.objects.count() == 1
    assert wait_for_query(buyer, first.json()["id"])["result"]["rows"] == [[5000]]


def test_dp_offer_releases_noisy_aggregates_and_spends_the_budget(client_for, buyer_sg, guangdong, offer_compute):
    offer_compute(guangdong, dp_epsilon_per_period="2", dp_epsilon_per_query="1", bounds={"basket_size": [0, 400]})
    buyer = client_for(buyer_sg)
    _, grant = buy_compute(buyer, guangdong)
    assert grant["tables"][0]["differential_privacy"]["epsilon_per_query"] == 1.0

    sql = "SELECT province, AVG(basket_size) AS avg_basket FROM orders GROUP BY province"
    body = wait_for_query(
        buyer, buyer.post(f"/api/v1/grants/{grant['id']}/queries/", {"sql": sql}, format="json").json()["id"]
    )

    assert body["status"] == "released" and body["report"]["epsilon_spent"] == 1.0
    assert body["report"]["differential_privacy"]["library"] == "opendp"
    assert all(0 <= row[1] <= 400 for row in body["result"]["rows"])  # averages stay inside the declared bounds
    assert buyer.get(f"/api/v1/grants/{grant['id']}/").json()["privacy_budget"]["left"] == 1.0
    # a query the DP release cannot calibrate is refused before anything is reserved
    refused = buyer.post(
        f"/api/v1/grants/{grant['id']}/queries/", {"sql": "SELECT STDDEV(basket_size) FROM orders"}, format="json"
    )
    assert refused.status_code == 400 and refused.json()["fields"]["reason"] == ["query_not_supported_with_dp"]


def test_officers_can_hold_queries_on_sensitive_data_until_they_release_them(
        client_for, buyer_sg, officer, guangdong, offer_compute):
    offer_compute(
        guangdong,
        columns={
            "province": "quasi_identifier",
            "city": "quasi_identifier",
            "basket_size": "sensitive",
            "customer_id": "identifier",
        },
    )
    policy = client_for(officer).post(
        f"/api/v1/datasets/{guangdong.id}/compute-offer/review-policy/",
        {"review_sensitive_queries": True, "reason": "basket sizes reveal health purchases"},
        format="json",
    )
    assert policy.status_code == 200 and policy.json()["review_sensitive_queries"] is True
    buyer = client_for(buyer_sg)
    _, grant = buy_compute(buyer, guangdong)

    sql = "SELECT province, AVG(basket_size) AS avg_basket FROM orders GROUP BY province"
    held = wait_for_query(
        buyer, buyer.post(f"/api/v1/grants/{grant['id']}/queries/", {"sql": sql}, format="json").json()["id"]
    )
    assert held["status"] == "held" and held["review_required"] is True and held["result"] is None
    counts = wait_for_query(
        buyer,
        buyer.post(
            f"/api/v1/grants/{grant['id']}/queries/",
            {"sql": "SELECT province, COUNT(*) FROM orders GROUP BY province"},
            format="json",
        ).json()["id"],
    )
    assert counts["status"] == "released"  # no sensitive column read: no hold

    released = client_for(officer).post(
        f"/api/v1/queries/{held['id']}/release/", {"reason": "aggregate only"}, format="json"
    )

    assert released.status_code == 200 and released.json()["status"] == "released"
    assert buyer.get(f"/api/v1/queries/{held['id']}/").json()["result"]["columns"] == ["province", "avg_basket"]
    again = client_for(officer).post(f"/api/v1/queries/{held['id']}/refuse/", {"reason": "late"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "query_not_held"
