"""The one seam between the services and Celery: publish a task by its stable name.

Services never import task modules (no services ↔ tasks import cycle): they name the task
(`marketplace.trade_settle`), and Celery routes it like any other. Publishing is best effort by
design: if the broker is unreachable the failure is logged and the caller carries on, because
each kind of work has a sweeper that re-drives what was committed but never published (stuck
trades, due webhook deliveries, due re-screenings). Tests replace `send` to observe or break it.
"""

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from kombu import Queue
from kombu.exceptions import OperationalError as KombuOperationalError

logger = logging.getLogger(__name__)


def send(name: str, args: list[Any], countdown: float | None, queue: str | None) -> None:
    """Publish through the broker circuit breaker (config/outage.py): a broker that is down or
    frozen costs one publish one bounded timeout, then publishes fail at once for a few seconds."""
    from config.celery_app import BrokerUnavailableError, app
    from config.outage import broker_breaker
    from config.queues import queue_for, task_queue

    if not broker_breaker.allow():
        raise BrokerUnavailableError("the broker failed a moment ago; not publishing until it is retried")
    destination: str | Queue | None = queue
    if queue is None:  # the family's queue, if the operator gave it one (config/queues.py), declared as
        routed = queue_for(name, settings.ELEMENTA_TASK_QUEUES)  # its workers declare it (quorum on RabbitMQ)
        destination = task_queue(routed, settings.CELERY_BROKER_URL) if routed else None
    try:
        # ignore_result: no task here returns one (CELERY_TASK_IGNORE_RESULT), but send_task by name
        # cannot know that, and without it Celery subscribes to the task's result on the result
        # backend: a Redis SUBSCRIBE on every publish and, with Redis down, 20 reconnect attempts
        # (about 19 s) inside the request (bench/faults.py scenario 2)
        app.send_task(name, args=args, countdown=countdown, queue=destination, ignore_result=True)
    except (KombuOperationalError, OSError) as exc:
        broker_breaker.failed(exc)
        raise
    broker_breaker.succeeded()


def enqueue(name: str, *args: Any, countdown: float | None = None, queue: str | None = None) -> bool:
    """Publish `name(*args)` now; False (logged) if the broker could not take it."""
    try:
        send(name, list(args), countdown or None, queue)
    except Exception:  # the broker is unreachable: the sweeper for this kind of work is the backstop
        logger.warning("could not enqueue %s%s; its sweeper will retry", name, tuple(args), exc_info=True)
        return False
    return True


def enqueue_on_commit(name: str, *args: Any, countdown: float | None = None, queue: str | None = None) -> None:
    """Publish once the current transaction commits (never for a rolled-back one)."""
    transaction.on_commit(partial(enqueue, name, *args, countdown=countdown, queue=queue), robust=True)
