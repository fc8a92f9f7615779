"""Domain events: each is an audit record (same transaction as the action) and, for the kinds
organisations can subscribe to, a webhook fan-out to the trade's two parties."""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from uuid import UUID

from compliance.models import AuditEvent
from compliance.services.audit import audit_deferred, audit_is_deferred, audit_record, audit_record_many
from marketplace.models import Trade
from marketplace.services.notifications import notifications_batched
from marketplace.services.recipients import recipients_prefetched
from marketplace.services.webhooks.constants import EVENT_KINDS as WEBHOOK_KINDS
from marketplace.services.webhooks.fanout import webhook_fanout, webhooks_batched


def event_emit(
    *, kind: str, subject_type: str, subject_id: UUID, data: dict[str, Any], organisation_ids: list[UUID] | None = None,
    actor: Any = None, actor_label: str = "",
) -> AuditEvent:
    """Audit the event and, once it has its id, fan it out to webhooks (inside audit_deferred(),
    both happen when the block ends)."""
    return audit_record(
        kind=kind, subject_type=subject_type, subject_id=subject_id, data=data, actor=actor, actor_label=actor_label,
        after=lambda event: _webhooks(event=event, kind=kind, subject_type=subject_type, subject_id=subject_id,
                                      organisation_ids=organisation_ids),
    )


def _webhooks(
    *, event: AuditEvent, kind: str, subject_type: str, subject_id: UUID, organisation_ids: list[UUID] | None
) -> None:
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


@contextmanager
def trade_events_batched(trade: Trade) -> Iterator[None]:
    """For a worker task that moves a trade several times in one transaction: the events recorded
    inside are audited with one INSERT when the block ends, the parties' members and endpoints are
    read once, each member is told once (of the last status) and each endpoint's deliveries go as
    one task."""
    with (recipients_prefetched([trade.buyer_id, trade.provider_id]), notifications_batched(), webhooks_batched(),
          audit_deferred()):
        yield


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
        data=_trade_data(trade, data),
    )


def _trade_data(trade: Trade, data: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": str(trade.dataset_id), "buyer": str(trade.buyer_id), "provider": str(trade.provider_id), **data}


def trade_events_emit(
    *, trade: Trade, events: list[tuple[str, dict[str, Any]]], actor: Any = None, actor_label: str = ""
) -> list[AuditEvent]:
    """Several events of one trade, (kind, data) in order: one INSERT for their audit records
    (trade_event_emit does one each), then each one's notifications and webhooks."""
    parties = [trade.buyer_id, trade.provider_id]
    # deferred: the events are announced when the caller's audit_deferred() ends, which is where
    # the caller reads the recipients (trade_check_compliance)
    with nullcontext() if audit_is_deferred() else recipients_prefetched(parties), webhooks_batched():
        return audit_record_many(
            events=[(kind, _trade_data(trade, data)) for kind, data in events],
            subject_type="trade", subject_id=trade.id, actor=actor, actor_label=actor_label,
            after=lambda row: _webhooks(event=row, kind=row.kind, subject_type="trade", subject_id=trade.id,
                                        organisation_ids=parties),
        )
