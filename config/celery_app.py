"""The Celery application; configuration comes from Django settings under the CELERY_ namespace."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

import config.broker  # noqa: F401  (registers the atomic filesystem transport before any connection)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("elementa")
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
