"""Delivering: claim a due delivery, POST it to the checked address, record the attempt; the sweeper."""

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.errors import (
    WebhookUrlInvalidError,
)
from marketplace.models import WebhookAttempt, WebhookDelivery
from marketplace.services.webhooks.constants import (
    CONNECT_TIMEOUT,
    EARLY_SLACK,
    LEASE,
    READ_TIMEOUT,
    SWEEP_GRACE,
    USER_AGENT,
)
from marketplace.services.webhooks.fanout import webhook_enqueue
from marketplace.services.webhooks.signing import _body, _signing_secrets, webhook_signature
from marketplace.services.webhooks.targets import (
    IPAddress,
    WebhookTarget,
    webhook_resolve,
    webhook_target_parse,
    webhook_target_refusal,
)

logger = logging.getLogger(__name__)


def webhook_backoff() -> tuple[int, ...]:
    """Seconds to wait after attempt 1, 2, …; one more attempt than delays, then `failed`."""
    return tuple(settings.ELEMENTA_WEBHOOK_BACKOFF)


def webhook_max_countdown() -> int:
    """The longest delay a task countdown may carry. Redis redelivers an unacked message after the
    visibility timeout (300 s here) counted from when the worker took it, so countdown + the
    task's hard time limit (60 s) must stay below it; longer waits are left to the sweeper."""
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("visibility_timeout")
    if visibility is None:
        return 180
    return max(0, min(180, int(visibility) - int(settings.CELERY_TASK_TIME_LIMIT) - 30))


@dataclass(frozen=True)
class _Claim:
    delivery_id: uuid.UUID
    number: int
    kind: str
    event_id: str
    url: str
    body: bytes
    keys: tuple[str, ...]


