"""Statement budgets of the hottest requests: buying (with an Idempotency-Key and the escrow hold)
and GET /me/. Counted with CaptureQueriesContext on whichever database the suite runs on."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

POST_BUDGET = 8
ME_BUDGET = 3


def test_buying_with_an_idempotency_key_stays_within_the_statement_budget(client_for, buyer_us, eu_personal):
    client = client_for(buyer_us)
    client.get("/api/v1/me/")  # warm the session cache a real client has after its first call
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )

    assert response.status_code == 201, response.json()
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= POST_BUDGET, "\n".join(statements)


def test_me_stays_within_the_statement_budget(client_for, buyer_us):
    client = client_for(buyer_us)
    client.get("/api/v1/me/")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/me/")

    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= ME_BUDGET, "\n".join(statements)
