"""Cumulative thresholds at their edges (China's CAC 2024 bands, the US DOJ rule's bulk thresholds), windows,
validity and dates."""

import pytest

from compliance.engine import evaluate

CN = {
    "data__subject_jurisdictions": ["CN"],
    "data__storage_jurisdiction": "CN",
    "exporter__jurisdiction": "CN",
    "buyer__jurisdiction": "SG",
}
US = {"data__subject_jurisdictions": ["US"], "data__storage_jurisdiction": "US", "exporter__jurisdiction": "US",
      "exporter__flags": ["data_broker"], "data__classification": "sensitive_personal"}


def prior(
    date: str,
    subjects: int,
    classification: str = "personal",
    categories: tuple[str, ...] = ("contact",),
    same_buyer: bool = False,
) -> dict:
    return {
        "date": date,
        "classification": classification,
        "categories": list(categories),
        "subjects": subjects,
        "same_buyer": same_buyer,
    }


def cn_rule(decision) -> str:
    return next(f.rule for f in decision.findings if f.regime == "CN" and f.rule != "CN-DUTY-1")


# China, non-sensitive: 不满10万 exempt; 10万以上 contract or certification; 100万以上 assessment (inclusive bands).
@pytest.mark.parametrize(("before", "this", "rule", "outcome"), [
    (99_998, 1, "CN-PI-0", "allow"),               # 99,999
    (99_999, 1, "CN-PI-SC", "needs_mechanism"),    # 100,000
    (100_000, 1, "CN-PI-SC", "needs_mechanism"),   # 100,001
    (999_998, 1, "CN-PI-SC", "needs_mechanism"),   # 999,999
    (999_999, 1, "CN-PI-SA", "needs_approval"),    # 1,000,000
    (1_000_000, 1, "CN-PI-SA", "needs_approval"),  # 1,000,001
])
def test_china_non_sensitive_bands(shipped_packs, facts, before, this, rule, outcome):
    decision = evaluate(facts(**CN, data__subjects=this, prior_exports=[prior("2026-02-01", before)]), shipped_packs)

    assert (cn_rule(decision), decision.outcome) == (rule, outcome)


def test_china_finding_shows_the_arithmetic(shipped_packs, facts):
    decision = evaluate(facts(**CN, data__subjects=1, prior_exports=[prior("2026-02-01", 99_999)]), shipped_packs)

    finding = next(f for f in decision.findings if f.rule == "CN-PI-SC")
    assert "99,999 before + 1 in this trade = 100,000 ≥ 100,000" in finding.explanation
    assert finding.rulepack == "cn@2024.03.22" and "Art. 8" in finding.citation


# China, sensitive: any volume below 10,000 needs a contract or certification; 1万以上 an assessment.
@pytest.mark.parametrize(("before", "rule", "outcome"), [
    (0, "CN-SPI-SC", "needs_mechanism"),       # 1 person: no de-minimis for sensitive data
    (9_998, "CN-SPI-SC", "needs_mechanism"),   # 9,999
    (9_999, "CN-SPI-SA", "needs_approval"),    # 10,000
    (10_000, "CN-SPI-SA", "needs_approval"),   # 10,001
])
def test_china_sensitive_bands(shipped_packs, facts, before, rule, outcome):
    decision = evaluate(
        facts(
            **CN,
            data__classification="sensitive_personal",
            data__categories=["health"],
            data__subjects=1,
            prior_exports=[prior("2026-02-01", before, "sensitive_personal", ("health",))],
        ),
        shipped_packs,
    )

    assert (cn_rule(decision), decision.outcome) == (rule, outcome)


def test_china_sensitive_records_also_count_in_the_non_sensitive_tally(shipped_packs, facts):
    earlier = [prior("2026-02-01", 99_999, "sensitive_personal", ("health",))]

    decision = evaluate(facts(**CN, data__subjects=1, prior_exports=earlier), shipped_packs)

    assert cn_rule(decision) == "CN-PI-SC"


