"""Compliance Celery tasks: thin, idempotent."""

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(name="compliance.audit_chain", acks_late=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=1, max_retries=5, ignore_result=True)
def audit_chain_task() -> None:
    """Link newly committed audit events into the hash chain (idempotent: chained events are skipped)."""
    from compliance.services.audit import audit_chain

    audit_chain()


@shared_task(
    name="compliance.sanctions_lists_refresh", acks_late=True, ignore_result=True, time_limit=280, soft_time_limit=270
)
def sanctions_lists_refresh_task() -> None:
    """Download the configured sanctions lists and import new versions (idempotent by checksum)."""
    from compliance.services.sanctions_lists import sanctions_lists_refresh

    sanctions_lists_refresh()
