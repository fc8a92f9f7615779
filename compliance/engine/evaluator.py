"""evaluate(facts, packs) → Decision: every engaged regime, the most restrictive finding wins.

Pure and deterministic: the same facts and packs always give the same decision.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from compliance.engine.conditions import FIELDS
from compliance.engine.context import Context
from compliance.engine.facts import TransferFacts
from compliance.engine.packs import (
    _PLACEHOLDER,
    PACK_KINDS,
    CompiledPack,
    CompiledRule,
    select_in_force,
    uncovered_regimes,
)
from compliance.engine.vocabulary import Outcome


@dataclass(frozen=True)
class Finding:
    rule: str
    regime: str
    outcome: Outcome
    explanation: str
    citation: str
    rulepack: str
    requirements: tuple[tuple[str, ...], ...] = ()
    four_eyes: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "regime": self.regime,
            "outcome": str(self.outcome),
            "requirements": [list(g) for g in self.requirements],
            "explanation": self.explanation,
            "citation": self.citation,
            "rulepack": self.rulepack,
            "four_eyes": self.four_eyes,
        }


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    requirements: tuple[tuple[str, ...], ...]
    findings: tuple[Finding, ...]
    obligations: tuple[str, ...]
    rulepacks: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "requirements": [list(g) for g in self.requirements],
            "findings": [f.as_dict() for f in self.findings],
            "obligations": list(self.obligations),
            "rulepacks": list(self.rulepacks),
        }


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"
    if hasattr(value, "describe"):
        return value.describe()
    return str(value)


def _explain(template: str, ctx: Context) -> str:
    because = "; ".join(w() for w in ctx.witness)

    def fill(m: Any) -> str:
        name = m.group(1)
        return because if name == "because" else _render_value(FIELDS[name].get(ctx))

    text = _PLACEHOLDER.sub(fill, template)
    if because and "{because}" not in template:
        text += f" ({because})"
    return text


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _held(facts: TransferFacts, validity: dict[str, int]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Mechanisms that count on the trade date, and a note on each one on file that does not.

    A mechanism counts from `approved_on` (if given) up to and including `valid_until`; without a
    `valid_until`, a pack may give it a validity period from approval (a CAC security assessment:
    3 years), and then an undated one cannot be shown to be valid and does not count."""
    held: set[str] = set()
    notes: list[str] = []
    day = facts.trade_date
    for m in facts.mechanisms:
        last_day = m.valid_until
        if last_day is None and m.code in validity:
            if m.approved_on is None:
                notes.append(
                    f"{m.code} on file has no approval date, so its {validity[m.code]}-year validity cannot be checked"
                )
                continue
            last_day = _add_years(m.approved_on, validity[m.code]) - timedelta(days=1)
        if m.approved_on is not None and m.approved_on > day:
            notes.append(f"{m.code} on file takes effect only on {m.approved_on.isoformat()}")
        elif last_day is not None and last_day < day:
            notes.append(f"{m.code} on file was valid until {last_day.isoformat()}")
        else:
            held.add(m.code)
    return frozenset(held), tuple(notes)


def _finding(rule: CompiledRule, pack: CompiledPack, ctx: Context, notes: tuple[str, ...]) -> Finding:
    explanation = _explain(rule.explanation, ctx)
    if not rule.requires:
        return Finding(
            rule.id, pack.regime, rule.outcome, explanation, rule.citation, pack.ref, four_eyes=rule.four_eyes
        )
    unmet = tuple(group for group in rule.requires if not ctx.held.intersection(group))
    if unmet:
        relevant = [n for n in notes if n.split(" ", 1)[0] in {c for g in unmet for c in g}]
        if relevant:
            explanation += "; " + "; ".join(relevant)
        return Finding(
            rule.id, pack.regime, rule.outcome, explanation, rule.citation, pack.ref, unmet, four_eyes=rule.four_eyes
        )
    used = sorted({code for group in rule.requires for code in group if code in ctx.held})
    explanation += f"; satisfied by {', '.join(used)} on file and valid on {ctx.facts.trade_date.isoformat()}"
    return Finding(rule.id, pack.regime, Outcome.ALLOW, explanation, rule.citation, pack.ref, four_eyes=rule.four_eyes)


def _evaluate_pack(pack: CompiledPack, ctx: Context, notes: tuple[str, ...]) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    obligations: list[str] = []
    for rule in pack.rules:
        ctx.witness.clear()
        if rule.when(ctx):
            findings.append(_finding(rule, pack, ctx, notes))
            obligations.extend(rule.obligations)
            if rule.stop:
                return findings, obligations
    if pack.default is not None:  # engaged, and no rule that decides for the pack matched
        ctx.witness.clear()
        findings.append(_finding(pack.default, pack, ctx, notes))
        obligations.extend(pack.default.obligations)
    return findings, obligations


NO_PACK_RULE = "BASE-NO-PACK"
NO_PACK_CITATION = (
    "Elementa policy (fail closed): a transfer is never allowed on a date for which no version of a "
    "regime that would apply to it is in force; a compliance officer must decide"
)


