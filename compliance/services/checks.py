"""Running the engine: the dry run on explicit facts, and recorded checks of a subject."""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from compliance.engine import (
    ENGINE_VERSION,
    CompiledPack,
    Decision,
    FactsError,
    Outcome,
    TransferFacts,
    coverage_start,
    evaluate,
    parse_facts,
)
from compliance.errors import InvalidFactsError, TradeDateOutOfRangeError
from compliance.models import ComplianceCheck
from compliance.selectors.rulepacks import rulepacks_compiled
from config.errors import UnknownFieldError


def facts_parse(*, raw: Any, today: date | None = None) -> TransferFacts:
    """Contract-shaped facts → TransferFacts, or InvalidFactsError (400) naming each bad field."""
    try:
        return parse_facts(raw, today=today or timezone.localdate())
    except FactsError as exc:
        # One code per concept: a field the contract does not know is `unknown_field`, as on every write.
        unknown = {path: ["unknown field"] for path, messages in exc.errors.items() if "unknown field" in messages}
        if unknown:
            raise UnknownFieldError(fields=unknown) from exc
        raise InvalidFactsError(fields=exc.errors) from exc


def trade_date_check(*, facts: TransferFacts, packs: Sequence[CompiledPack], today: date) -> None:
    """Refuse a trade date no regime can speak to: before the earliest pack's effective_from, or
    more than ELEMENTA_TRADE_DATE_MAX_DAYS_AHEAD days after today (400, trade_date_out_of_range).
    Dates inside the range that a regime's versions do not cover are the engine's business: it
    fails closed (BASE-NO-PACK, review)."""
    earliest = coverage_start(packs)
    ahead = settings.ELEMENTA_TRADE_DATE_MAX_DAYS_AHEAD
    latest = today + timedelta(days=ahead)
    day = facts.trade_date
    if earliest is None:
        raise TradeDateOutOfRangeError(fields={"trade_date": ["no rule pack is active, so no date can be decided"]})
    if day < earliest:
        raise TradeDateOutOfRangeError(
            fields={"trade_date": [f"must be on or after {earliest.isoformat()}, the earliest date a rule pack covers"]}
        )
    if day > latest:
        raise TradeDateOutOfRangeError(
            fields={"trade_date": [f"must be on or before {latest.isoformat()} (at most {ahead} days ahead)"]}
        )


def compliance_evaluate(*, raw_facts: Any) -> Decision:
    """Evaluate facts with the active packs: no side effects."""
    return evaluate(facts_parse(raw=raw_facts), rulepacks_compiled())


def compliance_dry_run(*, raw_facts: Any) -> Decision:
    """The dry run on caller-supplied facts: no side effects; a trade date no rule pack can speak
    to is refused (400, trade_date_out_of_range)."""
    today = timezone.localdate()
    facts, packs = facts_parse(raw=raw_facts, today=today), rulepacks_compiled()
    trade_date_check(facts=facts, packs=packs, today=today)
    return evaluate(facts, packs)


def flagged_regimes(decision: Decision) -> str:
    """"|EU|SANCTIONS|": each regime with a finding that is not `allow`, for filtering the queue."""
    regimes = sorted({f.regime for f in decision.findings if f.outcome != Outcome.ALLOW})
    return f"|{'|'.join(regimes)}|" if regimes else ""


def compliance_check_perform(
    *, subject_type: str, subject_id: UUID, raw_facts: dict[str, Any], alternatives: Any = None,
    packs: list[CompiledPack] | None = None,
) -> ComplianceCheck:
    """Evaluate and record a decision about a subject. Runs inside the caller's transaction.

    `alternatives`, if given, is called with the decision's dict and returns other ways to buy the
    same data that the law treats more leniently (e.g. ["compute"]); they are recorded with it.
    `packs`: the active rule packs, if the caller read them already (references_current)."""
    decision = evaluate(facts_parse(raw=raw_facts), rulepacks_compiled() if packs is None else packs)
    recorded = decision.as_dict()
    if alternatives is not None:
        others = alternatives(recorded)
        if others:
            recorded["alternatives"] = others
    return ComplianceCheck.objects.create(
        subject_type=subject_type, subject_id=subject_id, facts=raw_facts,
        outcome=str(decision.outcome), decision=recorded, rulepacks=list(decision.rulepacks),
        flagged_regimes=flagged_regimes(decision), engine_version=ENGINE_VERSION,
    )
