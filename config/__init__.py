"""Project package: settings, URLs, the Celery app and project-wide API glue."""

from config.celery_app import app as celery_app

__all__ = ["celery_app"]
