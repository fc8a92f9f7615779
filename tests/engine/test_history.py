"""Rules with history: a trade is decided by the pack versions in force on its date, and a date no
version of an applicable regime covers is never `allow` (BASE-NO-PACK, fail closed)."""

import dataclasses
from datetime import date

import pytest

from compliance.engine import evaluate, uncovered_regimes

EU_TO_US = {"buyer__jurisdiction": "US"}
US_BROKER = {"data__subject_jurisdictions": ["US"], "data__storage_jurisdiction": "US", "exporter__jurisdiction": "US",
             "exporter__flags": ["data_broker"], "data__classification": "sensitive_personal"}
PUBLIC_TO = {"data__classification": "public", "data__categories": []}


def rules(decision, regime=None):
    return [f.rule for f in decision.findings if regime is None or f.regime == regime]


# --- fail closed ---------------------------------------------------------------------------------

def test_a_screen_without_a_version_in_force_sends_the_trade_to_review(shipped_packs, facts):
    current_only = [p for p in shipped_packs if p.regime != "SANCTIONS" or p.version == "2025.07.01"]

    decision = evaluate(facts(**PUBLIC_TO, buyer__jurisdiction="IR", trade_date="2025-06-01"), current_only)

    assert decision.outcome == "review"
    finding = next(f for f in decision.findings if f.rule == "BASE-NO-PACK")
    assert finding.regime == "SANCTIONS" and finding.rulepack == "sanctions@2025.07.01"
    assert finding.explanation.startswith("no rule pack in force on 2025-06-01 for SANCTIONS")
    assert "2025-07-01" in finding.explanation and "fail closed" in finding.citation
    assert "sanctions@2025.07.01" in decision.rulepacks


def test_a_date_before_every_pack_is_review_never_allow(shipped_packs, facts):
    decision = evaluate(facts(**PUBLIC_TO, trade_date="0001-01-01"), shipped_packs)

    assert decision.outcome == "review"
    assert {(f.regime, f.rule) for f in decision.findings} == {
        ("SANCTIONS", "BASE-NO-PACK"),
        ("BASELINE", "BASE-NO-PACK"),
    }


def test_a_gap_between_two_versions_of_a_regime_fails_closed(shipped_packs, facts):
    # EU with a hole: eu@2021.12.17 ending a year before eu@2023.07.10 takes effect
    holed = [
        dataclasses.replace(p, effective_to=date(2022, 7, 10)) if p.ref == "eu@2021.12.17" else p for p in shipped_packs
    ]

    decision = evaluate(facts(**PUBLIC_TO, buyer__jurisdiction="US", trade_date="2023-01-01"), holed)

    assert decision.outcome == "review"
    assert rules(decision, "EU") == ["BASE-NO-PACK"]
    assert "eu@2023.07.10" in decision.findings[-1].explanation


def test_a_regime_whose_law_has_not_started_is_not_engaged(shipped_packs, facts):
    """Before a regime's first version (its law's start) the regime is silent; the baseline decides."""
    assert [p.regime for p in uncovered_regimes(shipped_packs, date(2018, 5, 24))] == []
    decision = evaluate(facts(**EU_TO_US, trade_date="2018-05-24"), shipped_packs)

    assert rules(decision) == ["SAN-CLEAR", "BASE-REVIEW"] and decision.outcome == "review"


def test_a_regime_the_facts_do_not_engage_is_not_reported(shipped_packs, facts):
    # German data to a German buyer in 2017: no EU version yet; UK, US... have nothing to say
    decision = evaluate(facts(data__classification="public", trade_date="2017-01-02"), shipped_packs)

    assert decision.outcome == "allow" and rules(decision) == ["SAN-CLEAR", "BASE-DOMESTIC"]


# --- sanctions history ---------------------------------------------------------------------------

