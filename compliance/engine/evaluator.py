"""evaluate(facts, packs) → Decision: every engaged regime, the most restrictive finding wins.

Pure and deterministic: the same facts and packs always give the same decision.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compliance.engine.conditions import FIELDS
from compliance.engine.facts import TransferFacts
from compliance.engine.packs import _PLACEHOLDER, CompiledPack, CompiledRule, select_in_force
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "regime": self.regime,
            "outcome": str(self.outcome),
            "requirements": [list(g) for g in self.requirements],
            "explanation": self.explanation,
            "citation": self.citation,
            "rulepack": self.rulepack,
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
    return str(value)


def _explain(template: str, facts: TransferFacts) -> str:
    return _PLACEHOLDER.sub(lambda m: _render_value(FIELDS[m.group(1)].get(facts)), template)


def _finding(rule: CompiledRule, pack: CompiledPack, facts: TransferFacts, held: frozenset[str]) -> Finding:
    explanation = _explain(rule.explanation, facts)
    if not rule.requires:
        return Finding(rule.id, pack.regime, rule.outcome, explanation, rule.citation, pack.ref)
    unmet = tuple(group for group in rule.requires if not held.intersection(group))
    if unmet:
        return Finding(rule.id, pack.regime, rule.outcome, explanation, rule.citation, pack.ref, unmet)
    used = sorted({code for group in rule.requires for code in group if code in held})
    explanation += f"; satisfied by {', '.join(used)} on file and valid on {facts.trade_date.isoformat()}"
    return Finding(rule.id, pack.regime, Outcome.ALLOW, explanation, rule.citation, pack.ref)


def _evaluate_pack(pack: CompiledPack, facts: TransferFacts, held: frozenset[str]) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    obligations: list[str] = []
    for rule in pack.rules:
        if rule.when(facts):
            findings.append(_finding(rule, pack, facts, held))
            obligations.extend(rule.obligations)
            if rule.stop:
                return findings, obligations
    if pack.default is not None:  # engaged, and no rule that decides for the pack matched
        findings.append(_finding(pack.default, pack, facts, held))
        obligations.extend(pack.default.obligations)
    return findings, obligations


def evaluate(facts: TransferFacts, packs: Sequence[CompiledPack]) -> Decision:
    """Evaluate the packs in force on facts.trade_date.

    Screens (sanctions) always run; a regime runs when its `engaged_when` holds; fallback packs run
    only when no regime was engaged, so a personal-data transfer no regime decides goes to review.
    """
    held = facts.mechanisms_valid()
    findings: list[Finding] = []
    obligations: list[str] = []
    used: list[str] = []
    regime_engaged = False
    for pack in select_in_force(packs, facts.trade_date):
        if pack.kind == "fallback" and regime_engaged:
            continue
        if not pack.engaged_when(facts):
            continue
        regime_engaged = regime_engaged or pack.kind == "regime"
        pack_findings, pack_obligations = _evaluate_pack(pack, facts, held)
        findings.extend(pack_findings)
        obligations.extend(pack_obligations)
        used.append(pack.ref)

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
        rulepacks=tuple(used),
    )
