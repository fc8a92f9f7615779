"""Domain events: each is an audit record (same transaction as the action) and, for the kinds
organisations can subscribe to, a webhook fan-out to the trade's two parties."""

from typing import Any
from uuid import UUID

from compliance.models import AuditEvent
from compliance.services.audit import audit_record
from marketplace.models import Trade
from marketplace.services.webhooks.constants import EVENT_KINDS as WEBHOOK_KINDS
from marketplace.services.webhooks.fanout import webhook_fanout


def event_emit(
    *, kind: str, subject_type: str, subject_id: UUID, data: dict[str, Any], organisation_ids: list[UUID] | None = None,
    actor: Any = None, actor_label: str = "",
) -> AuditEvent:
    event = audit_record(
        kind=kind, subject_type=subject_type, subject_id=subject_id, data=data, actor=actor, actor_label=actor_label
    )
    if kind in WEBHOOK_KINDS and organisation_ids:
        payload = {
            "event": kind,
            "id": f"evt_{event.id}",
            "at": event.at.isoformat(),
            subject_type: str(subject_id),
            "data": event.data,
        }
        webhook_fanout(
            event_id=f"evt_{event.id}",
            kind=kind,
            organisation_ids=list(dict.fromkeys(organisation_ids)),
            payload=payload,
        )
    return event


def trade_event_emit(
    *, kind: str, trade: Trade, data: dict[str, Any], actor: Any = None, actor_label: str = ""
) -> AuditEvent:
    return event_emit(
        kind=kind,
        subject_type="trade",
        subject_id=trade.id,
        actor=actor,
        actor_label=actor_label,
        organisation_ids=[trade.buyer_id, trade.provider_id],
        data={
            "dataset": str(trade.dataset_id),
            "buyer": str(trade.buyer_id),
            "provider": str(trade.provider_id),
            **data,
        },
    )
