"""Webhooks: organisations' endpoints receive signed notifications of events.

What a receiver gets
--------------------
One HTTPS POST per event and endpoint, the event's JSON as the body, and these headers:

    Content-Type:        application/json
    Elementa-Event:      trade.status_changed   (or trade.decided, grant.issued, grant.revoked, grant.suspended, grant.reinstated,
                         grant.revocation_requested, grant.revocation_decided, ping)
    Elementa-Event-Id:   evt_…                  the same on every delivery of one event: deduplicate on it
    Elementa-Delivery:   <uuid>                 this delivery; a manual redelivery has a new one
    Elementa-Timestamp:  1764201600             Unix seconds when this attempt was signed
    Elementa-Signature:  v1=<64 hex>            two comma-separated v1= values while a rotated secret overlaps

Verifying a request (the Stripe scheme)
---------------------------------------
1. Take the raw body bytes as received, before any JSON parsing or re-encoding.
2. expected = hex(HMAC-SHA256(key=secret, message=timestamp + "." + body)), with `timestamp` the
   Elementa-Timestamp header as sent (ASCII digits).
3. Accept if any `v1=` value of Elementa-Signature equals `expected`, compared in constant time
   (hmac.compare_digest).
4. Reject if |now - timestamp| exceeds a tolerance (5 minutes suggested, SIGNATURE_TOLERANCE):
   the timestamp is signed, so a replayed request cannot be given a fresh one.
`webhook_signature_verify` below does exactly this and is what the tests use.

Delivery
--------
At least once. A 2xx answer within 3 s (connect) + 10 s (read) delivers; anything else — another
status, a timeout, a refused connection, a redirect (never followed) — is an attempt that failed,
recorded with its status, error and duration; the response body is never read nor kept. Retries
follow ELEMENTA_WEBHOOK_BACKOFF (10 s, 30 s, 2 min, 10 min, 1 h, 6 h, 6 h: 8 attempts over about
13 h), then the delivery is `failed` and the organisation may redeliver it. Order across events is
not guaranteed; payloads carry `at`.

Where requests may go (SSRF): https to public addresses only, checked at registration and again at
every attempt, which resolves the host once, refuses if ANY address is not public, and connects to
the first address with TLS verified for the URL's host name; see "validation" below and
docs/webhooks.md. ELEMENTA_WEBHOOK_ALLOWED_HOSTS exempts local receivers (development).

Reliability: fan-out writes pending deliveries in the transaction that caused the event and
publishes a task per delivery after commit. Short retry delays ride on the task's countdown, kept
below the Redis visibility timeout (a longer countdown is redelivered in a loop: Redis hands the message to another worker once the timeout passes);
longer ones, lost messages and crashed workers are picked up by `webhooks_sweep` (Celery beat),
which re-enqueues every pending delivery that is due. The row lock is held only to claim and to
record, never during the HTTP call, so a slow receiver holds up nobody else.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from compliance.services.audit import audit_record
from config.enqueue import enqueue
from marketplace.errors import (
    WebhookDeliveryPendingError,
    WebhookEndpointInactiveError,
    WebhookEndpointLimitError,
    WebhookEventUnknownError,
    WebhookUrlInvalidError,
    WebhookUrlNotAllowedError,
)
from marketplace.models import Membership, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

EVENT_KINDS = (
    "trade.status_changed", "trade.decided", "grant.issued", "grant.revoked",
    "grant.suspended", "grant.reinstated", "grant.revocation_requested", "grant.revocation_decided",
    "evidence.accepted", "evidence.rejected",
)
PING = "ping"  # sent by the test button, whatever the endpoint chose

SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between Elementa-Timestamp and its clock
CONNECT_TIMEOUT, READ_TIMEOUT = 3, 10
# An attempt in flight holds the delivery for this long (claimed by moving next_attempt_at ahead):
# longer than one attempt can take (the task's hard time limit is 60 s), so a duplicate message
# finds it not due, and short enough that a crashed worker's delivery is swept again soon after.
LEASE = timedelta(seconds=90)
EARLY_SLACK = timedelta(seconds=1)  # a countdown task may arrive a moment before next_attempt_at
SWEEP_GRACE = timedelta(seconds=15)  # the sweeper leaves a just-due delivery to its countdown task
MAX_ENDPOINTS_PER_ORGANISATION = 20
HTTPS_ONLY = "it must use https"
USER_AGENT = "Elementa-Webhooks/1"


# --- validation: where a webhook may be sent (SSRF) ---------------------------------------------
#
# A member chooses the URL, and our server makes the request: without care that is a way into our
# own network (the database, Redis, cloud metadata at 169.254.169.254, the admin of a router). So
# the host is resolved and EVERY address must be public; the same check runs at registration and
# again at each attempt, where the one resolution that was checked is also the address connected
# to (a name that resolves elsewhere a moment later, "DNS rebinding", changes nothing). The
# networks below are refused by name; anything else the standard library does not call global is
# refused too. IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo)
# are refused whole: a public receiver has a plain address of either family.

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DENIED: tuple[tuple[IPNetwork, str], ...] = tuple((ipaddress.ip_network(net), what) for net, what in (
    ("0.0.0.0/8", "an unspecified (this-network) address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata services live there)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/32", "a Teredo address"),
    ("2001:db8::/32", "a documentation address"),
    ("2002::/16", "a 6to4 address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
))


_CARRY_IPV4 = frozenset(
    ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "::/96", "64:ff9b::/96", "2001::/32", "2002::/16")
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the forms that carry one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in ipaddress.IPv6Network("64:ff9b::/96") or ip in ipaddress.IPv6Network("::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def webhook_address_denial(address: IPAddress) -> str | None:
    """Why a webhook must not be sent to `address` ("a loopback address", …), or None if it is public."""
    for network, what in _DENIED:
        if address.version == network.version and address in network:
            if network in _CARRY_IPV4 and isinstance(address, ipaddress.IPv6Address):
                inner = _embedded_ipv4(address)
                if inner is not None:
                    inner_why = webhook_address_denial(inner)
                    return f"{what} (carrying {inner}{', ' + inner_why if inner_why else ''})"
            return what
    flags = (address.is_private, address.is_loopback, address.is_link_local, address.is_multicast, address.is_reserved,
             address.is_unspecified, getattr(address, "is_site_local", False))
    if not address.is_global or any(flags):
        return "not a public address"
    return None


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL taken apart: where to connect and what to say. `host` is the ASCII (IDNA) name
    or the bare IP literal; `path` includes the query."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def literal(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if self.port == {"https": 443, "http": 80}[self.scheme] else f"{shown}:{self.port}"


def _allow_list() -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """ELEMENTA_WEBHOOK_ALLOWED_HOSTS: host names, and IP addresses or networks, exempt from the
    address check and allowed plain http (local development receivers). Empty by default."""
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in getattr(settings, "ELEMENTA_WEBHOOK_ALLOWED_HOSTS", ()) or ():
        entry = str(entry).strip().lower().strip("[]")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return frozenset(names), tuple(networks)


def webhook_resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order, once each.
    OSError if it does not resolve."""
    found: list[IPAddress] = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OSError(f"{host} has no address")
    return found


