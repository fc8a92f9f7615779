"""Rule packs: one regime's rules as data (YAML in compliance/rulepacks/), validated and compiled.

A pack has a regime, a version, an effective date, parameters (country lists, thresholds), the
condition under which the regime is engaged, ordered rules and a default finding. See
docs/rulepacks.md for the format.
"""

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from compliance.engine.conditions import FIELDS, Predicate, RulePackError, compile_condition, resolve_parameters
from compliance.engine.vocabulary import MECHANISMS, Outcome

_T = TypeVar("_T")
PACK_KINDS = ("screen", "regime", "fallback")
# {field}, {$parameter}, and {because}: the numbers the rule's conditions recorded.
_PLACEHOLDER = re.compile(r"\{(\$?[a-z_.0-9]+)\}")
_PACK_KEYS = {"regime", "version", "title", "kind", "effective_from", "effective_to", "changelog", "parameters",
              "engaged_when", "rules", "default", "sources", "mechanism_validity"}
_RULE_KEYS = {
    "id",
    "title",
    "when",
    "outcome",
    "requires",
    "obligations",
    "citation",
    "explanation",
    "continue",
    "four_eyes",
}


@dataclass(frozen=True)
class CompiledRule:
    id: str
    outcome: Outcome
    citation: str
    explanation: str  # placeholders for parameters already filled in; {field} and {because} at evaluation
    when: Predicate
    requires: tuple[tuple[str, ...], ...] = ()
    obligations: tuple[str, ...] = ()
    stop: bool = True  # a matching rule ends the pack's evaluation unless it says `continue: true`
    # An officer's approval of a trade this rule matched needs a second, different officer. Always
    # true for needs_approval rules (a regulator's approval is at stake), even once satisfied.
    four_eyes: bool = False


@dataclass(frozen=True)
class CompiledPack:
    regime: str
    version: str
    kind: str
    title: str
    effective_from: date
    effective_to: date | None
    engaged_when: Predicate
    rules: tuple[CompiledRule, ...]
    default: CompiledRule | None
    # mechanism code → years it stays valid after `approved_on` (e.g. a CAC security assessment: 3)
    mechanism_validity: tuple[tuple[str, int], ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.regime.lower()}@{self.version}"

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


