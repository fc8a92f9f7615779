"""A small condition language for rule data, compiled and validated when a pack is loaded.

A condition is a one-key mapping: {"all": [...]}, {"any": [...]}, {"not": c}, or an operator over a
named fact field and a literal or a pack parameter ("$name"): in, any_in, all_in, eq, gte, gt, lte,
lt, is; or {"list_match": {min_score: N, owned_share: N}} over the parties' sanctions-list matches.
Unknown fields, operators or parameters fail at load time; nothing is ever eval'ed.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from compliance.engine.context import Context, Tally
from compliance.engine.jurisdictions import country_of
from compliance.engine.vocabulary import PERSONAL_CLASSIFICATIONS


class RulePackError(ValueError):
    """A rule pack that does not validate; `path` says where in the pack."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


Getter = Callable[[Context], Any]


@dataclass(frozen=True)
class Field:
    kind: str  # "code" | "codes" | "int" | "bool" | "tally" | "tallies"
    get: Getter
    label: str = ""


FIELDS: dict[str, Field] = {
    "data.subject_jurisdictions": Field("codes", lambda c: c.facts.data.subject_jurisdictions),
    "data.subject_countries": Field(
        "codes", lambda c: tuple(country_of(j) for j in c.facts.data.subject_jurisdictions)
    ),
    "data.storage_jurisdiction": Field("code", lambda c: c.facts.data.storage_jurisdiction),
    "data.storage_country": Field("code", lambda c: country_of(c.facts.data.storage_jurisdiction)),
    "data.classification": Field("code", lambda c: c.facts.data.classification),
    "data.personal": Field("bool", lambda c: c.facts.data.classification in PERSONAL_CLASSIFICATIONS),
    "data.categories": Field("codes", lambda c: c.facts.data.categories),
    "data.subjects": Field("int", lambda c: c.facts.data.subjects, "people in this trade"),
    "data.de_identified": Field("bool", lambda c: c.facts.data.de_identified),
    "data.flags": Field("codes", lambda c: c.facts.data.flags),
    "exporter.jurisdiction": Field("code", lambda c: c.facts.exporter.jurisdiction),
    "exporter.country": Field("code", lambda c: country_of(c.facts.exporter.jurisdiction)),
    "exporter.flags": Field("codes", lambda c: c.facts.exporter.flags),
    "buyer.jurisdiction": Field("code", lambda c: c.facts.buyer.jurisdiction),
    "buyer.country": Field("code", lambda c: country_of(c.facts.buyer.jurisdiction)),
    "buyer.headquarters": Field("code", lambda c: c.facts.buyer.headquarters),
    "buyer.owner_jurisdictions": Field("codes", lambda c: c.facts.buyer.owner_jurisdictions),
    "buyer.linked_jurisdictions": Field(
        "codes",
        lambda c: tuple(
            dict.fromkeys((c.facts.buyer.jurisdiction, c.facts.buyer.headquarters, *c.facts.buyer.owner_jurisdictions))
        ),
    ),
    "buyer.kind": Field("code", lambda c: c.facts.buyer.kind),
    "buyer.certifications": Field("codes", lambda c: c.facts.buyer.certifications),
    "purpose": Field("code", lambda c: c.facts.purpose),
    "delivery": Field("code", lambda c: c.facts.delivery),
    "transfer.domestic": Field("bool", lambda c: _domestic(c)),
    "mechanisms": Field("codes", lambda c: tuple(sorted(c.held))),
    "cn.nonsensitive": Field(
        "tally",
        lambda c: c.cn_tally(sensitive=False),
        "personal information of people exported by this exporter this calendar year",
    ),
    "cn.sensitive": Field(
        "tally",
        lambda c: c.cn_tally(sensitive=True),
        "sensitive personal information of people exported by this exporter this calendar year",
    ),
    "us.same_buyer_12m": Field(
        "tallies", lambda c: c.us_same_buyer_12m(), "made available to the same buyer in 12 months"
    ),
}

Predicate = Callable[[Context], bool]


def _domestic(ctx: Context) -> bool:
    """Subjects, storage, exporter and buyer all in one country: no border is crossed."""
    f = ctx.facts
    countries = {
        country_of(j) for j in (*f.data.subject_jurisdictions, f.data.storage_jurisdiction, f.exporter.jurisdiction)
    }
    return countries == {country_of(f.buyer.jurisdiction)}

