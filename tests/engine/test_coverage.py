"""docs/compliance-coverage.md accounts for every rule of the shipped packs and says why each rule it
leaves out is out of scope. Whether a rule is exercised is checked by tests/engine/test_cases.py: a rule
counts only when some case's decision reports it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "docs" / "compliance-coverage.md"
RULE_ID = re.compile(r"^\| ([A-Z]{2,4}(?:-[A-Z0-9]+)+)(?: \*\(Elementa\)\*)? \| (implemented|out of scope) \|", re.M)


def coverage_rows() -> dict[str, str]:
    return dict(RULE_ID.findall(COVERAGE.read_text()))


def pack_rule_ids(packs) -> set[str]:
    return {r.id for p in packs for r in p.rules} | {p.default.id for p in packs if p.default}


def test_every_rule_in_a_pack_is_listed_as_implemented(shipped_packs):
    rows = coverage_rows()

    missing = {rule for rule in pack_rule_ids(shipped_packs) if rows.get(rule) != "implemented"}
    assert missing == set()


def test_every_rule_left_out_says_why():
    out_of_scope = [line for line in COVERAGE.read_text().splitlines() if "| out of scope |" in line]

    assert out_of_scope
    assert all(len(line.rsplit("|", 2)[-2].strip()) > 20 for line in out_of_scope), (
        "each out-of-scope row gives a reason"
    )


def test_the_table_names_every_pack_version(shipped_packs):
    text = COVERAGE.read_text()

    assert sorted(p.ref for p in shipped_packs if f"`{p.ref}`" not in text) == []
