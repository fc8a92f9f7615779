"""Organisations' endpoints: create, update, delete, rotate the secret, send a test ping."""

import logging
import secrets
import uuid
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from compliance.services.audit import audit_record
from marketplace.errors import (
    WebhookEndpointInactiveError,
    WebhookEndpointLimitError,
    WebhookEventUnknownError,
)
from marketplace.models import Membership, WebhookDelivery, WebhookEndpoint
from marketplace.services.webhooks.constants import EVENT_KINDS, MAX_ENDPOINTS_PER_ORGANISATION, PING
from marketplace.services.webhooks.fanout import webhook_enqueue
from marketplace.services.webhooks.targets import webhook_url_validate

logger = logging.getLogger(__name__)


def webhook_events_validate(*, events: Iterable[str]) -> list[str]:
    """The chosen kinds, de-duplicated in the canonical order, or WebhookEventUnknownError (400)."""
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise WebhookEventUnknownError("`events` must be a list of event kinds.", fields={"events": ["must be a list"]})
    chosen = list(events)
    unknown = sorted({str(e) for e in chosen} - set(EVENT_KINDS))
    if unknown:
        raise WebhookEventUnknownError(
            f"Unknown event kinds: {', '.join(unknown)}. Known: {', '.join(EVENT_KINDS)}.",
            fields={"events": [f"unknown: {u}" for u in unknown]},
        )
    if not chosen:
        raise WebhookEventUnknownError("Choose at least one event kind.", fields={"events": ["choose at least one"]})
    return [kind for kind in EVENT_KINDS if kind in chosen]


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)





def _audit_endpoint(*, kind: str, endpoint: WebhookEndpoint, actor: Any, data: dict[str, Any] | None = None) -> None:
    """An endpoint change, in the action's transaction. Never the secret: only that it changed."""
    audit_record(
        kind=kind,
        subject_type="webhook_endpoint",
        subject_id=endpoint.id,
        actor=actor,
        data={
            "organisation": str(endpoint.organisation_id),
            "url": endpoint.url,
            "events": list(endpoint.events),
            "active": endpoint.active,
            **(data or {}),
        },
    )


@transaction.atomic
def webhook_endpoint_create(
    *, membership: Membership, url: str, events: Iterable[str], description: str = "", active: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint for the member's organisation with a new secret (read it from the
    returned object; the API shows it once). Audited as `webhook.endpoint_created` (without the secret)."""
    url = webhook_url_validate(url=url)
    chosen = webhook_events_validate(events=events)
    # Not locked: two concurrent creations may end one above the limit, which harms nobody.
    if (
        WebhookEndpoint.objects.filter(organisation_id=membership.organisation_id).count()
        >= MAX_ENDPOINTS_PER_ORGANISATION
    ):
        raise WebhookEndpointLimitError(
            f"An organisation may register at most {MAX_ENDPOINTS_PER_ORGANISATION} webhook endpoints."
        )
    endpoint = WebhookEndpoint.objects.create(
        organisation_id=membership.organisation_id,
        url=url,
        events=chosen,
        description=description,
        secret=_new_secret(),
        active=active,
        created_by=membership.user,
    )
    _audit_endpoint(kind="webhook.endpoint_created", endpoint=endpoint, actor=membership.user)
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *,
    endpoint_id: uuid.UUID,
    actor: Any,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given; None leaves a field as it is. Deliveries already queued keep their
    event but go to the new URL. Audited as `webhook.endpoint_updated` with each change old → new."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    before = {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "active": endpoint.active,
    }
    if url is not None:
        endpoint.url = webhook_url_validate(url=url)
    if events is not None:
        endpoint.events = webhook_events_validate(events=events)
    if description is not None:
        endpoint.description = description
    if active is not None:
        endpoint.active = active
    endpoint.save()
    after = {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "active": endpoint.active,
    }
    changes = {k: {"from": before[k], "to": after[k]} for k in before if before[k] != after[k]}
    if changes:
        _audit_endpoint(kind="webhook.endpoint_updated", endpoint=endpoint, actor=actor, data={"changes": changes})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: uuid.UUID, actor: Any) -> None:
    """Delete the endpoint with its deliveries and attempts; a task in flight finds nothing and stops.
    Audited as `webhook.endpoint_deleted` with what the endpoint was."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    _audit_endpoint(kind="webhook.endpoint_deleted", endpoint=endpoint, actor=actor)
    endpoint.delete()


@transaction.atomic
def webhook_secret_rotate(
    *, endpoint_id: uuid.UUID, actor: Any, keep_previous_for: timedelta = timedelta(0)
) -> WebhookEndpoint:
    """A new secret, effective at once. With `keep_previous_for`, requests also carry a signature
    made with the old secret until then, so a receiver can switch without losing a request.
    Audited as `webhook.secret_rotated` with the overlap, never the secrets."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    if keep_previous_for > timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + keep_previous_for
    else:
        endpoint.previous_secret, endpoint.previous_secret_expires_at = "", None
    endpoint.secret = _new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    _audit_endpoint(
        kind="webhook.secret_rotated",
        endpoint=endpoint,
        actor=actor,
        data={
            "previous_secret_valid_until": endpoint.previous_secret_expires_at.isoformat()
            if endpoint.previous_secret_expires_at
            else None,
        },
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_ping(*, endpoint_id: uuid.UUID) -> WebhookDelivery:
    """Queue a `ping` event to one endpoint, whatever kinds it chose: the "send test" button."""
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    if not endpoint.active:
        raise WebhookEndpointInactiveError()
    now = timezone.now()
    event_id = f"ping_{uuid.uuid4()}"
    payload = {"event": PING, "id": event_id, "at": now.isoformat(), "endpoint": str(endpoint.id),
               "data": {"message": "A test event from Elementa; reply with any 2xx status."}}
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=event_id, kind=PING, payload=payload, next_attempt_at=now
    )
    transaction.on_commit(partial(webhook_enqueue, delivery_id=str(delivery.id)), robust=True)
    return delivery
