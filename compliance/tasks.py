"""Compliance Celery tasks: thin, idempotent."""

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(name="compliance.audit_chain", acks_late=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=1, max_retries=5, ignore_result=True)
def audit_chain_task() -> None:
    """Link newly committed audit events into the hash chain (idempotent: chained events are skipped)."""
    from compliance.services.audit import audit_chain

    audit_chain()
