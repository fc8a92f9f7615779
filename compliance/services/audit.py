"""The tamper-evident audit trail: append an event in the caller's transaction; verify the chain."""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from compliance.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


def _canonical(value: Any) -> Any:
    """JSON-stable data: what is stored is exactly what is hashed (Decimals, dates, UUIDs → strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _digest(*, prev_hash: str, at: datetime, kind: str, actor_label: str, subject_type: str, subject_id: str, data: Any) -> str:
    body = json.dumps(
        {"at": at.astimezone(UTC).isoformat(timespec="microseconds"), "kind": kind, "actor": actor_label,
         "subject_type": subject_type, "subject_id": subject_id, "data": data},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@transaction.atomic
def audit_record(
    *, kind: str, subject_type: str, subject_id: object, data: dict[str, Any] | None = None, actor: Any = None, actor_label: str = "",
) -> AuditEvent:
    """Append one event. Runs inside the action's transaction: if the action rolls back, so does
    its audit record, and the chain head's row lock orders concurrent appends."""
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:  # the first event ever: create the head (a race here is settled by the primary key)
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    label = actor_label or (actor.get_username() if actor is not None and hasattr(actor, "get_username") else "system")
    at = timezone.now()
    clean = _canonical(data or {})
    digest = _digest(prev_hash=head.last_hash, at=at, kind=kind, actor_label=label, subject_type=subject_type,
                     subject_id=str(subject_id), data=clean)
    event = AuditEvent.objects.create(
        at=at, kind=kind, actor=actor if actor is not None and hasattr(actor, "get_username") else None, actor_label=label,
        subject_type=subject_type, subject_id=str(subject_id), data=clean, prev_hash=head.last_hash, hash=digest,
    )
    AuditChainHead.objects.filter(pk=1).update(last_id=event.id, last_hash=digest, count=head.count + 1)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    broken_at: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events}
        return {"ok": False, "events": self.events, "broken_at": self.broken_at, "reason": self.reason}


def _events() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("id").iterator(chunk_size=2000)


def audit_verify() -> ChainReport:
    """Recompute every link in order. Reports the first event whose hash does not match its content,
    whose previous-hash does not match the event before it, or a chain shorter than its head says."""
    prev_hash, checked = GENESIS, 0
    for event in _events():
        if event.prev_hash != prev_hash:
            return ChainReport(False, checked, event.id, "its previous-hash does not match the event before it (an event was removed or reordered)")
        expected = _digest(prev_hash=event.prev_hash, at=event.at, kind=event.kind, actor_label=event.actor_label,
                           subject_type=event.subject_type, subject_id=event.subject_id, data=event.data)
        if expected != event.hash:
            return ChainReport(False, checked, event.id, "its content does not match its hash (the row was changed)")
        prev_hash, checked = event.hash, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != prev_hash or head.count != checked):
        return ChainReport(False, checked, head.last_id,
                           f"the chain head records {head.count} events ending in #{head.last_id}; the newest events are missing")
    return ChainReport(True, checked)
