"""The shipped packs decide the cases issue 2's first rule set covers, and explain themselves."""

import json
import re
from datetime import date
from pathlib import Path

import pytest

from compliance.engine import Outcome, evaluate, parse_facts

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "compliance" / "examples.md"


# (case, overrides, outcome, requirements, deciding rule)
CASES = [
    ("intra-EEA personal data", {}, "allow", [], "EU-INTRA-1"),
    ("EEA → Norway (EEA, not EU)", {"buyer__jurisdiction": "NO"}, "allow", [], "EU-INTRA-1"),
    ("French outermost region counts as EU", {"buyer__jurisdiction": "RE"}, "allow", [], "EU-INTRA-1"),
    ("EU public data to the US", {"buyer__jurisdiction": "US", "data__classification": "public", "data__subjects": 0}, "allow", [], "EU-NP-1"),
    ("EU personal data to a full-adequacy country", {"buyer__jurisdiction": "CH"}, "allow", [], "EU-ADQ-1"),
    ("EU personal data to Japan, a company", {"buyer__jurisdiction": "JP"}, "allow", [], "EU-ADQ-P"),
    ("EU personal data to a Japanese public body", {"buyer__jurisdiction": "JP", "buyer__kind": "public_body"},
     "needs_mechanism", [["eu_scc"], ["eu_tia"]], "EU-SCC-1"),
    ("EU personal data to a DPF-certified US buyer", {"buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf"]},
     "allow_flagged", [], "EU-DPF-1"),
    ("EU personal data to an uncertified US buyer", {"buyer__jurisdiction": "US"}, "needs_mechanism", [["eu_scc"], ["eu_tia"]], "EU-SCC-1"),
    ("… with only the SCC on file", {"buyer__jurisdiction": "US", "mechanisms": [{"code": "eu_scc"}]}, "needs_mechanism", [["eu_tia"]], "EU-SCC-1"),
    ("… with SCC and TIA on file", {"buyer__jurisdiction": "US", "mechanisms": [{"code": "eu_scc"}, {"code": "eu_tia"}]}, "allow", [], "EU-SCC-1"),
    ("negative TIA", {"buyer__jurisdiction": "US", "mechanisms": [{"code": "eu_tia_negative"}]}, "deny", [], "EU-TIA-NEG"),
    ("intra-group with BCRs", {"buyer__jurisdiction": "IN", "purpose": "intra_group", "mechanisms": [{"code": "eu_bcr"}]}, "allow_flagged", [], "EU-BCR-1"),
    ("buyer in Iran", {"buyer__jurisdiction": "IR"}, "deny", [], "SAN-US-1"),
    ("buyer in Crimea (subdivision)", {"buyer__jurisdiction": "UA-43"}, "deny", [], "SAN-US-1"),
    ("buyer owned from North Korea", {"buyer__jurisdiction": "SG", "buyer__owner_jurisdictions": ["KP"],
                                      "data__classification": "public", "data__subjects": 0}, "deny", [], "SAN-US-1"),
    ("buyer headquartered in Cuba", {"buyer__jurisdiction": "ES", "buyer__headquarters": "CU"}, "deny", [], "SAN-US-1"),
    ("buyer in Russia", {"buyer__jurisdiction": "RU"}, "review", [["eu_scc"], ["eu_tia"]], "SAN-RU-1"),
    ("buyer in Syria", {"buyer__jurisdiction": "SY", "data__classification": "public", "data__subjects": 0}, "review", [], "SAN-SYR-1"),
    ("buyer in Donetsk oblast", {"buyer__jurisdiction": "UA-14", "data__classification": "public", "data__subjects": 0}, "review", [], "SAN-EU-1"),
    ("personal data no regime in force covers", {"data__subject_jurisdictions": ["AU"], "data__storage_jurisdiction": "AU",
                                                 "exporter__jurisdiction": "AU", "buyer__jurisdiction": "CA"}, "review", [], "BASE-REVIEW"),
    ("non-personal data no regime covers", {"data__subject_jurisdictions": ["AU"], "data__storage_jurisdiction": "AU",
                                            "exporter__jurisdiction": "AU", "buyer__jurisdiction": "CA", "data__classification": "non_personal",
                                            "data__subjects": 0}, "allow", [], "BASE-NP-1"),
    ("a domestic sale crosses no border", {"data__subject_jurisdictions": ["GB"], "data__storage_jurisdiction": "GB",
                                           "exporter__jurisdiction": "GB", "buyer__jurisdiction": "GB"}, "allow", [], "BASE-DOMESTIC"),
    ("a domestic sale of Chinese data", {"data__subject_jurisdictions": ["CN"], "data__storage_jurisdiction": "CN",
                                         "exporter__jurisdiction": "CN", "buyer__jurisdiction": "CN-GD"}, "allow", [], "BASE-DOMESTIC"),
    ("important data no regime covers", {"data__subject_jurisdictions": ["AU"], "data__storage_jurisdiction": "AU", "exporter__jurisdiction": "AU",
                                         "buyer__jurisdiction": "CA", "data__classification": "important", "data__subjects": 0}, "review", [], "BASE-IMP-1"),
    ("EU data stored in China sold to a US buyer: EU onward transfer, China exempt volume",
     {"data__storage_jurisdiction": "CN", "exporter__jurisdiction": "CN", "buyer__jurisdiction": "US"}, "needs_mechanism", [["eu_scc"], ["eu_tia"]],
     "EU-ONWARD-1"),
    ("special-category data inside the EEA still goes to review", {"data__classification": "sensitive_personal", "data__categories": ["health"]},
     "review", [], "EU-ART9-1"),
    ("a foreign court compelling disclosure", {"buyer__jurisdiction": "US", "buyer__kind": "court_or_law_enforcement"}, "deny", [], "EU-48-1"),
    ("Art. 49 derogation for resale", {"buyer__jurisdiction": "US", "mechanisms": [{"code": "eu_art49_derogation"}]}, "deny", [], "EU-49-1-RESALE"),
    ("Art. 49 derogation for a contract with the subject", {"buyer__jurisdiction": "US", "purpose": "contract_with_subject",
                                                            "mechanisms": [{"code": "eu_art49_derogation"}]}, "review", [], "EU-49-1"),
    ("DPF without HR coverage does not cover employee data", {"buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf"],
                                                             "data__categories": ["employee"]}, "needs_mechanism", [["eu_scc"], ["eu_tia"]], "EU-SCC-1"),
    ("DPF with HR coverage covers employee data", {"buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf_hr"],
                                                  "data__categories": ["employee"]}, "allow_flagged", [], "EU-DPF-1"),
]


