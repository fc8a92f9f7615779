"""The rule-pack case files (compliance/rulepacks/cases/*.yaml): worked legal cases the shipped packs must decide.

A case file names the regime it is about and holds a list of cases. Each case gives:

- `name`: what the case is, in a few words;
- `note`: the legal point it checks, in one line;
- `trade_date`: the day the trade is decided on (so older pack versions are exercised too);
- either `body`, a complete request body for POST /api/v1/compliance/evaluate/, or `facts`, fields
  by dotted path (`buyer.jurisdiction: US`) that replace those of `BASE` below;
- optionally `parameters`: pack ref → parameter values that replace the shipped ones, for rules that
  read a list no country is on yet (the rule is then checked with the list filled in);
- `outcome`, `requirements` (the missing requirement groups, in order) and `rules`: rule ids that
  must each appear among the decision's findings (the rules that decide the case).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from compliance.engine import CompiledPack, Decision, compile_pack, evaluate, parse_facts

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "compliance" / "rulepacks"
CASE_DIR = PACK_DIR / "cases"
TODAY = date(2026, 11, 26)  # the day a case without its own trade_date would be decided

# German personal data of 50,000 customers, sold for resale by a German exporter to a German buyer:
# the plainest case. A case's `facts` change only what it is about.
BASE: dict[str, Any] = {
    "data": {"subject_jurisdictions": ["DE"], "storage_jurisdiction": "DE", "classification": "personal",
             "categories": ["contact"], "subjects": 50000},
    "exporter": {"jurisdiction": "DE"},
    "buyer": {"jurisdiction": "DE"},
    "purpose": "resale",
    "mechanisms": [],
}
CASE_KEYS = {"name", "note", "trade_date", "body", "facts", "parameters", "outcome", "requirements", "rules"}


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    note: str
    body: dict[str, Any]
    outcome: str
    requirements: list[list[str]]
    rules: list[str]
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    worked: bool = False  # given as a complete request body

    @property
    def id(self) -> str:
        return f"{self.file}: {self.name}"


def _with_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    for path, value in overrides.items():
        target = body
        *parents, leaf = path.split(".")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = copy.deepcopy(value)
    return body


def load_cases(directory: Path = CASE_DIR) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        for item in raw["cases"]:
            unknown = set(item) - CASE_KEYS
            if unknown or ("body" in item) == ("facts" in item) or not item.get("note") or "trade_date" not in item:
                raise ValueError(f"{path.name}: case {item.get('name')!r} is malformed (keys {sorted(item)})")
            body = copy.deepcopy(item["body"]) if "body" in item else _with_overrides(item["facts"])
            body["trade_date"] = str(item["trade_date"])
            cases.append(Case(file=path.stem, name=item["name"], note=item["note"], body=body, outcome=item["outcome"],
                              requirements=item.get("requirements") or [], rules=item["rules"],
                              parameters=item.get("parameters") or {}, worked="body" in item))
    return cases


def load_packs(directory: Path = PACK_DIR) -> list[CompiledPack]:
    return [compile_pack(yaml.safe_load(p.read_text())) for p in sorted(directory.glob("*.yaml"))]


def packs_for(case: Case, packs: list[CompiledPack], directory: Path = PACK_DIR) -> list[CompiledPack]:
    """The shipped packs, with the case's parameter values put into the packs it names."""
    if not case.parameters:
        return packs
    changed: list[CompiledPack] = []
    for ref, values in case.parameters.items():
        regime, version = ref.split("@")
        raw = yaml.safe_load((directory / f"{regime}-{version}.yaml").read_text())
        raw["parameters"].update(values)
        changed.append(compile_pack(raw))
    refs = {p.ref for p in changed}
    return [p for p in packs if p.ref not in refs] + changed


def decide(case: Case, packs: list[CompiledPack]) -> Decision:
    return evaluate(parse_facts(case.body, today=TODAY), packs_for(case, packs))
