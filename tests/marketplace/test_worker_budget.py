"""The worker's part of a trade the engine allows: decided and settled in one task, one
transaction, and a bounded number of statements (docs/performance.md lists them)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import Trade
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create

pytestmark = pytest.mark.django_db

# 15 on PostgreSQL, the goal (81 when this was first counted, 37 before the writes of one task were
# batched, 18 before the rule packs and sanctions lists were read together and the grant's context
# came with the trade's lock), 22 on SQLite (its ledger takes the general path: wallets read first
# for exact decimal arithmetic). What each statement is goes in docs/performance.md ("Pipeline").
CHECK_AND_SETTLE_BUDGET = {"postgresql": 15, "sqlite": 22}


def test_check_and_settle_of_an_allowed_trade_stays_within_its_statement_budget(
    rulepacks, buyer_eu, eu_personal, django_capture_on_commit_callbacks
):
    warm_up = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    trade_check_compliance(trade_id=warm_up.id, settle=True)
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)  # per-process caches are warm

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with CaptureQueriesContext(connection) as queries:
            settled = trade_check_compliance(trade_id=trade.id, settle=True)

    assert settled is not None and settled.status == Trade.Status.SETTLED
    assert [e.to_status for e in settled.events.all()] == ["checking", "approved", "settled"]
    assert not [c for c in callbacks if "trade_settle" in repr(c) or "'settle'" in repr(c)]  # no second task
    statements = [q["sql"][:120] for q in queries.captured_queries]
    statements = [s for s in statements if "SAVEPOINT" not in s]
    assert len(statements) <= CHECK_AND_SETTLE_BUDGET[connection.vendor], "\n".join(statements)


def test_without_settle_the_check_leaves_the_settlement_to_its_own_task(
    rulepacks, buyer_eu, eu_personal, django_capture_on_commit_callbacks
):
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decided = trade_check_compliance(trade_id=trade.id)

    assert decided is not None and decided.status == Trade.Status.APPROVED
    assert [c for c in callbacks if "settle" in repr(c)]