def _no_pack_finding(pack: CompiledPack, day: date) -> Finding:
    """The regime of `pack` would apply, but none of its versions is in force on `day`."""
    if pack.effective_from > day:
        when = f"its nearest version, {pack.ref}, takes effect only on {pack.effective_from.isoformat()}"
    else:
        ended = pack.effective_to.isoformat() if pack.effective_to else "?"
        when = f"its last version, {pack.ref}, ceased to apply on {ended}"
    explanation = (
        f"no rule pack in force on {day.isoformat()} for {pack.regime}, which would apply to this "
        f"transfer ({when}); without the law then in force the transfer cannot be allowed, so a "
        "compliance officer must decide"
    )
    return Finding(NO_PACK_RULE, pack.regime, Outcome.REVIEW, explanation, NO_PACK_CITATION, pack.ref)


def evaluate(facts: TransferFacts, packs: Sequence[CompiledPack]) -> Decision:
    """Evaluate the packs in force on facts.trade_date.

    Screens (sanctions) always run; a regime runs when its `engaged_when` holds; fallback packs run
    only when no regime was engaged, so a personal-data transfer no regime decides goes to review.
    A buyer's declared destinations are evaluated as transfers of their own (_evaluate_declared).

    Fail closed: a screen or fallback with no version in force on the trade date, or a regime whose
    law had started but none of whose versions covers the date, gives a BASE-NO-PACK `review`
    finding when its nearest version would be engaged (see `uncovered_regimes`). A date no pack
    speaks to is therefore never `allow`.
    """
    if facts.buyer.declared_destinations:
        return _evaluate_declared(facts, packs)
    in_force = select_in_force(packs, facts.trade_date)
    uncovered = uncovered_regimes(packs, facts.trade_date)
    missing = {p.regime for p in uncovered}
    order = {kind: i for i, kind in enumerate(PACK_KINDS)}
    candidates = sorted([*in_force, *uncovered], key=lambda p: (order[p.kind], p.regime))
    validity = {code: years for pack in in_force for code, years in pack.mechanism_validity}
    held, notes = _held(facts, validity)
    ctx = Context(facts=facts, held=held)
    findings: list[Finding] = []
    obligations: list[str] = []
    used: list[str] = []
    regime_engaged = False
    for pack in candidates:
        if pack.kind == "fallback" and regime_engaged:
            continue
        ctx.witness.clear()
        if not pack.engaged_when(ctx):
            continue
        regime_engaged = regime_engaged or pack.kind == "regime"
        if pack.regime in missing:
            findings.append(_no_pack_finding(pack, facts.trade_date))
            used.append(pack.ref)
            continue
        pack_findings, pack_obligations = _evaluate_pack(pack, ctx, notes)
        findings.extend(pack_findings)
        obligations.extend(pack_obligations)
        used.append(pack.ref)

    return _decision(findings, obligations, used)


def _decision(findings: Sequence[Finding], obligations: Sequence[str], rulepacks: Sequence[str]) -> Decision:
    """The most restrictive finding decides; the requirements are every unmet group, once."""
    outcome = max((f.outcome for f in findings), key=lambda o: o.rank, default=Outcome.ALLOW)
    requirements: list[tuple[str, ...]] = []
    # A deny is final: no mechanism can cure it, so listing what is "missing" would mislead.
    for finding in findings if outcome != Outcome.DENY else ():
        for group in finding.requirements:
            if group not in requirements:
                requirements.append(group)
    return Decision(
        outcome=outcome,
        requirements=tuple(requirements),
        findings=tuple(findings),
        obligations=tuple(dict.fromkeys(obligations)),
        rulepacks=tuple(dict.fromkeys(rulepacks)),
    )


def _evaluate_declared(facts: TransferFacts, packs: Sequence[CompiledPack]) -> Decision:
    """The transfer to where the buyer is established, plus one to each place it declared: the
    most restrictive outcome wins and every finding stays, so a declaration adds law and never
    removes any. A finding that only a declared destination raised says so."""
    established = replace(facts, buyer=replace(facts.buyer, declared_destinations=()))
    decisions: list[tuple[str | None, Decision]] = [(None, evaluate(established, packs))]
    for declared in facts.buyer.declared_destinations:
        decisions.append(
            (declared, evaluate(replace(established, buyer=replace(established.buyer, jurisdiction=declared)), packs))
        )
    findings: list[Finding] = []
    seen: set[tuple[str, str, tuple[tuple[str, ...], ...]]] = set()
    for place, decision in decisions:
        for f in decision.findings:
            key = (f.rule, str(f.outcome), f.requirements)
            if key in seen:
                continue
            seen.add(key)
            findings.append(
                f if place is None else replace(f, explanation=f"to the declared destination {place}: {f.explanation}")
            )
    return _decision(
        findings, [o for _, d in decisions for o in d.obligations], [r for _, d in decisions for r in d.rulepacks]
    )
