"""Celery tasks: thin, idempotent, an id in and one service call (style.md §4)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Only transient failures are retried: a lost or locked database connection. A bug is not
# retried; the sweeper re-drives the trade once the cause is fixed.
TRANSIENT = (OperationalError, InterfaceError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 30, "retry_jitter": True, "max_retries": 8}


@shared_task(name="marketplace.trade_check_compliance", acks_late=True, **RETRY)
def trade_check_compliance_task(trade_id: str) -> None:
    from marketplace.services.trade_compliance import trade_check_compliance

    trade_check_compliance(trade_id=trade_id)


@shared_task(name="marketplace.trade_settle", acks_late=True, **RETRY)
def trade_settle_task(trade_id: str) -> None:
    from marketplace.services.settlement import trade_settle

    trade_settle(trade_id=trade_id)


@shared_task(name="marketplace.trades_sweep_stuck", acks_late=True, **RETRY)
def trades_sweep_stuck_task() -> None:
    from marketplace.services.sweeper import trades_sweep_stuck

    trades_sweep_stuck()
