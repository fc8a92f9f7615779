"""Statement budgets of the hottest requests: buying (with an Idempotency-Key and the escrow hold)
and GET /me/, with the session already verified once (config/auth_cache.py). Counted with
CaptureQueriesContext on whichever database the suite runs on, outside a test transaction so the
request's own transaction is BEGIN/COMMIT (not counted) as in production, not a SAVEPOINT pair.
docs/decisions.md, "The POST path", says where each statement went."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.services.webhooks.subscriptions import subscriptions

pytestmark = pytest.mark.django_db(transaction=True)

# PostgreSQL: the dataset read, the trade, its first event, both audit events (one INSERT), the
# escrow hold (one statement) and the idempotency record. Nobody is e-mailed of `checking`
# (trade_lifecycle.UNANNOUNCED) and neither party has a webhook endpoint, so the recipients are
# never read (8 before: they and the notifications took two). SQLite's hold is four statements
# (read, update, two inserts).
POST_BUDGET = 6 if connection.vendor == "postgresql" else 9
ME_BUDGET = 3


@pytest.fixture(autouse=True)
def _published_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The committed purchase's tasks are not published: a worker the session started would otherwise
    check the trade while the test's teardown truncates the tables (a deadlock on PostgreSQL)."""
    monkeypatch.setattr("config.enqueue.send", lambda name, args, countdown, queue: None)


def _statements(queries: CaptureQueriesContext) -> list[str]:
    """What the request sent, less BEGIN and COMMIT (which SQLite's IMMEDIATE mode logs and
    PostgreSQL's driver does not)."""
    return [q["sql"] for q in queries.captured_queries if q["sql"].split(" ")[0] not in ("BEGIN", "COMMIT")]


def test_buying_with_an_idempotency_key_stays_within_the_statement_budget(client_for, buyer_us, eu_personal):
    client = client_for(buyer_us)
    client.get("/api/v1/me/")  # warm the session cache a real client has after its first call
    subscriptions.may_have_endpoints([buyer_us.organisation_id])  # and the process's webhook subscriptions
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )

    assert response.status_code == 201, response.json()
    statements = _statements(queries)
    assert len(statements) <= POST_BUDGET, "\n".join(statements)


def test_me_stays_within_the_statement_budget(client_for, buyer_us):
    client = client_for(buyer_us)
    client.get("/api/v1/me/")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/me/")

    assert response.status_code == 200
    statements = _statements(queries)
    assert len(statements) <= ME_BUDGET, "\n".join(statements)