@pytest.mark.parametrize(("buyer", "trade_date", "outcome", "rule", "pack"), [
    ("IR", "2016-03-16", "deny", "SAN-US-1", "sanctions@2016.03.16"),
    ("KP", "2016-03-16", "deny", "SAN-US-1", "sanctions@2016.03.16"),  # EO 13722: North Korea comprehensive
    ("SD", "2017-10-11", "deny", "SAN-US-1", "sanctions@2016.03.16"),  # Sudan programme still in force
    ("SD", "2017-10-12", "allow", "SAN-CLEAR", "sanctions@2017.10.12"),  # its prohibitions revoked
    ("UA-43", "2019-06-01", "deny", "SAN-US-1", "sanctions@2017.10.12"),  # Crimea
    ("UA-14", "2022-02-20", "allow", "SAN-CLEAR", "sanctions@2017.10.12"),
    ("UA-14", "2022-02-21", "review", "SAN-EU-1", "sanctions@2022.02.21"),  # EO 14065 (DNR)
    ("UA-65", "2022-10-05", "allow", "SAN-CLEAR", "sanctions@2022.02.21"),
    ("UA-65", "2022-10-06", "review", "SAN-EU-1", "sanctions@2022.10.06"),  # Reg. (EU) 2022/1903 (Kherson)
    ("IR", "2025-06-01", "deny", "SAN-US-1", "sanctions@2022.10.06"),
    ("SY", "2025-06-30", "deny", "SAN-US-1", "sanctions@2022.10.06"),
    ("SY", "2025-07-01", "review", "SAN-SYR-1", "sanctions@2025.07.01"),  # EO 14312
    ("RU", "2021-03-01", "review", "SAN-RU-1", "sanctions@2017.10.12"),
])
def test_sanctions_in_force_on_the_trade_date_decide(shipped_packs, facts, buyer, trade_date, outcome, rule, pack):
    decision = evaluate(facts(**PUBLIC_TO, buyer__jurisdiction=buyer, trade_date=trade_date), shipped_packs)

    screen = next(f for f in decision.findings if f.regime == "SANCTIONS")
    assert (screen.rule, screen.outcome, screen.rulepack) == (rule, outcome, pack)
    assert screen.citation


# --- EU: 2019 (SCCs alone), 2021 (Schrems II: SCCs and a TIA), then the DPF -----------------------

@pytest.mark.parametrize(("trade_date", "mechanisms", "certifications", "outcome", "requirements", "pack"), [
    ("2019-06-01", ["eu_scc"], [], "allow", [], "eu@2019.01.23"),
    ("2019-06-01", [], ["us_dpf"], "needs_mechanism", [["eu_scc"]], "eu@2019.01.23"),
    ("2020-07-15", ["eu_scc"], [], "allow", [], "eu@2019.01.23"),
    ("2020-07-16", ["eu_scc"], [], "needs_mechanism", [["eu_tia"]], "eu@2020.07.16"),  # Schrems II
    ("2021-03-01", ["eu_scc", "eu_tia"], [], "allow", [], "eu@2020.07.16"),
    ("2021-03-01", [], ["us_dpf"], "needs_mechanism", [["eu_scc"], ["eu_tia"]], "eu@2020.07.16"),  # no DPF yet
    ("2023-07-09", [], ["us_dpf"], "needs_mechanism", [["eu_scc"], ["eu_tia"]], "eu@2021.12.17"),
    ("2023-07-10", [], ["us_dpf"], "allow_flagged", [], "eu@2023.07.10"),
])
def test_eu_transfers_to_the_us_follow_the_law_of_the_day(
    shipped_packs, facts, trade_date, mechanisms, certifications, outcome, requirements, pack
):
    decision = evaluate(facts(**EU_TO_US, buyer__certifications=certifications, trade_date=trade_date,
                              mechanisms=[{"code": m} for m in mechanisms]), shipped_packs)

    assert (decision.outcome, [list(g) for g in decision.requirements]) == (outcome, requirements)
    assert pack in decision.rulepacks


