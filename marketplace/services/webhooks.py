"""Webhooks: organisations' endpoints receive signed notifications of events. (Issue 5.)"""

from typing import Any


def webhook_fanout(*, event_id: object, kind: str, organisation_ids: list[object], payload: dict[str, Any]) -> None:
    """Queue deliveries of one event to the endpoints of the given organisations that chose its
    kind. Called inside the transaction that caused the event."""