def webhook_target_refusal(target: WebhookTarget, addresses: list[IPAddress]) -> str | None:
    """Why a request to `target` at these resolved addresses must not be made, or None. Refused if
    ANY address is denied (unless the allow-list covers the host or that address), and plain http
    unless the allow-list covers the host or every address."""
    names, networks = _allow_list()
    named = target.host.rstrip(".") in names
    allowed = [named or any(a.version == n.version and a in n for n in networks) for a in addresses]
    for address, exempt in zip(addresses, allowed, strict=True):
        why = None if exempt else webhook_address_denial(address)
        if why:
            if target.literal is not None:
                return f"{address} is {why}"
            return f"{target.host} resolves to {address}, {why}"
    if target.scheme != "https" and not (named or (addresses and all(allowed))):
        return HTTPS_ONLY
    return None


def webhook_target_parse(*, url: str) -> WebhookTarget:
    """The URL taken apart, or WebhookUrlInvalidError (400): http(s), no credentials, no fragment,
    at most 500 characters. Says nothing yet about where it points."""

    def invalid(reason: str) -> WebhookUrlInvalidError:
        return WebhookUrlInvalidError(f"The webhook URL is not valid: {reason}.", fields={"url": [reason]})

    url = (url or "").strip()
    if len(url) > 500:
        raise invalid("at most 500 characters")
    try:
        URLValidator(schemes=["http", "https"])(url)
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
        host = (parts.hostname or "").lower().encode("idna").decode("ascii")
    except (ValidationError, ValueError, UnicodeError):
        raise invalid("not a valid http(s) URL") from None
    if not host:
        raise invalid("not a valid http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise invalid("credentials in the URL are not accepted")
    if parts.fragment:
        raise invalid("a fragment (#…) is not sent to servers")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=parts.scheme, host=host, port=port, path=path)


