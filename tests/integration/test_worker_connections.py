"""The worker keeps its PostgreSQL connections between tasks (a new session per task cost more
than the task), and still recovers when the server drops them."""

import pytest
from django.db import connection

from tests.conftest import wait_for_status

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def sessions_opened() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def settle(client, dataset) -> str:
    response = client.post("/api/v1/trades/", {"dataset": str(dataset.id), "repeat": True}, format="json")
    assert response.status_code == 201, response.json()
    trade_id = response.json()["id"]
    wait_for_status(trade_id, {"settled"})
    return trade_id


def test_the_worker_reuses_its_database_connections(celery_worker, rulepacks, client_for, buyer_eu, eu_personal):
    buyer = client_for(buyer_eu)
    settle(buyer, eu_personal)  # the worker's processes have connected once
    before = sessions_opened()

    for _ in range(10):  # 20 tasks: a check and a settlement each
        settle(buyer, eu_personal)

    # Before, every task opened a session of its own (20 here); now only the test's own polling
    # connection may come and go.
    assert sessions_opened() - before <= 4


def test_a_connection_the_server_dropped_is_replaced(celery_worker, rulepacks, client_for, buyer_eu, eu_personal):
    buyer = client_for(buyer_eu)
    settle(buyer, eu_personal)
    with connection.cursor() as cursor:  # the database restarts under the worker, in effect
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    settle(buyer, eu_personal)  # the task that meets the dead connection retries on a fresh one