@dataclass(frozen=True)
class _Outcome:
    """What an attempt came to. Never the response body: a receiver's answer is not ours to keep,
    and echoing it back would make webhooks a way to read whatever answers at an address."""

    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(*, delivery_id: uuid.UUID | str, now: datetime) -> _Claim | None:
    """Lock, check it is pending and due, move next_attempt_at ahead by the lease, release."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY_SLACK:
            return None  # a retry is scheduled for later, or another worker is attempting it now
        endpoint = delivery.endpoint
        if not endpoint.active:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            delivery.last_error = "The endpoint was disabled before the delivery went out."
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return None
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["next_attempt_at"])
        return _Claim(
            delivery_id=delivery.id, number=delivery.attempts + 1, kind=delivery.kind, event_id=delivery.event_id,
            url=endpoint.url, body=_body(delivery.payload), keys=tuple(_signing_secrets(endpoint, now)),
        )


def webhook_request_headers(
    *, kind: str, event_id: str, delivery_id: uuid.UUID, timestamp: int, body: bytes, keys: Iterable[str]
) -> dict[str, str]:
    signatures = ",".join(f"v1={webhook_signature(secret=key, timestamp=timestamp, body=body)}" for key in keys)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Elementa-Event": kind,
        "Elementa-Event-Id": event_id,
        "Elementa-Delivery": str(delivery_id),
        "Elementa-Timestamp": str(timestamp),
        "Elementa-Signature": signatures,
    }


def webhook_http_post(
    *, target: WebhookTarget, address: IPAddress, body: bytes, headers: dict[str, str], ca_certs: str | None = None,
) -> int:
    """POST `body` to `target`, connecting to `address` and nowhere else; the HTTP status. The TLS
    handshake sends the URL's host name (SNI) and the certificate must be valid for it, and the
    Host header is that name: the address was chosen by whoever checked it, the name by the
    receiver. No redirect is followed, nothing is retried, no proxy is used, and the response body
    is never read. Raises whatever urllib3 raises (timeouts, refused connections, TLS errors)."""
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        by_name = target.literal is None
        pool = urllib3.HTTPSConnectionPool(
            str(address), target.port, timeout=timeout, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs or certifi.where(), server_hostname=target.host if by_name else None,
            assert_hostname=target.host if by_name else None,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout, maxsize=1, retries=False)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers={**headers, "Host": target.host_header},
            retries=False, redirect=False, assert_same_host=False, preload_content=False, release_conn=False,
        )
        try:
            return int(response.status)
        finally:
            response.close()  # without reading: a receiver cannot make us download anything
    finally:
        pool.close()


def _post(claim: _Claim, now: datetime) -> _Outcome:
    """The HTTP request, outside any transaction. Never raises: whatever goes wrong is the attempt's
    error. The host is resolved once, every address checked, and the request goes to the first."""
    started = time.monotonic()
    status_code, error = None, ""
    try:
        target = webhook_target_parse(url=claim.url)
        addresses = webhook_resolve(target.host, target.port)
        refusal = webhook_target_refusal(target, addresses)
    except WebhookUrlInvalidError as exc:
        refusal = exc.fields["url"][0]
    except (OSError, UnicodeError):
        refusal = f"{urlsplit(claim.url).hostname} does not resolve"
    if refusal:
        error = f"refused: {refusal}"
    else:
        headers = webhook_request_headers(
            kind=claim.kind,
            event_id=claim.event_id,
            delivery_id=claim.delivery_id,
            timestamp=int(now.timestamp()),
            body=claim.body,
            keys=claim.keys,
        )
        try:
            status_code = webhook_http_post(target=target, address=addresses[0], body=claim.body, headers=headers)
        # Every failure of the outside call, including Celery's soft time limit, is this attempt's
        # failure, recorded and retried on schedule.
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
    return _Outcome(status_code=status_code, error=error, duration_ms=int((time.monotonic() - started) * 1000))


def _record(*, claim: _Claim, outcome: _Outcome, started: datetime) -> str | None:
    """Lock again and write the attempt and what follows from it. Idempotent: an attempt number
    already recorded (by a duplicate run of the same message) is not recorded twice."""
    finished = started + timedelta(milliseconds=outcome.duration_ms)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=claim.delivery_id).first()
        if delivery is None:
            return None  # the endpoint was deleted meanwhile
        if delivery.status != WebhookDelivery.Status.PENDING or delivery.attempts >= claim.number:
            return delivery.status
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=claim.number,
            at=started,
            url=claim.url,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        delivery.attempts = claim.number
        backoff = webhook_backoff()
        if outcome.ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = (
                WebhookDelivery.Status.DELIVERED, finished, None, "")
        elif claim.number > len(backoff):
            delivery.status, delivery.next_attempt_at, delivery.last_error = (
                WebhookDelivery.Status.FAILED,
                None,
                outcome.error,
            )
        else:
            delay = backoff[claim.number - 1]
            delivery.next_attempt_at, delivery.last_error = finished + timedelta(seconds=delay), outcome.error
            if delay <= webhook_max_countdown():
                transaction.on_commit(
                    partial(webhook_enqueue, delivery_id=str(delivery.id), countdown=delay), robust=True
                )
        delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at", "last_error"])
        return delivery.status


def webhook_deliver(*, delivery_id: uuid.UUID | str, now: datetime | None = None) -> str | None:
    """The delivery task's body: one attempt if the delivery is pending and due. Returns the
    delivery's status afterwards, or None if nothing was attempted. `now` is the clock (tests
    pass a later one to drive the retry schedule without waiting)."""
    now = now or timezone.now()
    claim = _claim(delivery_id=delivery_id, now=now)
    if claim is None:
        return None
    outcome = _post(claim, now)
    return _record(claim=claim, outcome=outcome, started=now)


def webhooks_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Publish every pending delivery that is due: retries waiting longer than a countdown may,
    messages the broker lost, attempts whose worker died (their lease ran out). Safe any time:
    a delivery not due, or already done, makes the task return at once."""
    cutoff = (now or timezone.now()) - SWEEP_GRACE
    ids = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at").values_list("id", flat=True)[:limit]
    )
    for delivery_id in ids:
        webhook_enqueue(delivery_id=str(delivery_id))
    if ids:
        logger.info("webhook sweep enqueued %d due deliveries", len(ids))
    return len(ids)