def webhook_url_validate(*, url: str) -> str:
    """The URL, stripped, if a webhook may be registered for it. WebhookUrlInvalidError (400) for a
    malformed URL or plain http; WebhookUrlNotAllowedError (400) if the host is, or resolves to, an
    address that is not public (see webhook_address_denial) and not in ELEMENTA_WEBHOOK_ALLOWED_HOSTS.
    A name that does not resolve (yet) is accepted: every attempt resolves and checks it again,
    and that check is the one that protects."""
    target = webhook_target_parse(url=url)
    try:
        addresses = webhook_resolve(target.host, target.port)
    except (OSError, UnicodeError):
        addresses = []
    refusal = webhook_target_refusal(target, addresses)
    if refusal == HTTPS_ONLY:
        raise WebhookUrlInvalidError(f"The webhook URL is not valid: {refusal}.", fields={"url": [refusal]})
    if refusal:
        raise WebhookUrlNotAllowedError(f"The webhook URL is not allowed: {refusal}.", fields={"url": [refusal]})
    return url.strip()


def webhook_events_validate(*, events: Iterable[str]) -> list[str]:
    """The chosen kinds, de-duplicated in the canonical order, or WebhookEventUnknownError (400)."""
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise WebhookEventUnknownError("`events` must be a list of event kinds.", fields={"events": ["must be a list"]})
    chosen = list(events)
    unknown = sorted({str(e) for e in chosen} - set(EVENT_KINDS))
    if unknown:
        raise WebhookEventUnknownError(
            f"Unknown event kinds: {', '.join(unknown)}. Known: {', '.join(EVENT_KINDS)}.", fields={"events": [f"unknown: {u}" for u in unknown]},
        )
    if not chosen:
        raise WebhookEventUnknownError("Choose at least one event kind.", fields={"events": ["choose at least one"]})
    return [kind for kind in EVENT_KINDS if kind in chosen]


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- signing ----------------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: int | str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_signature_verify(
    *, secret: str, body: bytes, timestamp: str, signature_header: str, tolerance: int = SIGNATURE_TOLERANCE, now: float | None = None,
) -> bool:
    """What a receiver does: a `v1=` value matches and the timestamp is within `tolerance` seconds."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    candidates = [part.strip()[3:] for part in signature_header.split(",") if part.strip().startswith("v1=")]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        keys.append(endpoint.previous_secret)
    return keys


def _body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed; the same for every attempt of a delivery."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _json_default(value: Any) -> str:
    if isinstance(value, date | time_of_day):
        return value.isoformat()  # full precision; DjangoJSONEncoder would cut to milliseconds
    return str(value)  # UUID, Decimal, lazy strings


def _plain_json(payload: dict[str, Any]) -> dict[str, Any]:
    """Datetimes (ISO 8601), UUIDs and decimals as strings, so the stored payload is what is sent."""
    return json.loads(json.dumps(payload, default=_json_default))


# --- endpoints --------------------------------------------------------------------------------


def _audit_endpoint(*, kind: str, endpoint: WebhookEndpoint, actor: Any, data: dict[str, Any] | None = None) -> None:
    """An endpoint change, in the action's transaction. Never the secret: only that it changed."""
    audit_record(kind=kind, subject_type="webhook_endpoint", subject_id=endpoint.id, actor=actor, data={
        "organisation": str(endpoint.organisation_id), "url": endpoint.url, "events": list(endpoint.events), "active": endpoint.active,
        **(data or {}),
    })