@pytest.mark.parametrize(("prior_date", "rule"), [
    ("2025-12-31", "CN-PI-0"),   # last year: the tally reset on 1 January
    ("2026-01-01", "CN-PI-SC"),  # this year
    ("2026-11-27", "CN-PI-0"),   # after the trade date: not "before"
])
def test_china_tally_is_per_calendar_year(shipped_packs, facts, prior_date, rule):
    decision = evaluate(facts(**CN, data__subjects=1, prior_exports=[prior(prior_date, 99_999)]), shipped_packs)

    assert cn_rule(decision) == rule


# US: bulk is "more than N" per category, same buyer, the 12 months up to the trade.
@pytest.mark.parametrize(("category", "threshold"), [
    ("genomic", 100), ("omic", 1_000), ("biometric", 1_000), ("precise_geolocation", 1_000),
    ("health", 10_000), ("financial", 10_000), ("identifiers", 100_000),
])
@pytest.mark.parametrize(("delta", "bulk"), [(-1, False), (0, False), (1, True)])
def test_us_bulk_thresholds(shipped_packs, facts, category, threshold, delta, bulk):
    decision = evaluate(
        facts(**US, data__categories=[category], data__subjects=threshold + delta, buyer__jurisdiction="DE"),
        shipped_packs,
    )

    us = [f for f in decision.findings if f.regime == "US"]
    assert [f.rule for f in us] == (["US-DSP-ONWARD"] if bulk else ["US-DSP-BELOW"])
    if bulk:
        assert f"{threshold + delta:,} > {threshold:,}" in us[0].explanation


@pytest.mark.parametrize(("prior_date", "same_buyer", "bulk"), [
    ("2025-11-27", True, True),    # 364 days before: inside the 12 months
    ("2025-11-26", True, False),   # exactly a year before: outside
    ("2026-06-01", False, False),  # another buyer: not aggregated
])
def test_us_twelve_month_same_buyer_aggregation(shipped_packs, facts, prior_date, same_buyer, bulk):
    earlier = [prior(prior_date, 10_000, "sensitive_personal", ("health",), same_buyer=same_buyer)]

    decision = evaluate(
        facts(**US, data__categories=["health"], data__subjects=1, buyer__jurisdiction="DE", prior_exports=earlier),
        shipped_packs,
    )

    assert ("US-DSP-ONWARD" in [f.rule for f in decision.findings]) == bulk


def test_us_covered_person_below_bulk_is_still_padfa_denied_but_not_dsp(shipped_packs, facts):
    decision = evaluate(
        facts(
            **US,
            data__categories=["health"],
            data__subjects=5,
            buyer__jurisdiction="SG",
            buyer__owner_jurisdictions=["CN"],
        ),
        shipped_packs,
    )

    assert decision.outcome == "deny"
    assert [f.rule for f in decision.findings if f.regime == "US"] == ["US-PADFA-1", "US-DSP-BELOW"]


def test_us_deidentified_data_still_counts_for_the_doj_rule_but_not_padfa(shipped_packs, facts):
    decision = evaluate(facts(**US, data__categories=["health"], data__subjects=20_000, data__de_identified=True,
                              buyer__jurisdiction="CN"), shipped_packs)

    assert [f.rule for f in decision.findings if f.regime == "US"] == ["US-DSP-BROKER"]


def test_us_government_related_data_is_regulated_at_any_volume(shipped_packs, facts):
    decision = evaluate(
        facts(
            **US,
            data__categories=["precise_geolocation"],
            data__flags=["gov_geofence"],
            data__subjects=3,
            buyer__jurisdiction="VE",
        ),
        shipped_packs,
    )

    assert "US-DSP-BROKER" in [f.rule for f in decision.findings] and decision.outcome == "deny"


def test_us_omic_data_to_a_covered_person(shipped_packs, facts):
    decision = evaluate(
        facts(**US, data__categories=["genomic"], data__subjects=101, buyer__jurisdiction="RU"), shipped_packs
    )

    assert "US-DSP-OMIC" in [f.rule for f in decision.findings] and decision.outcome == "deny"


