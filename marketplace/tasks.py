"""Celery tasks: thin, idempotent, an id in and one service call; the logic lives in the services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from config.logging import log_context

# Only transient failures are retried: a lost or locked database connection. A bug is not
# retried; the sweeper re-drives the trade once the cause is fixed.
TRANSIENT = (OperationalError, InterfaceError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="marketplace.trade_check_compliance", acks_late=True, **RETRY)
def trade_check_compliance_task(trade_id: str) -> None:
    from marketplace.services.trade_compliance import trade_check_compliance

    with log_context(trade=trade_id):
        trade_check_compliance(trade_id=trade_id, settle=True)  # an approving decision settles at once


@shared_task(name="marketplace.trades_check_drain", acks_late=True, **RETRY)
def trades_check_drain_task() -> None:
    from marketplace.services.check_drain import trades_check_drain

    trades_check_drain()


@shared_task(name="marketplace.trade_settle", acks_late=True, **RETRY)
def trade_settle_task(trade_id: str) -> None:
    from marketplace.services.settlement import trade_settle

    with log_context(trade=trade_id):
        trade_settle(trade_id=trade_id)


@shared_task(name="marketplace.trades_sweep_stuck", acks_late=True, **RETRY)
def trades_sweep_stuck_task() -> None:
    from marketplace.services.sweeper import trades_sweep_stuck

    trades_sweep_stuck()


# Webhooks: HTTP failures are not exceptions here; webhook_deliver records them and schedules the
# next attempt itself (ELEMENTA_WEBHOOK_BACKOFF). Only a lost database connection is retried.
@shared_task(name="marketplace.webhook_deliver", acks_late=True, **RETRY)
def webhook_deliver_task(delivery_id: str) -> None:
    from marketplace.services.webhooks import webhook_deliver

    webhook_deliver(delivery_id=delivery_id)


@shared_task(name="marketplace.webhook_deliver_many", acks_late=True, **RETRY)
def webhook_deliver_many_task(delivery_ids: list[str]) -> None:
    """One endpoint's deliveries of one transaction (services/webhooks/fanout.py), one attempt each,
    in order; a redelivered message skips those already delivered (webhook_deliver claims each)."""
    from marketplace.services.webhooks import webhook_deliver

    for delivery_id in delivery_ids:
        webhook_deliver(delivery_id=delivery_id)


@shared_task(name="marketplace.webhooks_sweep", acks_late=True, **RETRY)
def webhooks_sweep_task() -> None:
    from marketplace.services.webhooks import webhooks_sweep

    webhooks_sweep()


# Re-screening after a rule-pack version comes into force (marketplace/services/rescreening.py).
# Measured 4 ms (SQLite) to 10 ms (PostgreSQL) per flagged grant, so it gets more than the default
# 60 s, but stays below Redis's 300 s visibility timeout (a longer task would be redelivered).
@shared_task(name="marketplace.rescreen_after_activation", acks_late=True, time_limit=280, soft_time_limit=270, **RETRY)
def rescreen_after_activation_task(pack_id: str) -> None:
    from marketplace.services.rescreening import rescreen_after_activation

    rescreen_after_activation(pack_id=pack_id)


@shared_task(name="marketplace.rescreen_due", acks_late=True, **RETRY)
def rescreen_due_task() -> None:
    from marketplace.services.rescreening import rescreen_due, rescreen_lists_due

    rescreen_due()
    rescreen_lists_due()


@shared_task(
    name="marketplace.rescreen_after_list_import", acks_late=True, time_limit=280, soft_time_limit=270, **RETRY
)
def rescreen_after_list_import_task(list_id: str) -> None:
    from marketplace.services.rescreening import rescreen_after_list_import

    rescreen_after_list_import(list_id=list_id)


@shared_task(name="marketplace.rescreen_organisation", acks_late=True, time_limit=280, soft_time_limit=270, **RETRY)
def rescreen_organisation_task(organisation_id: str, ref: str, since: str) -> None:
    from datetime import datetime

    from marketplace.services.rescreening import rescreen_parties

    rescreen_parties(ref=ref, since=datetime.fromisoformat(since), organisation_ids=[organisation_id])


@shared_task(name="marketplace.idempotency_purge", acks_late=True, **RETRY)
def idempotency_purge_task() -> None:
    from marketplace.idempotency import idempotency_purge

    idempotency_purge()


# Compute-to-data: routed at publish time to the queue of the data's storage jurisdiction
# (compute.cn, …), so only a worker deployed there runs it. The hard limit stays above the engine's
# own time limit (ELEMENTA_COMPUTE_TIMEOUT) so DuckDB stops the query first and the run is recorded.
@shared_task(name="marketplace.compute_query_run", acks_late=True, time_limit=120, soft_time_limit=110, **RETRY)
def compute_query_run_task(query_id: str) -> None:
    from marketplace.services.compute import compute_query_run

    compute_query_run(query_id=query_id)
# --- notifications and organisations (marketplace/services/notifications.py, organisations.py) ---


@shared_task(name="marketplace.notification_send", acks_late=True, **RETRY)
def notification_send_task(notification_id: str) -> None:
    from marketplace.services.notifications import notification_send

    notification_send(notification_id=notification_id)


@shared_task(name="marketplace.notifications_send", acks_late=True, **RETRY)
def notifications_send_task(notification_ids: list[str]) -> None:
    """Several notifications of one action (one message instead of one each); each send is idempotent,
    so a retry of the batch sends none twice."""
    from marketplace.services.notifications import notifications_send

    notifications_send(notification_ids=notification_ids)


@shared_task(name="marketplace.notifications_drain", acks_late=True, **RETRY)
def notifications_drain_task() -> None:
    """The outbox, drained at most once per ELEMENTA_NOTIFY_DRAIN_SECONDS (services/notifications.py)."""
    from marketplace.services.notifications import notifications_drain

    notifications_drain()


@shared_task(name="marketplace.notifications_sweep", acks_late=True, **RETRY)
def notifications_sweep_task() -> None:
    from marketplace.services.notifications import notifications_sweep

    notifications_sweep()


@shared_task(name="marketplace.notifications_digest", acks_late=True, **RETRY)
def notifications_digest_task() -> None:
    from marketplace.services.notifications import notifications_digest

    notifications_digest()


@shared_task(name="marketplace.notifications_grants_expiring", acks_late=True, **RETRY)
def notifications_grants_expiring_task() -> None:
    from marketplace.services.notifications import notifications_grants_expiring

    notifications_grants_expiring()


@shared_task(name="marketplace.organisation_certifications_lapse", acks_late=True, **RETRY)
def organisation_certifications_lapse_task() -> None:
    from marketplace.services.organisations import organisation_certifications_lapse

    organisation_certifications_lapse()