@pytest.mark.parametrize(("buyer", "trade_date", "outcome", "rule"), [
    ("JP", "2019-01-22", "needs_mechanism", "EU-SCC-1"),
    ("JP", "2019-01-23", "allow", "EU-ADQ-P"),               # Decision (EU) 2019/419
    ("KR", "2021-12-16", "needs_mechanism", "EU-SCC-1"),
    ("KR", "2021-12-17", "allow", "EU-ADQ-P"),               # Decision (EU) 2022/254
    ("GB", "2019-06-01", "allow", "EU-UK-BRIDGE"),           # still a member state
    ("GB", "2021-03-01", "allow", "EU-UK-BRIDGE"),           # the bridge under the TCA
    ("GB", "2022-01-01", "allow", "EU-ADQ-1"),               # Decision (EU) 2021/1772
    ("CH", "2018-05-25", "allow", "EU-ADQ-1"),
    ("CA", "2018-06-01", "allow", "EU-ADQ-P-CA"),
])
def test_eu_adequacy_as_then_in_force(shipped_packs, facts, buyer, trade_date, outcome, rule):
    certifications = ["ca_pipeda"] if buyer == "CA" else []
    decision = evaluate(
        facts(buyer__jurisdiction=buyer, buyer__certifications=certifications, trade_date=trade_date), shipped_packs
    )

    assert decision.outcome == outcome and rule in rules(decision, "EU")


def test_eu_onward_transfer_before_and_after_schrems_ii(shipped_packs, facts):
    stored_abroad = {"data__storage_jurisdiction": "IN", "exporter__jurisdiction": "IN", "buyer__jurisdiction": "BR"}
    before = evaluate(facts(**stored_abroad, trade_date="2019-06-01"), shipped_packs)
    after = evaluate(facts(**stored_abroad, trade_date="2021-03-01"), shipped_packs)

    assert "EU-ONWARD-1" in rules(before) and [list(g) for g in before.requirements] == [["eu_scc"]]
    assert [list(g) for g in after.requirements] == [["eu_scc"], ["eu_tia"]]


# --- US: PADFA alone from 23 Jun 2024, the DOJ rule from 8 Apr 2025 --------------------------------

def test_a_july_2024_trade_is_decided_by_padfa_alone(shipped_packs, facts):
    covered = evaluate(facts(**US_BROKER, data__categories=["health"], data__subjects=5, buyer__jurisdiction="SG",
                             buyer__owner_jurisdictions=["CN"], trade_date="2024-07-15"), shipped_packs)
    bulk = evaluate(facts(**US_BROKER, data__categories=["health"], data__subjects=20_000, buyer__jurisdiction="DE",
                          trade_date="2024-07-15"), shipped_packs)

    assert covered.outcome == "deny" and rules(covered, "US") == ["US-PADFA-1"]
    assert "us@2024.06.23" in covered.rulepacks and "us@2025.04.08" not in covered.rulepacks
    # bulk health data to a non-covered foreign buyer: no DOJ onward-transfer clause needed yet
    assert rules(bulk, "US") == ["US-PADFA-CLEAR"] and bulk.requirements == ()


def test_the_doj_rule_applies_from_8_april_2025(shipped_packs, facts):
    bulk = {**US_BROKER, "data__categories": ["health"], "data__subjects": 20_000, "buyer__jurisdiction": "DE"}
    before = evaluate(facts(**bulk, trade_date="2025-04-07"), shipped_packs)
    on = evaluate(facts(**bulk, trade_date="2025-04-08"), shipped_packs)

    assert rules(before, "US") == ["US-PADFA-CLEAR"]
    assert rules(on, "US") == ["US-DSP-ONWARD"] and [list(g) for g in on.requirements] == [["us_dsp_onward_clause"]]


def test_us_public_records_are_excluded_from_the_doj_rule(shipped_packs, facts):
    decision = evaluate(
        facts(**{**US_BROKER, "data__classification": "public"}, buyer__jurisdiction="CN"), shipped_packs
    )

    assert rules(decision, "US") == ["US-DSP-EXCL"]


def test_before_padfa_us_data_has_no_us_regime(shipped_packs, facts):
    decision = evaluate(facts(**US_BROKER, data__categories=["health"], data__subjects=5, buyer__jurisdiction="SG",
                              buyer__owner_jurisdictions=["CN"], trade_date="2024-06-22"), shipped_packs)

    assert rules(decision, "US") == [] and decision.outcome == "review"  # the baseline: personal data nobody decides
