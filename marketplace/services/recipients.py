"""Who hears of an event: the organisations' members (with their muted kinds) and their active
webhook endpoints, read in one UNION query and shared by the notification and webhook fan-outs of
the events recorded inside `recipients_prefetched` (a purchase records two; each would otherwise
read members, preferences and endpoints again)."""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import CharField, F, IntegerField, Value
from django.db.models.functions import Cast

from marketplace.models import Membership, WebhookEndpoint


@dataclass(frozen=True)
class Recipients:
    organisation_ids: frozenset[str]
    members: list[tuple[int, list[str]]]  # (user id, muted kinds) of active members
    endpoints: list[tuple[UUID, list[str]]]  # (endpoint id, chosen kinds) of active endpoints


_current: ContextVar[Recipients | None] = ContextVar("elementa_recipients", default=None)


def _key(organisation_ids: Iterable[Any]) -> frozenset[str]:
    return frozenset(str(UUID(str(o))) for o in organisation_ids)


def recipients_load(organisation_ids: Iterable[Any]) -> Recipients:
    ids = list(_key(organisation_ids))
    members = (
        Membership.objects.filter(organisation_id__in=ids, user__is_active=True)
        .annotate(src=Value(0, output_field=IntegerField()), ref=Cast("user_id", CharField()),
                  extra=F("user__notification_preference__muted"))
        .order_by()
        .values_list("src", "ref", "extra")
    )
    endpoints = (
        WebhookEndpoint.objects.filter(organisation_id__in=ids, active=True)
        .annotate(src=Value(1, output_field=IntegerField()), ref=Cast("id", CharField()), extra=F("events"))
        .order_by()
        .values_list("src", "ref", "extra")
    )
    found: tuple[list[tuple[int, list[str]]], list[tuple[UUID, list[str]]]] = ([], [])
    for src, ref, extra in members.union(endpoints, all=True):
        if src == 0:
            found[0].append((int(ref), list(extra or [])))
        else:
            found[1].append((UUID(ref), list(extra or [])))
    return Recipients(frozenset(ids), *found)


@contextmanager
def recipients_prefetched(organisation_ids: Iterable[Any]) -> Iterator[Recipients]:
    """Read the recipients once for the events emitted inside the block."""
    recipients = recipients_load(organisation_ids)
    token = _current.set(recipients)
    try:
        yield recipients
    finally:
        _current.reset(token)


def recipients_prefetched_for(organisation_ids: Iterable[Any]) -> Recipients | None:
    """The prefetched recipients if they were read for exactly these organisations, else None."""
    current = _current.get()
    return current if current is not None and current.organisation_ids == _key(organisation_ids) else None
