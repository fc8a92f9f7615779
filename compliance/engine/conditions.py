"""A small condition language for rule data, compiled and validated when a pack is loaded.

A condition is a one-key mapping: {"all": [...]}, {"any": [...]}, {"not": c}, or an operator over a
named fact field and a literal or a pack parameter ("$name"): in, any_in, all_in, eq, gte, gt, lte,
lt, is. Unknown fields, operators or parameters fail at load time; nothing is ever eval'ed.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from compliance.engine.facts import TransferFacts
from compliance.engine.jurisdictions import country_of
from compliance.engine.vocabulary import PERSONAL_CLASSIFICATIONS


class RulePackError(ValueError):
    """A rule pack that does not validate; `path` says where in the pack."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


Getter = Callable[[TransferFacts], Any]


@dataclass(frozen=True)
class Field:
    kind: str  # "code" | "codes" | "int" | "bool"
    get: Getter


FIELDS: dict[str, Field] = {
    "data.subject_jurisdictions": Field("codes", lambda f: f.data.subject_jurisdictions),
    "data.subject_countries": Field("codes", lambda f: tuple(country_of(c) for c in f.data.subject_jurisdictions)),
    "data.storage_jurisdiction": Field("code", lambda f: f.data.storage_jurisdiction),
    "data.storage_country": Field("code", lambda f: country_of(f.data.storage_jurisdiction)),
    "data.classification": Field("code", lambda f: f.data.classification),
    "data.personal": Field("bool", lambda f: f.data.classification in PERSONAL_CLASSIFICATIONS),
    "data.categories": Field("codes", lambda f: f.data.categories),
    "data.subjects": Field("int", lambda f: f.data.subjects),
    "data.de_identified": Field("bool", lambda f: f.data.de_identified),
    "data.flags": Field("codes", lambda f: f.data.flags),
    "exporter.jurisdiction": Field("code", lambda f: f.exporter.jurisdiction),
    "exporter.country": Field("code", lambda f: country_of(f.exporter.jurisdiction)),
    "exporter.flags": Field("codes", lambda f: f.exporter.flags),
    "buyer.jurisdiction": Field("code", lambda f: f.buyer.jurisdiction),
    "buyer.country": Field("code", lambda f: country_of(f.buyer.jurisdiction)),
    "buyer.headquarters": Field("code", lambda f: f.buyer.headquarters),
    "buyer.owner_jurisdictions": Field("codes", lambda f: f.buyer.owner_jurisdictions),
    "buyer.linked_jurisdictions": Field(
        "codes", lambda f: (f.buyer.jurisdiction, f.buyer.headquarters, *f.buyer.owner_jurisdictions)
    ),
    "buyer.kind": Field("code", lambda f: f.buyer.kind),
    "buyer.certifications": Field("codes", lambda f: f.buyer.certifications),
    "purpose": Field("code", lambda f: f.purpose),
    "mechanisms": Field("codes", lambda f: tuple(sorted(f.mechanisms_valid()))),
}

Predicate = Callable[[TransferFacts], bool]

_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


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
        if isinstance(value, bool) or not isinstance(value, (list, int, float, str)):
            raise RulePackError(f"{path}.{name}", "must be a list, a number or a string")
        if not isinstance(value, list):
            resolved[name] = value
            return value
        items: list[Any] = []
        for item in value:
            if isinstance(item, str) and item.startswith("$"):
                ref = item[1:]
                if ref in trail:
                    raise RulePackError(f"{path}.{name}", f"parameters refer to each other in a cycle: {' → '.join((*trail, ref))}")
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
    if isinstance(value, list):
        return tuple(value)
    return value


def _field(name: Any, path: str) -> Field:
    if name not in FIELDS:
        raise RulePackError(path, f"unknown field {name!r}; known: {', '.join(sorted(FIELDS))}")
    return FIELDS[name]


def compile_condition(raw: Any, params: Mapping[str, Any], path: str) -> Predicate:
    """Condition data → a predicate over TransferFacts; raises RulePackError on anything unknown."""
    if raw is True:
        return lambda f: True
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise RulePackError(path, "a condition is a mapping with exactly one operator")
    (op, arg), = raw.items()
    where = f"{path}.{op}"

    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise RulePackError(where, "takes a non-empty list of conditions")
        parts = tuple(compile_condition(c, params, f"{where}[{i}]") for i, c in enumerate(arg))
        if op == "all":
            return lambda f: all(p(f) for p in parts)
        return lambda f: any(p(f) for p in parts)
    if op == "not":
        inner = compile_condition(arg, params, where)
        return lambda f: not inner(f)
    if op == "is":
        fld = _field(arg, where)
        if fld.kind != "bool":
            raise RulePackError(where, f"{arg} is not a true/false field")
        return lambda f: bool(fld.get(f))

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
            return lambda f: get(f) in members
        if fld.kind != "codes":
            raise RulePackError(where, f"{arg[0]} is not a code field")
        if op == "in":
            raise RulePackError(where, f"use 'any_in' or 'all_in' with the list field {arg[0]}")
        if op == "any_in":
            return lambda f: any(c in members for c in get(f))
        return lambda f: bool(get(f)) and all(c in members for c in get(f))
    if op == "eq":
        if fld.kind == "codes":
            raise RulePackError(where, f"use any_in/all_in with the list field {arg[0]}")
        return lambda f: get(f) == value
    if op in _COMPARE:
        if fld.kind != "int" or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RulePackError(where, f"{op} compares a number field with a number")
        cmp = _COMPARE[op]
        return lambda f: cmp(get(f), value)
    raise RulePackError(path, f"unknown operator {op!r}")