@transaction.atomic
def webhook_endpoint_create(
    *, membership: Membership, url: str, events: Iterable[str], description: str = "", active: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint for the member's organisation with a new secret (read it from the
    returned object; the API shows it once). Audited as `webhook.endpoint_created` (without the secret)."""
    url = webhook_url_validate(url=url)
    chosen = webhook_events_validate(events=events)
    # Not locked: two concurrent creations may end one above the limit, which harms nobody.
    if WebhookEndpoint.objects.filter(organisation_id=membership.organisation_id).count() >= MAX_ENDPOINTS_PER_ORGANISATION:
        raise WebhookEndpointLimitError(f"An organisation may register at most {MAX_ENDPOINTS_PER_ORGANISATION} webhook endpoints.")
    endpoint = WebhookEndpoint.objects.create(
        organisation_id=membership.organisation_id, url=url, events=chosen, description=description, secret=_new_secret(),
        active=active, created_by=membership.user,
    )
    _audit_endpoint(kind="webhook.endpoint_created", endpoint=endpoint, actor=membership.user)
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint_id: object, actor: Any, url: str | None = None, events: Iterable[str] | None = None, description: str | None = None,
    active: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given; None leaves a field as it is. Deliveries already queued keep their
    event but go to the new URL. Audited as `webhook.endpoint_updated` with each change old → new."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    before = {"url": endpoint.url, "events": list(endpoint.events), "description": endpoint.description, "active": endpoint.active}
    if url is not None:
        endpoint.url = webhook_url_validate(url=url)
    if events is not None:
        endpoint.events = webhook_events_validate(events=events)
    if description is not None:
        endpoint.description = description
    if active is not None:
        endpoint.active = active
    endpoint.save()
    after = {"url": endpoint.url, "events": list(endpoint.events), "description": endpoint.description, "active": endpoint.active}
    changes = {k: {"from": before[k], "to": after[k]} for k in before if before[k] != after[k]}
    if changes:
        _audit_endpoint(kind="webhook.endpoint_updated", endpoint=endpoint, actor=actor, data={"changes": changes})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: object, actor: Any) -> None:
    """Delete the endpoint with its deliveries and attempts; a task in flight finds nothing and stops.
    Audited as `webhook.endpoint_deleted` with what the endpoint was."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    _audit_endpoint(kind="webhook.endpoint_deleted", endpoint=endpoint, actor=actor)
    endpoint.delete()


@transaction.atomic
def webhook_secret_rotate(*, endpoint_id: object, actor: Any, keep_previous_for: timedelta = timedelta(0)) -> WebhookEndpoint:
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
    _audit_endpoint(kind="webhook.secret_rotated", endpoint=endpoint, actor=actor, data={
        "previous_secret_valid_until": endpoint.previous_secret_expires_at.isoformat() if endpoint.previous_secret_expires_at else None,
    })
    return endpoint


@transaction.atomic
def webhook_endpoint_ping(*, endpoint_id: object) -> WebhookDelivery:
    """Queue a `ping` event to one endpoint, whatever kinds it chose: the "send test" button."""
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    if not endpoint.active:
        raise WebhookEndpointInactiveError()
    now = timezone.now()
    event_id = f"ping_{uuid.uuid4()}"
    payload = {"event": PING, "id": event_id, "at": now.isoformat(), "endpoint": str(endpoint.id),
               "data": {"message": "A test event from Elementa; reply with any 2xx status."}}
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_id=event_id, kind=PING, payload=payload, next_attempt_at=now)
    transaction.on_commit(partial(webhook_enqueue, delivery_id=str(delivery.id)), robust=True)
    return delivery