def _str(raw: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise RulePackError(f"{path}.{key}", "must be a non-empty string")
    return value.strip()


def _date(raw: Any, path: str) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise RulePackError(path, "must be an ISO date") from None


def _render_param(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _explanation(raw: Mapping[str, Any], params: Mapping[str, Any], path: str) -> str:
    text = _str(raw, "explanation", path)
    for name in _PLACEHOLDER.findall(text):
        if name.startswith("$"):
            if name[1:] not in params:
                raise RulePackError(f"{path}.explanation", f"unknown parameter {{{name}}}")
        elif name != "because" and name not in FIELDS:
            raise RulePackError(f"{path}.explanation", f"unknown placeholder {{{name}}}")
    return _PLACEHOLDER.sub(
        lambda m: _render_param(params[m.group(1)[1:]]) if m.group(1).startswith("$") else m.group(0), text
    )


def _compile_rule(raw: Any, params: Mapping[str, Any], path: str, *, default: bool = False) -> CompiledRule:
    if not isinstance(raw, Mapping):
        raise RulePackError(path, "a rule is a mapping")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulePackError(path, f"unknown keys: {', '.join(sorted(unknown))}")
    try:
        outcome = Outcome(raw.get("outcome", ""))
    except ValueError:
        raise RulePackError(f"{path}.outcome", f"must be one of: {', '.join(Outcome)}") from None
    requires: list[tuple[str, ...]] = []
    if not isinstance(raw.get("requires") or [], list):
        raise RulePackError(f"{path}.requires", "must be a list of lists of mechanism codes")
    for i, group in enumerate(raw.get("requires") or []):
        if not isinstance(group, list) or not group or any(code not in MECHANISMS for code in group):
            raise RulePackError(f"{path}.requires[{i}]", "must be a non-empty list of mechanism codes")
        requires.append(tuple(group))
    if outcome.needs_something and not requires:
        raise RulePackError(f"{path}.requires", f"a {outcome} rule must say which mechanisms satisfy it")
    if requires and not outcome.needs_something:
        raise RulePackError(f"{path}.requires", f"only needs_* outcomes take requirements, not {outcome}")
    obligations = raw.get("obligations") or []
    if not isinstance(obligations, list) or not all(isinstance(o, str) for o in obligations):
        raise RulePackError(f"{path}.obligations", "must be a list of strings")
    if not isinstance(raw.get("four_eyes", False), bool):
        raise RulePackError(f"{path}.four_eyes", "must be true or false")
    if default and "when" in raw:
        raise RulePackError(f"{path}.when", "the default rule has no condition")
    return CompiledRule(
        id=_str(raw, "id", path),
        outcome=outcome,
        citation=_str(raw, "citation", path),
        explanation=_explanation(raw, params, path),
        when=(lambda f: True) if default else compile_condition(raw.get("when"), params, f"{path}.when"),
        requires=tuple(requires),
        obligations=tuple(obligations),
        stop=not bool(raw.get("continue", False)),
        four_eyes=bool(raw.get("four_eyes", False)) or outcome == Outcome.NEEDS_APPROVAL,
    )


class _Collector:
    """Runs each part of a pack's compilation on its own and keeps every error, so one pass names
    all of them (an officer fixing a draft sees the whole list, not one error per save)."""

    def __init__(self) -> None:
        self.errors: list[RulePackError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(RulePackError(path, message))

    def run(self, path: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
        try:
            return fn(*args, **kwargs)
        except RulePackError as exc:
            self.errors.append(exc)
        except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a shape nothing above guards against
            self.errors.append(RulePackError(path, f"malformed ({exc})"))
        return None


def _compile(raw: Any) -> tuple[CompiledPack | None, list[RulePackError]]:
    if not isinstance(raw, Mapping):
        return None, [RulePackError("pack", "must be a mapping")]
    c = _Collector()
    unknown = set(raw) - _PACK_KEYS
    if unknown:
        c.add("pack", f"unknown keys: {', '.join(sorted(unknown))}")
    regime = c.run("pack.regime", _str, raw, "regime", "pack")
    if regime is not None and not re.fullmatch(r"[A-Z][A-Z0-9_]*", regime):
        c.add("pack.regime", "must be upper-case letters, digits or _")
    version = c.run("pack.version", _str, raw, "version", "pack")
    title = c.run("pack.title", _str, raw, "title", "pack")
    kind = raw.get("kind", "regime")
    if kind not in PACK_KINDS:
        c.add("pack.kind", f"must be one of: {', '.join(PACK_KINDS)}")
    params = c.run("pack.parameters", resolve_parameters, raw.get("parameters"), "pack.parameters")
    params_ok = params is not None
    params = params or {}
    effective_from = c.run("pack.effective_from", _date, raw.get("effective_from"), "pack.effective_from")
    effective_to = (
        c.run("pack.effective_to", _date, raw["effective_to"], "pack.effective_to") if raw.get("effective_to") else None
    )
    engaged_when = c.run(
        "pack.engaged_when", compile_condition, raw.get("engaged_when", True), params, "pack.engaged_when"
    )
    rules: list[CompiledRule] = []
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list):
        c.add("pack.rules", "must be a list")
        rules_raw = []
    for i, rule_raw in enumerate(rules_raw):
        rule = c.run(f"rules[{i}]", _compile_rule, rule_raw, params, f"rules[{i}]")
        if rule is not None:
            rules.append(rule)
    duplicates = {i for i, n in Counter(r.id for r in rules).items() if n > 1}
    if duplicates:
        c.add("pack.rules", f"duplicate rule ids: {', '.join(sorted(duplicates))}")
    default = (
        c.run("default", _compile_rule, raw["default"], params, "default", default=True) if raw.get("default") else None
    )
    validity = raw.get("mechanism_validity") or {}
    if not isinstance(validity, Mapping):
        c.add("pack.mechanism_validity", "maps a mechanism code to {years: N}")
        validity = {}
    for code, spec in validity.items():
        if (code not in MECHANISMS or not isinstance(spec, Mapping) or set(spec) != {"years"}
                or not isinstance(spec["years"], int) or spec["years"] < 1):
            c.add(f"pack.mechanism_validity.{code}", "a known mechanism code mapped to {years: N}, N ≥ 1")
    errors = c.errors
    if not params_ok:  # rules naming a parameter the broken block did not define: the cause is already listed
        errors = [e for e in errors if e.path.startswith("pack.parameters") or "unknown parameter" not in str(e)]
    if errors:
        return None, errors
    assert regime is not None and version is not None and title is not None and effective_from is not None
    assert engaged_when is not None
    return CompiledPack(
        regime=regime,
        version=version,
        kind=kind,
        title=title,
        effective_from=effective_from,
        effective_to=effective_to,
        engaged_when=engaged_when,
        rules=tuple(rules),
        default=default,
        mechanism_validity=tuple((code, spec["years"]) for code, spec in validity.items()),
    ), []


def pack_problems(raw: Any) -> list[RulePackError]:
    """Every error in a pack's data, each naming its path; empty when the pack compiles."""
    return _compile(raw)[1]


def compile_pack(raw: Any) -> CompiledPack:
    """Validate and compile one pack's data; raises the first RulePackError (`pack_problems` lists all)."""
    pack, errors = _compile(raw)
    if errors:
        raise errors[0]
    assert pack is not None
    return pack


def select_in_force(packs: Sequence[CompiledPack], day: date) -> list[CompiledPack]:
    """For each regime, the version in force on `day` (latest effective_from not after it)."""
    chosen: dict[str, CompiledPack] = {}
    for pack in packs:
        if not pack.in_force_on(day):
            continue
        current = chosen.get(pack.regime)
        if current is None or pack.effective_from > current.effective_from:
            chosen[pack.regime] = pack
    order = {kind: i for i, kind in enumerate(PACK_KINDS)}
    return sorted(chosen.values(), key=lambda p: (order[p.kind], p.regime))


def uncovered_regimes(packs: Sequence[CompiledPack], day: date) -> list[CompiledPack]:
    """Regimes that should speak on `day` but have no version in force then, each with the version
    nearest to it (the next to take effect, else the last to have ended): its `engaged_when` tells
    whether the regime would apply to the transfer, and the engine then fails closed (BASE-NO-PACK).

    A screen or a fallback applies to every transfer, so any date none of its versions covers counts.
    A regime's first version starts the day its law took effect: before that the regime does not
    apply (the law did not exist yet), but a gap between versions or a date after the last one ended
    counts."""
    in_force = {p.regime for p in packs if p.in_force_on(day)}
    started = {p.regime for p in packs if p.effective_from <= day}
    packs = [p for p in packs if p.kind != "regime" or p.regime in started]
    nearest: dict[str, CompiledPack] = {}

    def distance(pack: CompiledPack) -> tuple[int, int]:
        if pack.effective_from > day:  # a later version comes first, the soonest of them
            return (0, (pack.effective_from - day).days)
        end = pack.effective_to or day
        return (1, (day - end).days)

    for pack in packs:
        if pack.regime in in_force:
            continue
        current = nearest.get(pack.regime)
        if current is None or distance(pack) < distance(current):
            nearest[pack.regime] = pack
    order = {kind: i for i, kind in enumerate(PACK_KINDS)}
    return sorted(nearest.values(), key=lambda p: (order[p.kind], p.regime))


def coverage_start(packs: Sequence[CompiledPack]) -> date | None:
    """The earliest date any pack speaks to; before it no regime can decide anything."""
    return min((p.effective_from for p in packs), default=None)
