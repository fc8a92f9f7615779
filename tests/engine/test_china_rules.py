"""China's rules beyond the volume ladder (catalogue §1.3): exemptions, CIIOs, the GBA, FTZs,
important, core and genetic data, foreign authorities."""

import pytest

from compliance.engine import evaluate

CN = {"data__subject_jurisdictions": ["CN"], "data__storage_jurisdiction": "CN", "exporter__jurisdiction": "CN",
      "buyer__jurisdiction": "SG", "data__subjects": 500_000}


# (case, overrides, deciding CN rule, outcome, requirements)
CASES = [
    ("core data is not tradable", {"data__classification": "core", "data__subjects": 0, "data__categories": []}, "CN-CORE-1", "deny", []),
    ("a foreign court asks for it", {"buyer__kind": "court_or_law_enforcement"}, "CN-AUTH-1", "deny", []),
    ("public data", {"data__classification": "public", "data__subjects": 0, "data__categories": ["statistics"]}, "CN-NP-1", "allow", []),
    ("genetic data", {"data__classification": "sensitive_personal", "data__categories": ["genomic"]}, "CN-HGR-1", "review", []),
    ("collected abroad, only processed in China", {"data__flags": ["foreign_origin_only"]}, "CN-EX-ORIGIN", "allow", []),
    ("contract with the subject", {"purpose": "contract_with_subject"}, "CN-EX-CONTRACT", "allow_flagged", []),
    ("HR management of employees", {"purpose": "hr_management", "data__categories": ["employee", "contact"]}, "CN-EX-HR", "allow_flagged", []),
    ("HR purpose but customer data is not exempt", {"purpose": "hr_management", "data__categories": ["purchase_history"]},
     "CN-PI-SC", "needs_mechanism", [["cn_standard_contract", "cn_certification"]]),
    ("emergency", {"purpose": "emergency"}, "CN-EX-EMERG", "allow_flagged", []),
    ("resale is never the contract exemption", {"purpose": "resale"}, "CN-PI-SC", "needs_mechanism", [["cn_standard_contract", "cn_certification"]]),
    ("CIIO relying on an exemption", {"exporter__flags": ["cn_ciio"], "purpose": "emergency"}, "CN-EX-CIIO-INTERPLAY", "review", []),
    ("FTZ exporter, data not on the negative list", {"exporter__flags": ["cn_ftz"]}, "CN-EX-FTZ", "allow", []),
    ("FTZ exporter, data on the negative list", {"exporter__flags": ["cn_ftz"], "data__flags": ["ftz_negative_list"]},
     "CN-PI-SC", "needs_mechanism", [["cn_standard_contract", "cn_certification"]]),
    ("GBA contract to a registered Hong Kong recipient, no volume cap",
     {"exporter__flags": ["cn_gba"], "buyer__jurisdiction": "HK", "buyer__certifications": ["cn_gba_registered"], "data__subjects": 5_000_000,
      "mechanisms": [{"code": "cn_gba_standard_contract"}]}, "CN-GBA-1", "allow", []),
    ("GBA exporter without the GBA contract falls back to the national ladder",
     {"exporter__flags": ["cn_gba"], "buyer__jurisdiction": "HK", "buyer__certifications": ["cn_gba_registered"], "data__subjects": 5_000_000},
     "CN-PI-SA", "needs_approval", [["cn_security_assessment"]]),
    ("CIIO, ten people", {"exporter__flags": ["cn_ciio"], "data__subjects": 10}, "CN-CIIO-1", "needs_approval", [["cn_security_assessment"]]),
    ("important data, any volume", {"data__classification": "important", "data__subjects": 0, "data__categories": []},
     "CN-IMP-1", "needs_approval", [["cn_security_assessment"]]),
    ("a valid certification satisfies the contract band", {"mechanisms": [{"code": "cn_certification", "approved_on": "2026-01-05"}]},
     "CN-PI-SC", "allow", []),
]


@pytest.mark.parametrize(("case", "overrides", "rule", "outcome", "requirements"), CASES, ids=[c[0] for c in CASES])
def test_china_rule(shipped_packs, facts, case, overrides, rule, outcome, requirements):
    decision = evaluate(facts(**{**CN, **overrides}), shipped_packs)

    cn = [f for f in decision.findings if f.regime == "CN" and f.rule != "CN-DUTY-1"]
    assert [f.rule for f in cn] == [rule]
    assert (cn[0].outcome, [list(g) for g in cn[0].requirements]) == (outcome, requirements)


@pytest.mark.parametrize("buyer", ["HK", "MO", "TW", "CN-HK"])
def test_hong_kong_macao_and_taiwan_are_outside_the_mainland(shipped_packs, facts, buyer):
    decision = evaluate(facts(**{**CN, "buyer__jurisdiction": buyer}), shipped_packs)

    assert "cn@2024.03.22" in decision.rulepacks


@pytest.mark.parametrize("buyer", ["CN", "CN-GD"])
def test_a_mainland_buyer_is_not_an_export(shipped_packs, facts, buyer):
    decision = evaluate(facts(**{**CN, "buyer__jurisdiction": buyer}), shipped_packs)

    assert "cn@2024.03.22" not in decision.rulepacks


def test_personal_exports_carry_the_pipl_duties_as_obligations_not_requirements(shipped_packs, facts):
    decision = evaluate(facts(**{**CN, "data__subjects": 10}), shipped_packs)

    assert decision.outcome == "allow" and decision.requirements == ()
    assert any("separate consent" in o for o in decision.obligations)
    assert any("impact assessment" in o for o in decision.obligations)


def test_a_ciio_must_also_store_the_data_in_china(shipped_packs, facts):
    decision = evaluate(facts(**{**CN, "exporter__flags": ["cn_ciio"]}), shipped_packs)

    assert any("within the mainland" in o for o in decision.obligations)


def test_canadian_buyer_under_pipeda_is_covered_by_eu_adequacy(shipped_packs, facts):
    covered = evaluate(facts(buyer__jurisdiction="CA", buyer__certifications=["ca_pipeda"]), shipped_packs)
    not_covered = evaluate(facts(buyer__jurisdiction="CA"), shipped_packs)

    assert "EU-ADQ-P-CA" in [f.rule for f in covered.findings] and covered.outcome == "allow"
    assert not_covered.outcome == "needs_mechanism"
