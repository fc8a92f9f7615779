"""docs/compliance-coverage.md accounts for every rule of the catalogue and of the shipped packs,
and every rule a pack implements is exercised by a test."""

import re
from datetime import date
from pathlib import Path

import pytest

from compliance.engine import evaluate, parse_facts
from tests.engine.test_decisions import EXAMPLES, _examples

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT.parent / "shared" / "compliance" / "rules-catalogue.md"
COVERAGE = ROOT / "docs" / "compliance-coverage.md"
RULE_ID = re.compile(r"^\| ([A-Z]{2,4}(?:-[A-Z0-9]+)+)(?: \*\(Elementa\)\*)? \| (implemented|out of scope) \|", re.M)


def coverage_rows() -> dict[str, str]:
    return dict(RULE_ID.findall(COVERAGE.read_text()))


def pack_rule_ids(packs) -> set[str]:
    return {r.id for p in packs for r in p.rules} | {p.default.id for p in packs if p.default}


@pytest.mark.skipif(not CATALOGUE.exists(), reason="shared/compliance is not beside the repository")
def test_every_catalogue_rule_is_implemented_or_explained():
    catalogue = set(re.findall(r"^\| ([A-Z]{2,4}(?:-[A-Z0-9]+)+) \|", CATALOGUE.read_text(), re.M))
    rows = coverage_rows()

    assert catalogue - rows.keys() == set()
    out_of_scope = [line for line in COVERAGE.read_text().splitlines() if "| out of scope |" in line]
    assert all(len(line.rsplit("|", 2)[-2].strip()) > 20 for line in out_of_scope), "each out-of-scope row gives a reason"


def test_every_rule_in_a_pack_is_listed_as_implemented(shipped_packs):
    rows = coverage_rows()

    missing = {rule for rule in pack_rule_ids(shipped_packs) if rows.get(rule) != "implemented"}
    assert missing == set()


def test_every_rule_in_a_pack_is_exercised_by_a_test(shipped_packs):
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    reached: set[str] = set()
    if EXAMPLES.exists():
        for _, body, _, _ in _examples():
            reached |= {f.rule for f in evaluate(parse_facts(body, today=date(2026, 11, 26)), shipped_packs).findings}

    untested = {rule for rule in pack_rule_ids(shipped_packs) if rule not in sources and rule not in reached}
    assert untested == set()
