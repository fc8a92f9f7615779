"""Signing a delivery (HMAC-SHA256 over timestamp and body) and verifying it, as receivers do."""

import hashlib
import hmac
import json
import logging
import time
from datetime import date, datetime
from datetime import time as time_of_day
from typing import Any

from marketplace.models import WebhookEndpoint
from marketplace.services.webhooks.constants import SIGNATURE_TOLERANCE

logger = logging.getLogger(__name__)


def webhook_signature(*, secret: str, timestamp: int | str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def webhook_signature_verify(
    *,
    secret: str,
    body: bytes,
    timestamp: str,
    signature_header: str,
    tolerance: int = SIGNATURE_TOLERANCE,
    now: float | None = None,
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
