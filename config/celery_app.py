"""The Celery application; configuration comes from Django settings under the CELERY_ namespace."""

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections
from kombu.exceptions import OperationalError

import config.broker  # noqa: F401  (registers the atomic filesystem transport before any connection)
from config.outage import broker_breaker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class BrokerUnavailableError(OperationalError):
    """Raised without touching the network while the broker breaker is open."""


class GuardedTask(Task):
    """Publishing goes through the broker circuit breaker (config/outage.py): a broker that is
    down or frozen costs one publish one bounded timeout (CELERY_BROKER_TRANSPORT_OPTIONS), then
    publishes fail at once for ELEMENTA_OUTAGE_RETRY_AFTER seconds. Callers catch the error and
    leave the work to the sweepers, so a request never waits on the broker more than once."""

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        if not broker_breaker.allow():
            raise BrokerUnavailableError("the broker failed a moment ago; not publishing until it is retried")
        try:
            result = super().apply_async(*args, **kwargs)
        except (OperationalError, OSError) as exc:
            broker_breaker.failed(exc)
            raise
        broker_breaker.succeeded()
        return result


app = Celery("elementa", task_cls=GuardedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="elementa.noop", ignore_result=False)
def noop() -> None:
    """Does nothing: the bench measures the broker and worker ceiling with it."""


@task_prerun.connect
@task_postrun.connect
def _drop_broken_connections(**kwargs: object) -> None:
    """Connections are reused across tasks (CELERY_DB_REUSE_MAX); like Django around a request,
    close one that errored and is no longer usable, or is past CONN_MAX_AGE, so the next task (or
    the retry of this one) opens a fresh connection instead of failing on a dead one."""
    close_old_connections()