# Validity: a CAC security assessment counts for three years from approval (Provisions Art. 9).
@pytest.mark.parametrize(("approved_on", "counts"), [
    ("2023-11-27", True),    # three years end tomorrow
    ("2023-11-26", False),   # three years ended yesterday
    ("2026-11-27", False),   # approved after the trade date
])
def test_security_assessment_valid_three_years_from_approval(shipped_packs, facts, approved_on, counts):
    decision = evaluate(
        facts(
            **CN,
            data__classification="important",
            data__subjects=0,
            data__categories=[],
            mechanisms=[{"code": "cn_security_assessment", "approved_on": approved_on}],
        ),
        shipped_packs,
    )

    assert decision.outcome == ("allow" if counts else "needs_approval")
    if not counts:
        assert (
            "cn_security_assessment on file" in next(f for f in decision.findings if f.rule == "CN-IMP-1").explanation
        )


def test_undated_security_assessment_does_not_count(shipped_packs, facts):
    decision = evaluate(facts(**CN, data__classification="important", data__subjects=0, data__categories=[],
                              mechanisms=[{"code": "cn_security_assessment"}]), shipped_packs)

    assert decision.outcome == "needs_approval"
    assert "no approval date" in decision.findings[-1].explanation


def test_china_pack_applies_only_from_its_effective_date(shipped_packs, facts):
    before = evaluate(facts(**CN, trade_date="2024-03-21"), shipped_packs)
    on = evaluate(facts(**CN, trade_date="2024-03-22"), shipped_packs)

    assert "BASE-REVIEW" in [f.rule for f in before.findings]
    assert "cn@2024.03.22" in on.rulepacks and on.outcome == "allow"


def test_us_dsp_applies_only_from_8_april_2025(shipped_packs, facts):
    early = evaluate(
        facts(
            **US, data__categories=["health"], data__subjects=20_000, buyer__jurisdiction="DE", trade_date="2025-04-07"
        ),
        shipped_packs,
    )

    assert "us@2025.04.08" not in early.rulepacks
    assert [f.rule for f in early.findings if f.regime == "US"] == ["US-PADFA-CLEAR"]  # PADFA alone (us@2024.06.23)


@pytest.mark.parametrize(
    ("case", "overrides", "rules", "outcome"),
    [
        (
            "EU data stored in China, sold to a US buyer: EU onward transfer + China exempt volume",
            {"data__storage_jurisdiction": "CN", "exporter__jurisdiction": "CN", "buyer__jurisdiction": "US"},
            {"EU-ONWARD-1", "CN-PI-0"},
            "needs_mechanism",
        ),
        (
            "US health data stored in Germany, sold to China: US broker ban + EU transfer rules",
            {
                "data__subject_jurisdictions": ["US", "DE"],
                "data__classification": "sensitive_personal",
                "data__categories": ["health"],
                "data__subjects": 20_000,
                "buyer__jurisdiction": "CN",
            },
            {"US-DSP-BROKER", "EU-ART9-1", "EU-SCC-1"},
            "deny",
        ),
        (
            "Chinese data to Hong Kong is an export; Hong Kong buyer is a covered person for US data too",
            {
                "data__subject_jurisdictions": ["CN", "US"],
                "data__storage_jurisdiction": "CN",
                "exporter__jurisdiction": "CN",
                "buyer__jurisdiction": "HK",
                "data__subjects": 150_000,
                "data__categories": ["identifiers"],
            },
            {"CN-PI-SC", "US-DSP-BROKER"},
            "deny",
        ),
    ],
)
def test_multi_regime(shipped_packs, facts, case, overrides, rules, outcome):
    decision = evaluate(facts(**overrides), shipped_packs)

    assert rules <= {f.rule for f in decision.findings}, case
    assert decision.outcome == outcome
