"""The task queue declaration, shared by the settings and anything that publishes to a named queue."""

from collections.abc import Mapping

from kombu import Exchange, Queue


def is_amqp(broker_url: str) -> bool:
    return broker_url.startswith(("amqp", "pyamqp"))


def task_queue(name: str, broker_url: str) -> Queue:
    """On RabbitMQ a quorum queue: replicated and fsynced, so a broker restart loses nothing that was
    confirmed. Quorum queues refuse a global QoS; Celery detects them (worker_detect_quorum_queues)
    and uses a per-consumer prefetch. A classic queue of the same name cannot be redeclared as
    quorum: on an existing broker delete it first or choose another ELEMENTA_CELERY_QUEUE."""
    arguments = {"x-queue-type": "quorum"} if is_amqp(broker_url) else None
    return Queue(name, Exchange(name, type="direct"), routing_key=name, queue_arguments=arguments)


# Task families an operator may give their own queue and worker pool (docs/operations.md, "Scaling
# out"). Every task not named here, and every family left unset, goes to the default queue, so one
# worker serving the default queue runs everything. Compute queries are routed per storage
# jurisdiction instead (ELEMENTA_COMPUTE_QUEUE_PREFIX).
TASK_FAMILIES: dict[str, str] = {
    "marketplace.trade_check_compliance": "checks",
    "marketplace.trades_check_drain": "checks",
    "marketplace.trades_sweep_stuck": "checks",
    "marketplace.trade_settle": "settlement",
    "marketplace.webhook_deliver": "webhooks",
    "marketplace.webhook_deliver_many": "webhooks",
    "marketplace.webhooks_sweep": "webhooks",
    "marketplace.notification_send": "notifications",
    "marketplace.notifications_send": "notifications",
    "marketplace.notifications_drain": "notifications",
    "marketplace.notifications_sweep": "notifications",
    "marketplace.notifications_digest": "notifications",
    "marketplace.notifications_grants_expiring": "notifications",
    "marketplace.rescreen_after_activation": "screening",
    "marketplace.rescreen_due": "screening",
    "marketplace.rescreen_after_list_import": "screening",
    "marketplace.rescreen_organisation": "screening",
    "compliance.sanctions_lists_refresh": "screening",
    "compliance.audit_chain": "audit",
}
FAMILIES = ("checks", "settlement", "webhooks", "notifications", "screening", "audit")


def family_queues(environ: Mapping[str, str], default: str) -> dict[str, str]:
    """Each family's queue: ELEMENTA_QUEUE_<FAMILY> (e.g. ELEMENTA_QUEUE_WEBHOOKS=webhooks), else the default."""
    return {family: environ.get(f"ELEMENTA_QUEUE_{family.upper()}", "").strip() or default for family in FAMILIES}


def task_routes(queues: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Celery's task_routes for the families' queues (used by beat and by any `.delay`)."""
    return {name: {"queue": queues[family]} for name, family in TASK_FAMILIES.items()}


def queue_for(name: str, queues: Mapping[str, str]) -> str | None:
    """The queue a task by this name is published to, or None for Celery's default."""
    family = TASK_FAMILIES.get(name)
    return queues[family] if family else None
