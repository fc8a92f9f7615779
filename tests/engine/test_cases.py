"""Every case of compliance/rulepacks/cases/*.yaml is decided as the case says, and together the cases
exercise every rule of every shipped pack version: a rule counts only when a decision reports it."""

import pytest

from tests.engine.cases import Case, decide, load_cases, load_packs

CASES = load_cases()


@pytest.fixture(scope="module")
def packs():
    return load_packs()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(packs, case: Case):
    decision = decide(case, packs)

    assert decision.outcome == case.outcome
    assert [list(g) for g in decision.requirements] == case.requirements
    reported = [f.rule for f in decision.findings]
    assert [r for r in case.rules if r not in reported] == [], reported
    for finding in decision.findings:
        assert "{" not in finding.explanation and "}" not in finding.explanation, finding.rule


def test_case_names_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


def _reported(packs) -> dict[str, set[str]]:
    """pack ref → the rule ids of that pack some case's decision reports."""
    reported: dict[str, set[str]] = {}
    for case in CASES:
        for finding in decide(case, packs).findings:
            reported.setdefault(finding.rulepack, set()).add(finding.rule)
    return reported


def test_every_rule_of_every_pack_is_reported_by_a_case(packs):
    reported = _reported(packs)
    every = set().union(*reported.values())

    unreached = sorted({r.id for p in packs for r in (*p.rules, p.default) if r is not None} - every)
    assert unreached == []


def test_every_pack_version_decides_at_least_one_case(packs):
    reported = _reported(packs)

    assert sorted(p.ref for p in packs if not reported.get(p.ref)) == []
