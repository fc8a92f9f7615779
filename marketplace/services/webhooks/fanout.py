"""Turning an event into pending deliveries (in the event's transaction) and publishing them after commit."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from config.enqueue import enqueue
from config.transactions import savepoint_needed
from marketplace.errors import (
    WebhookDeliveryPendingError,
    WebhookEndpointInactiveError,
)
from marketplace.models import WebhookDelivery, WebhookEndpoint
from marketplace.services.webhooks.signing import _plain_json
from marketplace.services.webhooks.subscriptions import subscriptions

logger = logging.getLogger(__name__)


def webhook_enqueue(*, delivery_id: str, countdown: int = 0) -> None:
    """Publish one delivery task. If the broker is down the delivery stays pending and due, and the
    sweeper publishes it later: a request that caused an event never fails for a webhook."""
    enqueue("marketplace.webhook_deliver", delivery_id, countdown=countdown)  # broker down: the sweeper re-drives it


# Inside webhooks_batched(): the deliveries queued in the block, by endpoint, in order.
_batch: ContextVar[dict[UUID, list[str]] | None] = ContextVar("elementa_webhook_batch", default=None)


@contextmanager
def webhooks_batched() -> Iterator[None]:
    """Inside it, the deliveries that fan-outs queue are published, once the transaction commits,
    as one task per endpoint (marketplace.webhook_deliver_many) rather than one per delivery: a
    trade decided, approved, granted and settled in one task is three deliveries to an endpoint
    subscribed to all three, and now one message. Per endpoint, so one slow receiver never holds
    another's events back; each delivery keeps its own attempt, signature and retry schedule.
    Nested blocks join the outermost one."""
    if _batch.get() is not None:
        yield
        return
    queued: dict[UUID, list[str]] = {}
    token = _batch.set(queued)
    try:
        yield
    finally:
        _batch.reset(token)
    for delivery_ids in queued.values():
        transaction.on_commit(partial(webhook_enqueue_many, delivery_ids=delivery_ids), robust=True)


def webhook_enqueue_many(*, delivery_ids: list[str]) -> None:
    """Publish one endpoint's deliveries of a transaction as one task (one delivery: the usual task)."""
    if len(delivery_ids) == 1:
        webhook_enqueue(delivery_id=delivery_ids[0])
    elif delivery_ids:
        enqueue("marketplace.webhook_deliver_many", delivery_ids)  # broker down: the sweeper re-drives them


def webhook_fanout(*, event_id: str, kind: str, organisation_ids: list[UUID], payload: dict[str, Any]) -> None:
    """Queue deliveries of one event to the endpoints of the given organisations that chose its
    kind. Called inside the transaction that caused the event. Organisations with no active
    endpoint (most) cost no query: see subscriptions.py."""
    if not organisation_ids or not subscriptions.may_have_endpoints(organisation_ids):
        return
    with transaction.atomic(savepoint=savepoint_needed()):
        _fanout(event_id=event_id, kind=kind, organisation_ids=organisation_ids, payload=payload)


def _fanout(*, event_id: str, kind: str, organisation_ids: list[UUID], payload: dict[str, Any]) -> None:
    from marketplace.services.recipients import recipients_prefetched_for

    prefetched = recipients_prefetched_for(organisation_ids)
    candidates = prefetched.endpoints if prefetched is not None else WebhookEndpoint.objects.filter(
        organisation_id__in=organisation_ids, active=True).values_list("id", "events")
    # The kinds are filtered here, not in SQL: JSON `contains` is not available on SQLite, and an
    # organisation has a handful of endpoints.
    endpoint_ids = [endpoint_id for endpoint_id, events in candidates if kind in events]
    if not endpoint_ids:
        return
    now, body = timezone.now(), _plain_json(payload)
    rows = [
        WebhookDelivery(endpoint_id=eid, event_id=str(event_id), kind=kind, payload=body, next_attempt_at=now)
        for eid in endpoint_ids
    ]
    # A second fan-out of the same event inserts nothing: (endpoint, event_id) is unique.
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    created = WebhookDelivery.objects.filter(id__in=[row.id for row in rows]).values_list("id", "endpoint_id")
    batch = _batch.get()
    for delivery_id, endpoint_id in created:
        if batch is not None:
            batch.setdefault(endpoint_id, []).append(str(delivery_id))
        else:
            transaction.on_commit(partial(webhook_enqueue, delivery_id=str(delivery_id)), robust=True)


@transaction.atomic
def webhook_delivery_redeliver(*, delivery_id: UUID) -> WebhookDelivery:
    """Send a delivered or failed event again, as a new delivery (same event id, new delivery id,
    a fresh retry schedule). 409 while the original is still pending or the endpoint is disabled."""
    original = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=delivery_id)
    if original.status == WebhookDelivery.Status.PENDING:
        raise WebhookDeliveryPendingError()
    if not original.endpoint.active:
        raise WebhookEndpointInactiveError()
    delivery = WebhookDelivery.objects.create(
        endpoint=original.endpoint, event_id=original.event_id, kind=original.kind, payload=original.payload,
        redelivery_of=original, next_attempt_at=timezone.now(),
    )
    transaction.on_commit(partial(webhook_enqueue, delivery_id=str(delivery.id)), robust=True)
    return delivery