@pytest.mark.parametrize(("case", "overrides", "outcome", "requirements", "rule"), CASES, ids=[c[0] for c in CASES])
def test_decision(shipped_packs, facts, case, overrides, outcome, requirements, rule):
    decision = evaluate(facts(**overrides), shipped_packs)

    assert decision.outcome == outcome
    assert [list(g) for g in decision.requirements] == requirements
    assert rule in [f.rule for f in decision.findings]


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
    decision = evaluate(facts(buyer__jurisdiction="US", mechanisms=[{"code": "eu_scc"}, {"code": "eu_tia"}]), shipped_packs)
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
    scc = {"code": "eu_scc", **({"valid_until": valid_until} if valid_until else {}), **({"approved_on": approved_on} if approved_on else {})}
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
    assert evaluate(facts(buyer__jurisdiction="US"), shipped_packs) == evaluate(facts(buyer__jurisdiction="US"), shipped_packs)


def _examples() -> list[tuple[str, dict, str, list]]:
    text = EXAMPLES.read_text()
    pattern = r"## (XB-\d+)[^\n]*\n\n```json\n(.*?)```.*?\*\*Expected:\*\* `(\w+)`(?:, requirements `([^`]*)`)?"
    return [(m.group(1), json.loads(m.group(2)), m.group(3), json.loads(m.group(4) or "[]")) for m in re.finditer(pattern, text, re.S)]


@pytest.mark.skipif(not EXAMPLES.exists(), reason="shared/compliance/examples.md is not beside the repository")
@pytest.mark.parametrize(("example", "body", "expected", "requirements"), _examples() if EXAMPLES.exists() else [],
                         ids=lambda v: v if isinstance(v, str) and v.startswith("XB") else "")
def test_worked_examples(shipped_packs, example, body, expected, requirements):
    decision = evaluate(parse_facts(body, today=date(2026, 11, 26)), shipped_packs)

    assert (decision.outcome, [list(g) for g in decision.requirements]) == (expected, requirements)
