"""Reading rule packs: the compiled set the engine evaluates, cached per process by content."""

from collections.abc import Iterable
from datetime import date
from threading import Lock
from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from compliance.engine import CompiledPack, compile_pack
from compliance.models import RulePack, RulePackBacktest

_cache: dict[tuple[tuple[str, str, str], ...], list[CompiledPack]] = {}
_cache_lock = Lock()


def rulepacks_compiled(*, key_rows: Iterable[tuple[Any, str, str]] | None = None) -> list[CompiledPack]:
    """Every active version, compiled; drafts never reach the engine.

    One cheap query per call (none if the caller read `key_rows` itself: each active row's id,
    checksum and status); compiling happens only when the set changes. The key holds
    each active row's id, checksum and status: activating a draft adds an id (and changes its
    checksum, since activation writes the effective date into the content), so it can never be
    served stale."""
    if key_rows is None:
        key_rows = RulePack.objects.filter(status=RulePack.Status.ACTIVE).values_list("id", "checksum", "status")
    key = tuple(sorted((str(i), c, s) for i, c, s in key_rows))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    packs = [compile_pack(p.content) for p in RulePack.objects.filter(status=RulePack.Status.ACTIVE)]
    with _cache_lock:
        _cache.clear()
        _cache[key] = packs
    return packs


def rulepack_list(*, status: str | None = None, regime: str | None = None) -> QuerySet[RulePack]:
    qs = RulePack.objects.all()
    if status:
        qs = qs.filter(status=status)
    if regime:
        qs = qs.filter(regime=regime.upper())
    return qs


def rulepack_backtest_list(*, pack_id: UUID) -> QuerySet[RulePackBacktest]:
    return RulePackBacktest.objects.filter(rulepack_id=pack_id).order_by("-created_at")


def rulepacks_due_for_rescreening(*, today: date) -> QuerySet[RulePack]:
    """Versions an officer activated that are in force by `today` (shipped files have no activation)."""
    return RulePack.objects.filter(status=RulePack.Status.ACTIVE, activated_at__isnull=False, effective_from__lte=today)


SANCTIONED_JURISDICTION_PARAMETERS = (
    "comprehensive_embargo",
    "partly_occupied_regions",
    "list_based_review",
    "sectoral_review",
)


def sanctioned_jurisdictions(*, day: date) -> frozenset[str]:
    """Jurisdictions the sanctions screen in force on `day` treats as embargoed or under sectoral or
    list-based measures (its country-list parameters); empty if no version is in force."""
    in_force = [
        p
        for p in RulePack.objects.filter(status=RulePack.Status.ACTIVE, regime="SANCTIONS", effective_from__lte=day)
        if p.effective_to is None or day < p.effective_to
    ]
    if not in_force:
        return frozenset()
    pack = max(in_force, key=lambda p: p.effective_from or date.min)
    params = pack.content.get("parameters") or {}
    return frozenset(
        code for name in SANCTIONED_JURISDICTION_PARAMETERS for code in params.get(name) or [] if isinstance(code, str)
    )
