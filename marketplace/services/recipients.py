"""Who hears of an event: the organisations' members (with their muted kinds) and their active
webhook endpoints, read in one UNION query and shared by the notification and webhook fan-outs of
the events recorded inside `recipients_prefetched` (a purchase records two; each would otherwise
read members, preferences and endpoints again), and read only once one of them needs them."""

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


class _Lazy:
    """The recipients of a block, read on first use: a block whose events tell nobody (no member
    to notify, no organisation with an endpoint) reads nothing."""

    def __init__(self, organisation_ids: frozenset[str]) -> None:
        self.organisation_ids = organisation_ids
        self._loaded: Recipients | None = None

    def get(self) -> Recipients:
        if self._loaded is None:
            self._loaded = recipients_load(self.organisation_ids)
        return self._loaded


_current: ContextVar[_Lazy | None] = ContextVar("elementa_recipients", default=None)


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
def recipients_prefetched(organisation_ids: Iterable[Any]) -> Iterator[None]:
    """Read the recipients once for the events emitted inside the block (when the first needs them)."""
    token = _current.set(_Lazy(_key(organisation_ids)))
    try:
        yield
    finally:
        _current.reset(token)


def recipients_prefetched_for(organisation_ids: Iterable[Any]) -> Recipients | None:
    """The block's recipients if it reads them for exactly these organisations, else None."""
    current = _current.get()
    return current.get() if current is not None and current.organisation_ids == _key(organisation_ids) else None
