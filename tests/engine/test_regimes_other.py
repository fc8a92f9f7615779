"""The UK and the other regimes: Russia, India, Japan, Korea, Brazil,
Singapore, Vietnam and Saudi Arabia. Each regime governs personal data leaving its country."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance.engine import compile_pack, evaluate
from tests.engine.cases import Case, decide, load_cases

PACK_DIR = Path(__file__).resolve().parents[2] / "compliance" / "rulepacks"
REGIMES = ("uk", "ru", "in", "jp", "kr", "br", "sg", "vn", "sa")
IN_FORCE_IN = "2027-06-01"  # India's s. 16 and Rules 13, 15 apply from 14 May 2027


def origin(country: str, **more: Any) -> dict[str, Any]:
    """Data about people in `country`, stored there by an exporter established there."""
    return {
        "data__subject_jurisdictions": [country],
        "data__storage_jurisdiction": country,
        "exporter__jurisdiction": country,
        **more,
    }


GB, RU, IN, JP, KR, BR, SG, VN, SA = (origin(c) for c in ("GB", "RU", "IN", "JP", "KR", "BR", "SG", "VN", "SA"))
UK_SAFEGUARDS = [["uk_idta"], ["uk_tra"]]


# Mechanisms on file (valid on the trade date) turn needs_* into allow, and the finding says so.
SATISFIED = [
    ("UK-SCC-1", {**GB, "buyer__jurisdiction": "IN"}, ["uk_idta", "uk_tra"]),
    ("UK-US-0", {**GB, "buyer__jurisdiction": "US"}, ["uk_idta", "uk_tra"]),
    ("UK-DIV-1", {**GB, "buyer__jurisdiction": "BR"}, ["uk_idta", "uk_tra"]),
    ("RU-XB-ADQ", {**RU, "buyer__jurisdiction": "DE"}, ["ru_rkn_notification"]),
    ("RU-XB-NONADQ", {**RU, "buyer__jurisdiction": "US"}, ["ru_rkn_notification"]),
    ("JP-28-3", {**JP, "buyer__jurisdiction": "US"}, ["jp_consent"]),
    ("KR-28-8", {**KR, "buyer__jurisdiction": "US"}, ["kr_consent"]),
    ("BR-33", {**BR, "buyer__jurisdiction": "US"}, ["br_anpd_scc"]),
    ("SG-26", {**SG, "buyer__jurisdiction": "US"}, ["sg_enforceable_obligations"]),
    ("VN-XB-1", {**VN, "buyer__jurisdiction": "US", "purpose": "hr_management"}, ["vn_tia_dossier"]),
    ("SA-29-2", {**SA, "buyer__jurisdiction": "US"}, ["sa_sdaia_scc", "sa_risk_assessment"]),
]


@pytest.mark.parametrize(("rule", "overrides", "codes"), SATISFIED, ids=[s[0] for s in SATISFIED])
def test_mechanisms_on_file_satisfy_the_requirement(shipped_packs, facts, rule, overrides, codes):
    decision = evaluate(facts(**overrides, mechanisms=[{"code": c} for c in codes]), shipped_packs)

    finding = next(f for f in decision.findings if f.rule == rule)
    assert (decision.outcome, decision.requirements) == ("allow", ())
    assert finding.outcome == "allow"
    assert f"satisfied by {', '.join(sorted(codes))} on file and valid on 2026-11-26" in finding.explanation


def test_a_notification_filed_after_the_trade_date_does_not_count(shipped_packs, facts):
    decision = evaluate(
        facts(
            **RU, buyer__jurisdiction="US", mechanisms=[{"code": "ru_rkn_notification", "approved_on": "2026-12-10"}]
        ),
        shipped_packs,
    )

    assert (decision.outcome, [list(g) for g in decision.requirements]) == ("needs_filing", [["ru_rkn_notification"]])


def test_a_deny_is_not_cured_by_a_mechanism(shipped_packs, facts):
    decision = evaluate(facts(**VN, buyer__jurisdiction="US", mechanisms=[{"code": "vn_tia_dossier"}]), shipped_packs)

    assert (decision.outcome, decision.requirements) == ("deny", ())


# The Art. 49 policy (Elementa's reading): resale on an exception is refused; other purposes go to a person.
@pytest.mark.parametrize(("purpose", "outcome", "rule"), [
    ("resale", "deny", "UK-49-1-RESALE"),
    ("contract_with_subject", "review", "UK-49-1"),
    ("emergency", "review", "UK-49-1"),
    ("hr_management", "review", "UK-49-1"),
])
def test_uk_exception_for_resale_is_denied_and_otherwise_reviewed(shipped_packs, facts, purpose, outcome, rule):
    decision = evaluate(
        facts(**GB, buyer__jurisdiction="US", purpose=purpose, mechanisms=[{"code": "eu_art49_derogation"}]),
        shipped_packs,
    )
    uk = [f.rule for f in decision.findings if f.regime == "UK"]

    assert (decision.outcome, decision.requirements, uk) == (outcome, (), [rule])


# Each regime governs data leaving its country: a domestic transfer does not engage it.
DOMESTIC = [("UK", "GB", None), ("RU", "RU", None), ("IN", "IN", IN_FORCE_IN), ("JP", "JP", None), ("KR", "KR", None),
            ("BR", "BR", None), ("SG", "SG", None), ("VN", "VN", None), ("SA", "SA", None)]


@pytest.mark.parametrize(("regime", "country", "trade_date"), DOMESTIC, ids=[d[0] for d in DOMESTIC])
def test_a_domestic_transfer_does_not_engage_the_regime(shipped_packs, facts, regime, country, trade_date):
    extra = {"trade_date": trade_date} if trade_date else {}
    decision = evaluate(
        facts(**origin(country), buyer__jurisdiction=country, purpose="contract_with_subject", **extra), shipped_packs
    )

    assert not any(f.regime == regime for f in decision.findings)
    # no border is crossed: the baseline allows it (a buyer in Russia still meets the sanctions screen)
    assert decision.outcome == ("review" if country == "RU" else "allow")
    assert "BASE-DOMESTIC" in [f.rule for f in decision.findings]


def test_a_buyer_in_a_uk_subdivision_is_domestic(shipped_packs, facts):
    decision = evaluate(facts(**GB, buyer__jurisdiction="GB-SCT", purpose="contract_with_subject"), shipped_packs)

    assert not any(f.regime == "UK" for f in decision.findings)


# Personal-data regimes: public, non-personal and anonymous data do not engage them.
@pytest.mark.parametrize(("regime", "country", "trade_date"), DOMESTIC, ids=[d[0] for d in DOMESTIC])
@pytest.mark.parametrize("classification", ["public", "non_personal", "anonymous"])
def test_non_personal_data_does_not_engage_the_regime(
    shipped_packs, facts, regime, country, trade_date, classification
):
    extra = {"trade_date": trade_date} if trade_date else {}
    decision = evaluate(
        facts(
            **origin(country), buyer__jurisdiction="CA", data__classification=classification, data__subjects=0, **extra
        ),
        shipped_packs,
    )

    assert not any(f.regime == regime for f in decision.findings)
    assert (decision.outcome, [f.rule for f in decision.findings]) == ("allow", ["SAN-CLEAR", "BASE-NP-1"])


def test_sensitive_personal_data_engages_the_regime(shipped_packs, facts):
    decision = evaluate(
        facts(**KR, buyer__jurisdiction="US", data__classification="sensitive_personal", data__categories=["health"]),
        shipped_packs,
    )

    assert "KR-28-8" in [f.rule for f in decision.findings]


# Several regimes at once: the most restrictive finding decides and the requirements are the union.
def test_uk_and_eu_data_to_a_us_buyer_needs_both_safeguards(shipped_packs, facts):
    decision = evaluate(
        facts(
            data__subject_jurisdictions=["GB", "DE"],
            data__storage_jurisdiction="GB",
            exporter__jurisdiction="GB",
            buyer__jurisdiction="US",
        ),
        shipped_packs,
    )

    assert decision.outcome == "needs_mechanism"
    assert [list(g) for g in decision.requirements] == [["eu_scc"], ["eu_tia"], ["uk_idta"], ["uk_tra"]]
    assert {"EU", "UK"} <= {f.regime for f in decision.findings}
    assert "UK-US-0" in [f.rule for f in decision.findings]


def test_uk_and_eu_data_with_only_the_uk_safeguards_still_needs_the_eu_ones(shipped_packs, facts):
    decision = evaluate(
        facts(
            data__subject_jurisdictions=["GB", "DE"],
            data__storage_jurisdiction="GB",
            exporter__jurisdiction="GB",
            buyer__jurisdiction="US",
            mechanisms=[{"code": "uk_idta"}, {"code": "uk_tra"}],
        ),
        shipped_packs,
    )

    assert (decision.outcome, [list(g) for g in decision.requirements]) == ("needs_mechanism", [["eu_scc"], ["eu_tia"]])


def test_uk_and_eu_data_to_a_buyer_in_both_frameworks_is_flagged(shipped_packs, facts):
    decision = evaluate(
        facts(
            data__subject_jurisdictions=["GB", "DE"],
            data__storage_jurisdiction="DE",
            exporter__jurisdiction="DE",
            buyer__jurisdiction="US",
            buyer__certifications=["us_dpf", "us_dpf_uk_extension"],
        ),
        shipped_packs,
    )

    assert (decision.outcome, decision.requirements) == ("allow_flagged", ())
    assert {"EU-DPF-1", "UK-US-1"} <= {f.rule for f in decision.findings}


def test_uk_and_russian_data_stored_in_the_uk_goes_to_review(shipped_packs, facts):
    decision = evaluate(
        facts(
            data__subject_jurisdictions=["GB", "RU"],
            data__storage_jurisdiction="GB",
            exporter__jurisdiction="GB",
            buyer__jurisdiction="DE",
        ),
        shipped_packs,
    )

    assert decision.outcome == "review"
    assert {"UK-ADQ-1", "RU-LOC-1"} <= {f.rule for f in decision.findings}


def test_japanese_and_korean_data_to_the_us_needs_both_consents(shipped_packs, facts):
    decision = evaluate(
        facts(
            data__subject_jurisdictions=["JP", "KR"],
            data__storage_jurisdiction="JP",
            exporter__jurisdiction="JP",
            buyer__jurisdiction="US",
        ),
        shipped_packs,
    )

    assert decision.outcome == "needs_mechanism"
    assert [list(g) for g in decision.requirements] == [["jp_consent", "jp_equivalent_measures"], ["kr_consent"]]


def test_vietnamese_sale_is_denied_whatever_other_regimes_allow(shipped_packs, facts):
    decision = evaluate(
        facts(
            data__subject_jurisdictions=["VN", "DE"],
            data__storage_jurisdiction="DE",
            exporter__jurisdiction="DE",
            buyer__jurisdiction="FR",
        ),
        shipped_packs,
    )

    assert (decision.outcome, decision.requirements) == ("deny", ())
    assert {"EU-INTRA-1", "VN-SALE-1"} <= {f.rule for f in decision.findings}


def test_eu_data_to_a_vietnamese_buyer_is_denied(shipped_packs, facts):
    decision = evaluate(
        facts(buyer__jurisdiction="VN", mechanisms=[{"code": "eu_scc"}, {"code": "eu_tia"}]), shipped_packs
    )

    assert decision.outcome == "deny"
    assert "VN-SALE-1-BUYER" in [f.rule for f in decision.findings]


def test_eu_data_to_a_vietnamese_buyer_for_another_purpose_is_not_vietnams_business(shipped_packs, facts):
    decision = evaluate(facts(buyer__jurisdiction="VN", purpose="intra_group"), shipped_packs)

    assert not any(f.regime == "VN" for f in decision.findings)


# Versions: the one in force on the trade date decides; before the first, no pack of the regime applies.
@pytest.mark.parametrize(
    ("overrides", "trade_date", "pack", "outcome", "requirements"),
    [
        ({**GB, "buyer__jurisdiction": "IN"}, "2026-02-04", "uk@2023.09.21", "needs_mechanism", UK_SAFEGUARDS),
        ({**GB, "buyer__jurisdiction": "IN"}, "2026-02-05", "uk@2025.06.19", "needs_mechanism", UK_SAFEGUARDS),
        (
            {**GB, "buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf", "us_dpf_uk_extension"]},
            "2024-05-01",
            "uk@2023.09.21",
            "allow_flagged",
            [],
        ),
        ({**KR, "buyer__jurisdiction": "DE"}, "2025-09-15", "kr@2023.03.14", "needs_mechanism", [["kr_consent"]]),
        ({**KR, "buyer__jurisdiction": "DE"}, "2025-09-16", "kr@2025.09.16", "allow", []),
        ({**BR, "buyer__jurisdiction": "FR"}, "2026-01-25", "br@2024.08.23", "needs_mechanism", [["br_anpd_scc"]]),
        ({**BR, "buyer__jurisdiction": "FR"}, "2026-01-26", "br@2026.01.26", "allow", []),
        ({**IN, "buyer__jurisdiction": "US"}, "2027-05-14", "in@2025.11.13", "allow", []),
        ({**VN, "buyer__jurisdiction": "US"}, "2026-01-01", "vn@2025.06.26", "deny", []),
    ],
)
def test_the_version_in_force_on_the_trade_date_decides(
    shipped_packs, facts, overrides, trade_date, pack, outcome, requirements
):
    decision = evaluate(facts(**overrides, trade_date=trade_date), shipped_packs)

    assert pack in decision.rulepacks
    assert (decision.outcome, [list(g) for g in decision.requirements]) == (outcome, requirements)


@pytest.mark.parametrize(("overrides", "trade_date", "regime"), [
    ({**GB, "buyer__jurisdiction": "IN"}, "2023-10-11", "UK"),   # before the UK–US data bridge version
    ({**RU, "buyer__jurisdiction": "US"}, "2025-06-30", "RU"),   # before Law 23-FZ applied
    ({**IN, "buyer__jurisdiction": "US"}, "2026-11-26", "IN"),   # s. 16 not yet in force
    ({**VN, "buyer__jurisdiction": "US"}, "2025-12-31", "VN"),   # before the PDP Law applied
    ({**SA, "buyer__jurisdiction": "US"}, "2024-09-13", "SA"),   # PDPL grace period
])
def test_before_a_regime_applies_its_personal_data_goes_to_review(shipped_packs, facts, overrides, trade_date, regime):
    decision = evaluate(facts(**overrides, trade_date=trade_date), shipped_packs)

    assert not any(f.regime == regime for f in decision.findings)
    assert (decision.outcome, decision.findings[-1].rule) == ("review", "BASE-REVIEW")


# Two worked cases of compliance/rulepacks/cases/: each is decided by one rule of its own regime's pack
# (the sanctions screen aside), in the version in force on the trade date.
def _case(file: str, name: str) -> Case:
    return next(c for c in load_cases() if c.file == file and c.name == name)


UK_DPF_EXTENSION = _case("uk", "UK data to a US buyer in the DPF with the UK Extension")
RU_NO_NOTIFICATION = _case("ru", "Russian data stored in Russia to a German buyer, no notification filed")


@pytest.mark.parametrize(("case", "pack"), [(UK_DPF_EXTENSION, "uk@2025.06.19"), (RU_NO_NOTIFICATION, "ru@2025.02.28")],
                         ids=["uk-dpf-extension", "ru-no-notification"])
def test_worked_case_is_decided_by_its_regime_alone(shipped_packs, case, pack):
    decision = decide(case, shipped_packs)

    assert [(f.rule, f.rulepack) for f in decision.findings if f.regime not in ("SANCTIONS",)] == [
        (case.rules[0], pack)
    ]


def test_russian_localisation_is_met_and_the_notification_comes_with_its_duties(shipped_packs):
    decision = decide(RU_NO_NOTIFICATION, shipped_packs)

    assert "RU-LOC-1" not in [f.rule for f in decision.findings]
    assert any("Art. 12(4)" in o for o in decision.obligations)


# Explanations: the facts that decided, and the reading (INTERP) or unverified fact (VERIFY) behind it.
@pytest.mark.parametrize(
    ("overrides", "rule", "phrases"),
    [
        ({**GB, "buyer__jurisdiction": "IN"}, "UK-SCC-1", ["to IN", "not materially lower", "VERIFY"]),
        ({**GB, "buyer__jurisdiction": "BR"}, "UK-DIV-1", ["BR is adequate for the EU", "VERIFY"]),
        (
            {**GB, "buyer__jurisdiction": "IN", "mechanisms": [{"code": "eu_art49_derogation"}]},
            "UK-49-1-RESALE",
            ["Elementa's reading", "INTERP"],
        ),
        ({**KR, "buyer__jurisdiction": "DE"}, "KR-28-8-EEA", ["DE is in the EU/EEA", "INTERP"]),
        ({**RU, "buyer__jurisdiction": "DE"}, "RU-XB-ADQ", ["DE counts as an adequate state", "VERIFY"]),
        ({**RU, "buyer__jurisdiction": "US"}, "RU-XB-NONADQ", ["10 working days", "approved_on"]),
        (
            {
                **origin("RU"),
                "data__storage_jurisdiction": "AE",
                "exporter__jurisdiction": "AE",
                "buyer__jurisdiction": "US",
            },
            "RU-LOC-1",
            ["held in AE", "INTERP"],
        ),
        (
            {**IN, "buyer__jurisdiction": "US", "data__categories": ["financial"], "trade_date": IN_FORCE_IN},
            "IN-16-3",
            ["INTERP", "financial"],
        ),
        ({**IN, "buyer__jurisdiction": "US", "trade_date": IN_FORCE_IN}, "IN-16-1", ["VERIFY"]),
        ({**JP, "buyer__jurisdiction": "GB"}, "JP-28-1", ["GB is designated", "VERIFY"]),
        ({**BR, "buyer__jurisdiction": "FR"}, "BR-33-ADQ", ["FR", "VERIFY"]),
        (
            {**SG, "buyer__jurisdiction": "US", "purpose": "contract_with_subject"},
            "SG-26-DEEMED",
            ["contract_with_subject", "INTERP"],
        ),
        ({**origin("AU"), "buyer__jurisdiction": "VN"}, "VN-SALE-1-BUYER", ["VN", "INTERP"]),
        ({**SA, "buyer__jurisdiction": "US"}, "SA-29-2", ["US is not on SDAIA's adequacy list", "VERIFY"]),
    ],
)
def test_explanation_names_the_facts_and_the_reading(shipped_packs, facts, overrides, rule, phrases):
    decision = evaluate(facts(**overrides), shipped_packs)
    finding = next(f for f in decision.findings if f.rule == rule)

    for phrase in phrases:
        assert phrase in finding.explanation


@pytest.mark.parametrize(("overrides", "phrase"), [
    ({**JP, "buyer__jurisdiction": "DE"}, "APPI Arts. 27, 29"),
    ({**JP, "buyer__jurisdiction": "US", "buyer__certifications": ["apec_cbpr"]}, "APPI Art. 28(3)"),
    ({**IN, "buyer__jurisdiction": "US", "trade_date": IN_FORCE_IN}, "DPDP Act ss. 5–6"),
    ({**RU, "buyer__jurisdiction": "US"}, "152-FZ Art. 6"),
    ({**SA, "buyer__jurisdiction": "US"}, "PDPL Art. 29"),
])
def test_duties_that_never_block_are_obligations(shipped_packs, facts, overrides, phrase):
    decision = evaluate(facts(**overrides), shipped_packs)

    assert any(phrase in o for o in decision.obligations)
    assert all(phrase not in code for group in decision.requirements for code in group)


# The packs themselves: named <regime>-<version>.yaml, every country list a parameter.
def _own_packs() -> list[Path]:
    return sorted(p for p in PACK_DIR.glob("*.yaml") if p.name.split("-", 1)[0] in REGIMES)


COUNTRY_FIELDS = {
    "data.subject_jurisdictions",
    "data.subject_countries",
    "data.storage_jurisdiction",
    "data.storage_country",
    "exporter.jurisdiction",
    "exporter.country",
    "buyer.jurisdiction",
    "buyer.country",
    "buyer.headquarters",
    "buyer.owner_jurisdictions",
    "buyer.linked_jurisdictions",
}


def _literal_countries(condition: Any) -> list[Any]:
    if isinstance(condition, list):
        return [x for c in condition for x in _literal_countries(c)]
    if not isinstance(condition, dict):
        return []
    (op, arg), = condition.items()
    if op in ("all", "any", "not"):
        return _literal_countries(arg)
    if (
        isinstance(arg, list)
        and len(arg) == 2
        and arg[0] in COUNTRY_FIELDS
        and not (isinstance(arg[1], str) and arg[1].startswith("$"))
    ):
        return [arg]
    return []


@pytest.mark.parametrize("path", _own_packs(), ids=lambda p: p.name)
def test_pack_file_is_named_after_its_regime_and_version_and_keeps_countries_in_parameters(path):
    raw = yaml.safe_load(path.read_text())
    pack = compile_pack(raw)

    assert path.name == f"{pack.regime.lower()}-{pack.version}.yaml"
    assert pack.kind == "regime" and raw["title"] and raw["changelog"] and raw["sources"] and raw["parameters"]
    conditions = [raw.get("engaged_when")] + [r.get("when") for r in raw["rules"]]
    assert _literal_countries(conditions) == []
