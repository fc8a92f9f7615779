"""The task queue declaration, shared by the settings and anything that publishes to a named queue."""

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
