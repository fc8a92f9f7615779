"""The Celery application; configuration comes from Django settings under the CELERY_ namespace."""

import os

from celery import Celery

import config.broker  # noqa: F401  (registers the atomic filesystem transport before any connection)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("elementa")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="elementa.noop", ignore_result=False)
def noop() -> None:
    """Does nothing: the bench measures the broker and worker ceiling with it."""
