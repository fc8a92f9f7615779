"""China's rules beyond the volume ladder : exemptions, CIIOs, the GBA, FTZs,
important, core and genetic data, foreign authorities."""

import pytest

from compliance.engine import evaluate
from tests.engine.cases import decide, load_cases

CN = {"data__subject_jurisdictions": ["CN"], "data__storage_jurisdiction": "CN", "exporter__jurisdiction": "CN",
      "buyer__jurisdiction": "SG", "data__subjects": 500_000}


CN_CASES = [c for c in load_cases() if c.file == "cn"]


@pytest.mark.parametrize("case", CN_CASES, ids=[c.name for c in CN_CASES])
def test_one_china_rule_decides(shipped_packs, case):
    """Of China's rules, only the one a case names reports a finding (besides the PIPL duties, which are
    obligations): an exemption or a band ends China's evaluation."""
    decision = decide(case, shipped_packs)

    assert [f.rule for f in decision.findings if f.regime == "CN" and f.rule != "CN-DUTY-1"] == case.rules


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