# --- deliveries -------------------------------------------------------------------------------


def webhook_enqueue(*, delivery_id: str, countdown: int = 0) -> None:
    """Publish one delivery task. If the broker is down the delivery stays pending and due, and the
    sweeper publishes it later: a request that caused an event never fails for a webhook."""
    enqueue("marketplace.webhook_deliver", delivery_id, countdown=countdown)  # broker down: the sweeper re-drives it


@transaction.atomic
def webhook_fanout(*, event_id: object, kind: str, organisation_ids: list[object], payload: dict[str, Any]) -> None:
    """Queue deliveries of one event to the endpoints of the given organisations that chose its
    kind. Called inside the transaction that caused the event."""
    if not organisation_ids:
        return
    candidates = WebhookEndpoint.objects.filter(organisation_id__in=organisation_ids, active=True).only("id", "events")
    # The kinds are filtered here, not in SQL: JSON `contains` is not available on SQLite, and an
    # organisation has a handful of endpoints.
    endpoint_ids = [endpoint.id for endpoint in candidates if kind in endpoint.events]
    if not endpoint_ids:
        return
    now, body = timezone.now(), _plain_json(payload)
    rows = [WebhookDelivery(endpoint_id=eid, event_id=str(event_id), kind=kind, payload=body, next_attempt_at=now) for eid in endpoint_ids]
    # A second fan-out of the same event inserts nothing: (endpoint, event_id) is unique.
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    created = WebhookDelivery.objects.filter(id__in=[row.id for row in rows]).values_list("id", flat=True)
    for delivery_id in created:
        transaction.on_commit(partial(webhook_enqueue, delivery_id=str(delivery_id)), robust=True)


@transaction.atomic
def webhook_delivery_redeliver(*, delivery_id: object) -> WebhookDelivery:
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


def _claim(*, delivery_id: object, now: datetime) -> _Claim | None:
    """Lock, check it is pending and due, move next_attempt_at ahead by the lease, release."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").filter(pk=delivery_id).first()
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


def webhook_request_headers(*, kind: str, event_id: str, delivery_id: object, timestamp: int, body: bytes, keys: Iterable[str]) -> dict[str, str]:
    signatures = ",".join(f"v1={webhook_signature(secret=key, timestamp=timestamp, body=body)}" for key in keys)
    return {
        "Content-Type": "application/json", "User-Agent": USER_AGENT, "Elementa-Event": kind, "Elementa-Event-Id": event_id,
        "Elementa-Delivery": str(delivery_id), "Elementa-Timestamp": str(timestamp), "Elementa-Signature": signatures,
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
            kind=claim.kind, event_id=claim.event_id, delivery_id=claim.delivery_id, timestamp=int(now.timestamp()), body=claim.body, keys=claim.keys,
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
            delivery=delivery, number=claim.number, at=started, url=claim.url, status_code=outcome.status_code, error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
        delivery.attempts = claim.number
        backoff = webhook_backoff()
        if outcome.ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = (
                WebhookDelivery.Status.DELIVERED, finished, None, "")
        elif claim.number > len(backoff):
            delivery.status, delivery.next_attempt_at, delivery.last_error = WebhookDelivery.Status.FAILED, None, outcome.error
        else:
            delay = backoff[claim.number - 1]
            delivery.next_attempt_at, delivery.last_error = finished + timedelta(seconds=delay), outcome.error
            if delay <= webhook_max_countdown():
                transaction.on_commit(partial(webhook_enqueue, delivery_id=str(delivery.id), countdown=delay), robust=True)
        delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at", "last_error"])
        return delivery.status


def webhook_deliver(*, delivery_id: object, now: datetime | None = None) -> str | None:
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
