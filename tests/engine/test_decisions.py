"""The shipped packs explain themselves, honour mechanisms only while valid, and use the version in force on
the trade date. The cases they must decide are in compliance/rulepacks/cases/ (tests/engine/test_cases.py)."""

import re

import pytest

from compliance.engine import Outcome, evaluate


def test_every_finding_names_rule_pack_version_citation_and_explanation(shipped_packs, facts):
    decision = evaluate(facts(buyer__jurisdiction="US"), shipped_packs)

    for finding in decision.findings:
        assert finding.rule and finding.citation and finding.explanation
        assert re.fullmatch(r"[a-z_]+@\d{4}\.\d{2}\.\d{2}", finding.rulepack)
    assert set(decision.rulepacks) == {f.rulepack for f in decision.findings}


def test_explanation_carries_the_facts_that_decided(shipped_packs, facts):
    decision = evaluate(facts(buyer__jurisdiction="US", buyer__certifications=[]), shipped_packs)
    scc = next(f for f in decision.findings if f.rule == "EU-SCC-1")

    assert "importer in US" in scc.explanation and "certifications: none" in scc.explanation


def test_satisfied_requirement_says_which_mechanism_satisfied_it(shipped_packs, facts):
    decision = evaluate(
        facts(buyer__jurisdiction="US", mechanisms=[{"code": "eu_scc"}, {"code": "eu_tia"}]), shipped_packs
    )
    scc = next(f for f in decision.findings if f.rule == "EU-SCC-1")

    assert scc.outcome == Outcome.ALLOW
    assert "satisfied by eu_scc, eu_tia on file and valid on 2026-11-26" in scc.explanation


@pytest.mark.parametrize(("valid_until", "approved_on", "outcome"), [
    ("2026-11-25", None, "needs_mechanism"),   # expired the day before
    ("2026-11-26", None, "allow"),             # still valid on its last day
    (None, "2026-11-27", "needs_mechanism"),   # not yet approved on the trade date
    (None, "2026-11-26", "allow"),
])
def test_mechanism_counts_only_while_valid_on_the_trade_date(shipped_packs, facts, valid_until, approved_on, outcome):
    scc = {
        "code": "eu_scc",
        **({"valid_until": valid_until} if valid_until else {}),
        **({"approved_on": approved_on} if approved_on else {}),
    }
    decision = evaluate(facts(buyer__jurisdiction="US", mechanisms=[scc, {"code": "eu_tia"}]), shipped_packs)

    assert decision.outcome == outcome


@pytest.mark.parametrize(("trade_date", "outcome", "pack"), [
    ("2026-01-25", "needs_mechanism", "eu@2023.07.10"),  # before Brazil's adequacy decision
    ("2026-01-26", "allow", "eu@2026.01.26"),            # the day it applies
])
def test_pack_version_in_force_on_the_trade_date_decides(shipped_packs, facts, trade_date, outcome, pack):
    decision = evaluate(facts(buyer__jurisdiction="BR", trade_date=trade_date), shipped_packs)

    assert decision.outcome == outcome
    assert pack in decision.rulepacks


def test_a_regime_not_in_force_yet_is_not_applied(shipped_packs, facts):
    # the GDPR (the EU regime's first version) applies from 2018-05-25
    decision = evaluate(facts(buyer__jurisdiction="US", trade_date="2018-05-24"), shipped_packs)

    assert not any(ref.startswith("eu@") for ref in decision.rulepacks)
    assert decision.outcome == "review"  # personal data no regime decides is never allowed


def test_same_facts_same_decision(shipped_packs, facts):
    assert evaluate(facts(buyer__jurisdiction="US"), shipped_packs) == evaluate(
        facts(buyer__jurisdiction="US"), shipped_packs
    )