_COMPARE: dict[str, Callable[[int | float, int | float], bool]] = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}
# The comparison that holds when the named one does not: a witness is always a true statement.
_SYMBOL = {"gte": ("≥", "<"), "gt": (">", "≤"), "lte": ("≤", ">"), "lt": ("<", "≥")}


def _witness_compare(ctx: Context, fld: Field, op: str, value: Any, threshold: int | float) -> bool:
    """Compare a number or a tally's total with a threshold, and record the arithmetic."""
    actual = value.after if isinstance(value, Tally) else value
    holds = _COMPARE[op](actual, threshold)
    symbol = _SYMBOL[op][0 if holds else 1]
    # Formatted only if the rule matches and its explanation is rendered.
    ctx.witness.append(
        lambda: f"{fld.label}: {value.describe() if isinstance(value, Tally) else f'{actual:,}'} {symbol} {threshold:,}"
    )
    return holds


def resolve_parameters(raw: Any, path: str) -> dict[str, Any]:
    """Parameters are named lists of codes, numbers or strings; a list may include another list
    parameter as "$name" (in any order; a cycle is an error)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RulePackError(path, "must be a mapping of names to lists or numbers")
    resolved: dict[str, Any] = {}

    def resolve(name: str, trail: tuple[str, ...]) -> Any:
        if name in resolved:
            return resolved[name]
        value = raw[name]
        if isinstance(value, Mapping):
            if not value or not all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in value.items()
            ):
                raise RulePackError(f"{path}.{name}", "a mapping parameter maps names to numbers")
            resolved[name] = dict(value)
            return resolved[name]
        if isinstance(value, bool) or not isinstance(value, (list, int, float, str)):
            raise RulePackError(f"{path}.{name}", "must be a list, a mapping, a number or a string")
        if not isinstance(value, list):
            resolved[name] = value
            return value
        items: list[Any] = []
        for item in value:
            if isinstance(item, str) and item.startswith("$"):
                ref = item[1:]
                if ref in trail:
                    raise RulePackError(
                        f"{path}.{name}", f"parameters refer to each other in a cycle: {' → '.join((*trail, ref))}"
                    )
                if ref not in raw or not isinstance(raw[ref], list):
                    raise RulePackError(f"{path}.{name}", f"refers to {item}, which is not a list parameter")
                items.extend(resolve(ref, (*trail, ref)))
            else:
                items.append(item)
        resolved[name] = tuple(dict.fromkeys(items))
        return resolved[name]

    for name in raw:
        resolve(name, (name,))
    return resolved


def _operand(value: Any, params: Mapping[str, Any], path: str) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in params:
            raise RulePackError(path, f"unknown parameter {value}")
        return params[value[1:]]
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _field(name: Any, path: str) -> Field:
    if name not in FIELDS:
        raise RulePackError(path, f"unknown field {name!r}; known: {', '.join(sorted(FIELDS))}")
    return FIELDS[name]


def compile_condition(raw: Any, params: Mapping[str, Any], path: str) -> Predicate:
    """Condition data → a predicate over the evaluation Context; raises RulePackError on anything unknown."""
    if raw is True:
        return lambda c: True
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise RulePackError(path, "a condition is a mapping with exactly one operator")
    (op, arg), = raw.items()
    where = f"{path}.{op}"

    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise RulePackError(where, "takes a non-empty list of conditions")
        parts = tuple(compile_condition(c, params, f"{where}[{i}]") for i, c in enumerate(arg))
        return _all(parts) if op == "all" else _any(parts)
    if op == "not":
        inner = compile_condition(arg, params, where)
        return lambda c: not inner(c)
    if op == "is":
        fld = _field(arg, where)
        if fld.kind != "bool":
            raise RulePackError(where, f"{arg} is not a true/false field")
        return lambda c: bool(fld.get(c))
    if op == "any_gt":
        return _any_gt(arg, params, where)
    if op == "list_match":
        return _list_match(arg, params, where)

    if not isinstance(arg, list) or len(arg) != 2:
        raise RulePackError(where, "takes [field, value]")
    fld = _field(arg[0], where)
    value = _operand(arg[1], params, where)
    get = fld.get

    if op in ("in", "any_in", "all_in"):
        if not isinstance(value, tuple):
            raise RulePackError(where, "the value must be a list or a list parameter")
        members = frozenset(value)
        if fld.kind == "code":
            if op != "in":
                raise RulePackError(where, f"use 'in' with the single-valued field {arg[0]}")
            return lambda c: get(c) in members
        if fld.kind != "codes":
            raise RulePackError(where, f"{arg[0]} is not a code field")
        if op == "in":
            raise RulePackError(where, f"use 'any_in' or 'all_in' with the list field {arg[0]}")
        if op == "any_in":
            return lambda c: any(x in members for x in get(c))
        return lambda c: bool(get(c)) and all(x in members for x in get(c))
    if op == "eq":
        if fld.kind in ("codes", "tally", "tallies"):
            raise RulePackError(where, f"eq does not apply to the field {arg[0]}")
        return lambda c: get(c) == value
    if op in _COMPARE:
        if fld.kind not in ("int", "tally") or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RulePackError(where, f"{op} compares a number or tally field with a number")
        return lambda c: _witness_compare(c, fld, op, get(c), value)
    raise RulePackError(path, f"unknown operator {op!r}")


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    def check(ctx: Context) -> bool:
        mark = len(ctx.witness)
        if all(p(ctx) for p in parts):
            return True
        del ctx.witness[mark:]
        return False

    return check


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    def check(ctx: Context) -> bool:
        for p in parts:
            mark = len(ctx.witness)
            if p(ctx):
                return True
            del ctx.witness[mark:]
        return False

    return check


def _owners_witness(party: str, total: float) -> Callable[[], str]:
    """The witness line of listed owners holding a share together, formatted only when rendered."""
    return lambda: f"listed owners hold {total:g} % of the {party} together"


def _over_witness(cat: str, fld: Field, tally: Tally, limit: Any) -> Callable[[], str]:
    """The witness line of one category over its threshold, formatted only when rendered."""
    return lambda: f"{cat} {fld.label}: {tally.describe()} > {limit:,}"


def _any_gt(arg: Any, params: Mapping[str, Any], where: str) -> Predicate:
    """{"any_gt": [tallies field, $mapping]}: some category's total is strictly above its threshold
    (the US bulk test: "more than N"). Records each category that is."""
    if not isinstance(arg, list) or len(arg) != 2:
        raise RulePackError(where, "takes [tallies field, mapping parameter]")
    fld = _field(arg[0], where)
    thresholds = _operand(arg[1], params, where)
    if fld.kind != "tallies" or not isinstance(thresholds, dict):
        raise RulePackError(where, "compares a per-category tallies field with a mapping parameter of thresholds")

    def check(ctx: Context) -> bool:
        over = [
            (cat, tally, thresholds[cat])
            for cat, tally in fld.get(ctx).items()
            if cat in thresholds and tally.after > thresholds[cat]
        ]
        for cat, tally, limit in over:
            ctx.witness.append(_over_witness(cat, fld, tally, limit))
        return bool(over)

    return check


def _number_operand(raw: Any, params: Mapping[str, Any], path: str) -> float:
    value = _operand(raw, params, path)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise RulePackError(path, "must be a number from 0 to 100 (or a parameter holding one)")
    return float(value)


def _list_match(arg: Any, params: Mapping[str, Any], where: str) -> Predicate:
    """{"list_match": {"min_score": N, "owned_share": S}}: a party (buyer or exporter) resembles a
    sanctions-list entry with a score of at least N, by its name or an alias; or, with
    `owned_share`, owners matching at least N together hold S % or more of it (the OFAC 50 % rule
    and the EU "owned" test aggregate the holdings of listed owners; control alone does not count).
    Without `owned_share` any owner or controller matching at least N counts. Records each match."""
    if not isinstance(arg, Mapping) or not set(arg) <= {"min_score", "owned_share"} or "min_score" not in arg:
        raise RulePackError(where, "takes {min_score: N, owned_share: S} (owned_share optional)")
    min_score = _number_operand(arg["min_score"], params, f"{where}.min_score")
    owned = _number_operand(arg["owned_share"], params, f"{where}.owned_share") if "owned_share" in arg else None

    def check(ctx: Context) -> bool:
        hits = [m for m in ctx.facts.parties.list_matches if m.score >= min_score]
        counted = [m for m in hits if m.subject in ("name", "alias")]
        if owned is None:
            counted += [m for m in hits if m.subject in ("owner", "controller")]
        else:
            for party in dict.fromkeys(m.party for m in hits):
                owners = [m for m in hits if m.party == party and m.subject == "owner"]
                shares = {m.name: m.share for m in owners}  # an owner matching two entries counts once
                if owners and sum(shares.values()) >= owned:
                    counted += owners
                    total = sum(shares.values())
                    ctx.witness.append(_owners_witness(party, total))
        for m in counted:
            ctx.witness.append(m.describe)
        return bool(counted)

    return check
