"""Webhooks: organisations' endpoints receive signed notifications of events.

What a receiver gets
--------------------
One HTTPS POST per event and endpoint, the event's JSON as the body, and these headers:

    Content-Type:        application/json
    Elementa-Event:      trade.status_changed   (or trade.decided, grant.issued, grant.revoked, grant.suspended,
    grant.reinstated,
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
below the Redis visibility timeout (a longer countdown is redelivered in a loop: Redis hands the message to another
worker once the timeout passes);
longer ones, lost messages and crashed workers are picked up by `webhooks_sweep` (Celery beat),
which re-enqueues every pending delivery that is due. The row lock is held only to claim and to
record, never during the HTTP call, so a slow receiver holds up nobody else.
"""

from marketplace.services.webhooks.constants import (
    CONNECT_TIMEOUT,
    EARLY_SLACK,
    EVENT_KINDS,
    HTTPS_ONLY,
    LEASE,
    MAX_ENDPOINTS_PER_ORGANISATION,
    PING,
    READ_TIMEOUT,
    SIGNATURE_TOLERANCE,
    SWEEP_GRACE,
    USER_AGENT,
)
from marketplace.services.webhooks.delivery import (
    webhook_backoff,
    webhook_deliver,
    webhook_http_post,
    webhook_max_countdown,
    webhook_request_headers,
    webhooks_sweep,
)
from marketplace.services.webhooks.endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_ping,
    webhook_endpoint_update,
    webhook_events_validate,
    webhook_secret_rotate,
)
from marketplace.services.webhooks.fanout import webhook_delivery_redeliver, webhook_enqueue, webhook_fanout
from marketplace.services.webhooks.signing import webhook_signature, webhook_signature_verify
from marketplace.services.webhooks.targets import (
    WebhookTarget,
    webhook_address_denial,
    webhook_resolve,
    webhook_target_parse,
    webhook_target_refusal,
    webhook_url_validate,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "EARLY_SLACK",
    "EVENT_KINDS",
    "HTTPS_ONLY",
    "LEASE",
    "MAX_ENDPOINTS_PER_ORGANISATION",
    "PING",
    "READ_TIMEOUT",
    "SIGNATURE_TOLERANCE",
    "SWEEP_GRACE",
    "USER_AGENT",
    "WebhookTarget",
    "webhook_address_denial",
    "webhook_backoff",
    "webhook_deliver",
    "webhook_delivery_redeliver",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_ping",
    "webhook_endpoint_update",
    "webhook_enqueue",
    "webhook_events_validate",
    "webhook_fanout",
    "webhook_http_post",
    "webhook_max_countdown",
    "webhook_request_headers",
    "webhook_resolve",
    "webhook_secret_rotate",
    "webhook_signature",
    "webhook_signature_verify",
    "webhook_target_parse",
    "webhook_target_refusal",
    "webhook_url_validate",
    "webhooks_sweep",
]
