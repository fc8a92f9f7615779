"""The UK and the other regimes of the catalogue (§3, §5): Russia, India, Japan, Korea, Brazil,
Singapore, Vietnam and Saudi Arabia. Each regime governs personal data leaving its country."""

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance.engine import compile_pack, evaluate, parse_facts

PACK_DIR = Path(__file__).resolve().parents[2] / "compliance" / "rulepacks"
REGIMES = ("uk", "ru", "in", "jp", "kr", "br", "sg", "vn", "sa")
IN_FORCE_IN = "2027-06-01"  # India's s. 16 and Rules 13, 15 apply from 14 May 2027


def origin(country: str, **more: Any) -> dict[str, Any]:
    """Data about people in `country`, stored there by an exporter established there."""
    return {"data__subject_jurisdictions": [country], "data__storage_jurisdiction": country, "exporter__jurisdiction": country, **more}


GB, RU, IN, JP, KR, BR, SG, VN, SA = (origin(c) for c in ("GB", "RU", "IN", "JP", "KR", "BR", "SG", "VN", "SA"))
UK_SAFEGUARDS = [["uk_idta"], ["uk_tra"]]


# (case, overrides, outcome, requirements, a rule among the findings)
CASES = [
    # United Kingdom (§3, list §8.4)
    ("UK to the EEA: restricted but approved", {**GB, "buyer__jurisdiction": "FR"}, "allow", [], "UK-ADQ-1"),
    ("UK to Gibraltar", {**GB, "buyer__jurisdiction": "GI"}, "allow", [], "UK-ADQ-1"),
    ("UK to Switzerland", {**GB, "buyer__jurisdiction": "CH"}, "allow", [], "UK-ADQ-1"),
    ("UK to a Canadian buyer under PIPEDA", {**GB, "buyer__jurisdiction": "CA", "buyer__certifications": ["ca_pipeda"]}, "allow", [], "UK-ADQ-1"),
    ("UK to a Canadian buyer outside PIPEDA", {**GB, "buyer__jurisdiction": "CA"}, "needs_mechanism", UK_SAFEGUARDS, "UK-SCC-1"),
    ("UK to a Japanese company", {**GB, "buyer__jurisdiction": "JP"}, "allow", [], "UK-ADQ-1"),
    ("UK to a Korean public body (INTERP)", {**GB, "buyer__jurisdiction": "KR", "buyer__kind": "public_body"},
     "needs_mechanism", UK_SAFEGUARDS, "UK-SCC-1"),
    ("UK to a US buyer in the UK Extension", {**GB, "buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf", "us_dpf_uk_extension"]},
     "allow_flagged", [], "UK-US-1"),
    ("UK employee data to a US buyer in the UK Extension with HR coverage",
     {**GB, "buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf_hr", "us_dpf_uk_extension"], "data__categories": ["employee"]},
     "allow_flagged", [], "UK-US-1"),
    ("UK employee data to a US buyer in the UK Extension without HR coverage",
     {**GB, "buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf", "us_dpf_uk_extension"], "data__categories": ["employee"]},
     "needs_mechanism", UK_SAFEGUARDS, "UK-US-0"),
    ("UK to a DPF-certified US buyer outside the UK Extension", {**GB, "buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf"]},
     "needs_mechanism", UK_SAFEGUARDS, "UK-US-0"),
    ("UK to an uncertified US buyer", {**GB, "buyer__jurisdiction": "US"}, "needs_mechanism", UK_SAFEGUARDS, "UK-US-0"),
    ("UK to Brazil: adequate for the EU, not for the UK", {**GB, "buyer__jurisdiction": "BR"}, "needs_mechanism", UK_SAFEGUARDS, "UK-DIV-1"),
    ("UK to India", {**GB, "buyer__jurisdiction": "IN"}, "needs_mechanism", UK_SAFEGUARDS, "UK-SCC-1"),
    ("UK to India, IDTA only", {**GB, "buyer__jurisdiction": "IN", "mechanisms": [{"code": "uk_idta"}]}, "needs_mechanism", [["uk_tra"]], "UK-SCC-1"),
    ("UK exporter of data held in the UK about people elsewhere", {**origin("AU"), "data__storage_jurisdiction": "GB", "exporter__jurisdiction": "GB",
                                                                   "buyer__jurisdiction": "IN"}, "needs_mechanism", UK_SAFEGUARDS, "UK-SCC-1"),
    ("UK exception offered for resale", {**GB, "buyer__jurisdiction": "IN", "mechanisms": [{"code": "eu_art49_derogation"}]}, "deny", [], "UK-49-1-RESALE"),
    ("UK exception offered for a contract with the subject", {**GB, "buyer__jurisdiction": "IN", "purpose": "contract_with_subject",
                                                              "mechanisms": [{"code": "eu_art49_derogation"}]}, "review", [], "UK-49-1"),
    ("UK exception irrelevant where regulations approve", {**GB, "buyer__jurisdiction": "DE", "mechanisms": [{"code": "eu_art49_derogation"}]},
     "allow", [], "UK-ADQ-1"),
    # Russia (152-FZ)
    ("Russia to a Convention 108 party", {**RU, "buyer__jurisdiction": "CH"}, "needs_filing", [["ru_rkn_notification"]], "RU-XB-ADQ"),
    ("Russia to a Convention 108 party outside Europe", {**RU, "buyer__jurisdiction": "UY"}, "needs_filing", [["ru_rkn_notification"]], "RU-XB-ADQ"),
    ("Russia to a non-adequate state", {**RU, "buyer__jurisdiction": "US"}, "needs_filing", [["ru_rkn_notification"]], "RU-XB-NONADQ"),
    ("Russian citizens' data held abroad (localisation)", {**origin("RU"), "data__storage_jurisdiction": "AE", "exporter__jurisdiction": "AE",
                                                          "buyer__jurisdiction": "US"}, "review", [], "RU-LOC-1"),
    ("foreign people's data stored in Russia", {**origin("KZ"), "data__storage_jurisdiction": "RU", "exporter__jurisdiction": "RU",
                                                "buyer__jurisdiction": "US"}, "needs_filing", [["ru_rkn_notification"]], "RU-XB-NONADQ"),
    # India (DPDP Act s. 16, Rules 2025), in force from 14 May 2027
    ("India to an unrestricted country", {**IN, "buyer__jurisdiction": "US", "trade_date": IN_FORCE_IN}, "allow", [], "IN-16-1"),
    ("India financial records (sectoral localisation, INTERP)", {**IN, "buyer__jurisdiction": "US", "data__categories": ["financial"],
                                                                 "trade_date": IN_FORCE_IN}, "review", [], "IN-16-3"),
    ("India to a foreign public body (Rule 15, INTERP)", {**IN, "buyer__jurisdiction": "SG", "buyer__kind": "public_body", "trade_date": IN_FORCE_IN},
     "review", [], "IN-R15"),
    # Japan (APPI Art. 28)
    ("Japan to the EEA", {**JP, "buyer__jurisdiction": "DE"}, "allow", [], "JP-28-1"),
    ("Japan to the UK (designation VERIFY)", {**JP, "buyer__jurisdiction": "GB"}, "allow", [], "JP-28-1"),
    ("Japan to a CBPR-certified buyer", {**JP, "buyer__jurisdiction": "US", "buyer__certifications": ["apec_cbpr"]}, "allow", [], "JP-28-2"),
    ("Japan with equivalent measures by contract", {**JP, "buyer__jurisdiction": "US", "mechanisms": [{"code": "jp_equivalent_measures"}]},
     "allow", [], "JP-28-2"),
    ("Japan otherwise: consent or equivalent measures", {**JP, "buyer__jurisdiction": "US"}, "needs_mechanism",
     [["jp_consent", "jp_equivalent_measures"]], "JP-28-3"),
    # Korea (PIPA Art. 28-8)
    ("Korea to the EEA (recognised)", {**KR, "buyer__jurisdiction": "NO"}, "allow", [], "KR-28-8-EEA"),
    ("Korea financial records to the EEA (credit information, INTERP)", {**KR, "buyer__jurisdiction": "DE", "data__categories": ["financial"]},
     "needs_mechanism", [["kr_consent"]], "KR-28-8"),
    ("Korea identifiers to the EEA (RRNs, INTERP)", {**KR, "buyer__jurisdiction": "DE", "data__categories": ["identifiers"]},
     "needs_mechanism", [["kr_consent"]], "KR-28-8"),
    ("Korea to the US", {**KR, "buyer__jurisdiction": "US"}, "needs_mechanism", [["kr_consent"]], "KR-28-8"),
    # Brazil (LGPD Art. 33)
    ("Brazil to the EU (adequate)", {**BR, "buyer__jurisdiction": "FR"}, "allow", [], "BR-33-ADQ"),
    ("Brazil to Norway (EEA coverage VERIFY)", {**BR, "buyer__jurisdiction": "NO"}, "needs_mechanism", [["br_anpd_scc"]], "BR-33"),
    ("Brazil to the US", {**BR, "buyer__jurisdiction": "US"}, "needs_mechanism", [["br_anpd_scc"]], "BR-33"),
    # Singapore (PDPA s. 26)
    ("Singapore to a CBPR-certified buyer", {**SG, "buyer__jurisdiction": "US", "buyer__certifications": ["apec_cbpr"]}, "allow", [], "SG-26-CBPR"),
    ("Singapore, contract with the subject (deemed, INTERP)", {**SG, "buyer__jurisdiction": "US", "purpose": "contract_with_subject"},
     "allow_flagged", [], "SG-26-DEEMED"),
    ("Singapore otherwise", {**SG, "buyer__jurisdiction": "US"}, "needs_mechanism", [["sg_enforceable_obligations"]], "SG-26"),
    # Vietnam (PDP Law 2025)
    ("Vietnam: selling personal data abroad", {**VN, "buyer__jurisdiction": "US"}, "deny", [], "VN-SALE-1"),
    ("Vietnam: selling personal data at home", {**VN, "buyer__jurisdiction": "VN"}, "deny", [], "VN-SALE-1"),
    ("Vietnam: Vietnamese data held abroad, sold", {**origin("VN"), "data__storage_jurisdiction": "SG", "exporter__jurisdiction": "SG",
                                                   "buyer__jurisdiction": "US"}, "deny", [], "VN-SALE-1"),
    ("Vietnam: a buyer in Vietnam buying foreign data (INTERP)", {**origin("AU"), "buyer__jurisdiction": "VN"}, "deny", [], "VN-SALE-1-BUYER"),
    ("Vietnam: transfer for HR management", {**VN, "buyer__jurisdiction": "US", "purpose": "hr_management"},
     "needs_filing", [["vn_tia_dossier"]], "VN-XB-1"),
    ("Vietnam: intra-group transfer", {**VN, "buyer__jurisdiction": "SG", "purpose": "intra_group"}, "needs_filing", [["vn_tia_dossier"]], "VN-XB-1"),
    # Saudi Arabia (PDPL Art. 29)
    ("Saudi Arabia: no adequacy list published", {**SA, "buyer__jurisdiction": "GB"}, "needs_mechanism", [["sa_sdaia_scc"], ["sa_risk_assessment"]],
     "SA-29-2"),
    ("Saudi Arabia, SCC only", {**SA, "buyer__jurisdiction": "US", "mechanisms": [{"code": "sa_sdaia_scc"}]},
     "needs_mechanism", [["sa_risk_assessment"]], "SA-29-2"),
]


@pytest.mark.parametrize(("case", "overrides", "outcome", "requirements", "rule"), CASES, ids=[c[0] for c in CASES])
def test_decision(shipped_packs, facts, case, overrides, outcome, requirements, rule):
    decision = evaluate(facts(**overrides), shipped_packs)

    assert decision.outcome == outcome
    assert [list(g) for g in decision.requirements] == requirements
    assert rule in [f.rule for f in decision.findings]


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
    decision = evaluate(facts(**RU, buyer__jurisdiction="US", mechanisms=[{"code": "ru_rkn_notification", "approved_on": "2026-12-10"}]), shipped_packs)

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
    decision = evaluate(facts(**GB, buyer__jurisdiction="US", purpose=purpose, mechanisms=[{"code": "eu_art49_derogation"}]), shipped_packs)
    uk = [f.rule for f in decision.findings if f.regime == "UK"]

    assert (decision.outcome, decision.requirements, uk) == (outcome, (), [rule])


# Each regime governs data leaving its country: a domestic transfer does not engage it.
DOMESTIC = [("UK", "GB", None), ("RU", "RU", None), ("IN", "IN", IN_FORCE_IN), ("JP", "JP", None), ("KR", "KR", None),
            ("BR", "BR", None), ("SG", "SG", None), ("VN", "VN", None), ("SA", "SA", None)]


@pytest.mark.parametrize(("regime", "country", "trade_date"), DOMESTIC, ids=[d[0] for d in DOMESTIC])
def test_a_domestic_transfer_does_not_engage_the_regime(shipped_packs, facts, regime, country, trade_date):
    extra = {"trade_date": trade_date} if trade_date else {}
    decision = evaluate(facts(**origin(country), buyer__jurisdiction=country, purpose="contract_with_subject", **extra), shipped_packs)

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
def test_non_personal_data_does_not_engage_the_regime(shipped_packs, facts, regime, country, trade_date, classification):
    extra = {"trade_date": trade_date} if trade_date else {}
    decision = evaluate(facts(**origin(country), buyer__jurisdiction="CA", data__classification=classification, data__subjects=0, **extra),
                        shipped_packs)

    assert not any(f.regime == regime for f in decision.findings)
    assert (decision.outcome, [f.rule for f in decision.findings]) == ("allow", ["SAN-CLEAR", "BASE-NP-1"])


def test_sensitive_personal_data_engages_the_regime(shipped_packs, facts):
    decision = evaluate(facts(**KR, buyer__jurisdiction="US", data__classification="sensitive_personal", data__categories=["health"]), shipped_packs)

    assert "KR-28-8" in [f.rule for f in decision.findings]


# Several regimes at once: the most restrictive finding decides and the requirements are the union.
def test_uk_and_eu_data_to_a_us_buyer_needs_both_safeguards(shipped_packs, facts):
    decision = evaluate(facts(data__subject_jurisdictions=["GB", "DE"], data__storage_jurisdiction="GB", exporter__jurisdiction="GB",
                              buyer__jurisdiction="US"), shipped_packs)

    assert decision.outcome == "needs_mechanism"
    assert [list(g) for g in decision.requirements] == [["eu_scc"], ["eu_tia"], ["uk_idta"], ["uk_tra"]]
    assert {"EU", "UK"} <= {f.regime for f in decision.findings}
    assert "UK-US-0" in [f.rule for f in decision.findings]


def test_uk_and_eu_data_with_only_the_uk_safeguards_still_needs_the_eu_ones(shipped_packs, facts):
    decision = evaluate(facts(data__subject_jurisdictions=["GB", "DE"], data__storage_jurisdiction="GB", exporter__jurisdiction="GB",
                              buyer__jurisdiction="US", mechanisms=[{"code": "uk_idta"}, {"code": "uk_tra"}]), shipped_packs)

    assert (decision.outcome, [list(g) for g in decision.requirements]) == ("needs_mechanism", [["eu_scc"], ["eu_tia"]])


def test_uk_and_eu_data_to_a_buyer_in_both_frameworks_is_flagged(shipped_packs, facts):
    decision = evaluate(facts(data__subject_jurisdictions=["GB", "DE"], data__storage_jurisdiction="DE", exporter__jurisdiction="DE",
                              buyer__jurisdiction="US", buyer__certifications=["us_dpf", "us_dpf_uk_extension"]), shipped_packs)

    assert (decision.outcome, decision.requirements) == ("allow_flagged", ())
    assert {"EU-DPF-1", "UK-US-1"} <= {f.rule for f in decision.findings}


def test_uk_and_russian_data_stored_in_the_uk_goes_to_review(shipped_packs, facts):
    decision = evaluate(facts(data__subject_jurisdictions=["GB", "RU"], data__storage_jurisdiction="GB", exporter__jurisdiction="GB",
                              buyer__jurisdiction="DE"), shipped_packs)

    assert decision.outcome == "review"
    assert {"UK-ADQ-1", "RU-LOC-1"} <= {f.rule for f in decision.findings}


def test_japanese_and_korean_data_to_the_us_needs_both_consents(shipped_packs, facts):
    decision = evaluate(facts(data__subject_jurisdictions=["JP", "KR"], data__storage_jurisdiction="JP", exporter__jurisdiction="JP",
                              buyer__jurisdiction="US"), shipped_packs)

    assert decision.outcome == "needs_mechanism"
    assert [list(g) for g in decision.requirements] == [["jp_consent", "jp_equivalent_measures"], ["kr_consent"]]


def test_vietnamese_sale_is_denied_whatever_other_regimes_allow(shipped_packs, facts):
    decision = evaluate(facts(data__subject_jurisdictions=["VN", "DE"], data__storage_jurisdiction="DE", exporter__jurisdiction="DE",
                              buyer__jurisdiction="FR"), shipped_packs)

    assert (decision.outcome, decision.requirements) == ("deny", ())
    assert {"EU-INTRA-1", "VN-SALE-1"} <= {f.rule for f in decision.findings}


def test_eu_data_to_a_vietnamese_buyer_is_denied(shipped_packs, facts):
    decision = evaluate(facts(buyer__jurisdiction="VN", mechanisms=[{"code": "eu_scc"}, {"code": "eu_tia"}]), shipped_packs)

    assert decision.outcome == "deny"
    assert "VN-SALE-1-BUYER" in [f.rule for f in decision.findings]


def test_eu_data_to_a_vietnamese_buyer_for_another_purpose_is_not_vietnams_business(shipped_packs, facts):
    decision = evaluate(facts(buyer__jurisdiction="VN", purpose="intra_group"), shipped_packs)

    assert not any(f.regime == "VN" for f in decision.findings)


# Versions: the one in force on the trade date decides; before the first, no pack of the regime applies.
@pytest.mark.parametrize(("overrides", "trade_date", "pack", "outcome", "requirements"), [
    ({**GB, "buyer__jurisdiction": "IN"}, "2026-02-04", "uk@2023.09.21", "needs_mechanism", UK_SAFEGUARDS),
    ({**GB, "buyer__jurisdiction": "IN"}, "2026-02-05", "uk@2025.06.19", "needs_mechanism", UK_SAFEGUARDS),
    ({**GB, "buyer__jurisdiction": "US", "buyer__certifications": ["us_dpf", "us_dpf_uk_extension"]}, "2024-05-01", "uk@2023.09.21",
     "allow_flagged", []),
    ({**KR, "buyer__jurisdiction": "DE"}, "2025-09-15", "kr@2023.03.14", "needs_mechanism", [["kr_consent"]]),
    ({**KR, "buyer__jurisdiction": "DE"}, "2025-09-16", "kr@2025.09.16", "allow", []),
    ({**BR, "buyer__jurisdiction": "FR"}, "2026-01-25", "br@2024.08.23", "needs_mechanism", [["br_anpd_scc"]]),
    ({**BR, "buyer__jurisdiction": "FR"}, "2026-01-26", "br@2026.01.26", "allow", []),
    ({**IN, "buyer__jurisdiction": "US"}, "2027-05-14", "in@2025.11.13", "allow", []),
    ({**VN, "buyer__jurisdiction": "US"}, "2026-01-01", "vn@2025.06.26", "deny", []),
])
def test_the_version_in_force_on_the_trade_date_decides(shipped_packs, facts, overrides, trade_date, pack, outcome, requirements):
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


# Lists no country is on yet (India's blacklist, Rule 15 orders, SDAIA's adequacy list) are parameters;
# the rules that read them are checked with a copy of the shipped pack that fills them in.
def _pack_with(path: str, **parameters: Any):
    raw = copy.deepcopy(yaml.safe_load((PACK_DIR / path).read_text()))
    raw["parameters"].update(parameters)
    return compile_pack(raw)


@pytest.fixture
def packs_with(shipped_packs):
    def make(path: str, **parameters: Any) -> list:
        changed = _pack_with(path, **parameters)
        return [p for p in shipped_packs if p.ref != changed.ref] + [changed]

    return make


@pytest.mark.parametrize(("path", "parameters", "overrides", "outcome", "requirements", "rule"), [
    ("in-2025.11.13.yaml", {"restricted_destinations": ["CN"]}, {**IN, "buyer__jurisdiction": "CN", "trade_date": IN_FORCE_IN}, "deny", [], "IN-16-2"),
    ("in-2025.11.13.yaml", {"restricted_destinations": ["CN"]}, {**IN, "buyer__jurisdiction": "US", "trade_date": IN_FORCE_IN}, "allow", [], "IN-16-1"),
    ("in-2025.11.13.yaml", {"rule15_order_destinations": ["US"]}, {**IN, "buyer__jurisdiction": "US", "trade_date": IN_FORCE_IN},
     "review", [], "IN-R15"),
    ("sa-2024.09.01.yaml", {"sdaia_adequate": ["GB"]}, {**SA, "buyer__jurisdiction": "GB"}, "allow", [], "SA-29-1"),
    ("sa-2024.09.01.yaml", {"sdaia_adequate": ["GB"]}, {**SA, "buyer__jurisdiction": "GB", "data__classification": "sensitive_personal",
                                                        "data__categories": ["health"]}, "needs_mechanism", [["sa_risk_assessment"]], "SA-29-1-SENSITIVE"),
    ("sa-2024.09.01.yaml", {"sdaia_adequate": ["GB"]}, {**SA, "buyer__jurisdiction": "US"}, "needs_mechanism",
     [["sa_sdaia_scc"], ["sa_risk_assessment"]], "SA-29-2"),
    ("ru-2025.02.28.yaml", {"rkn_order_128": ["KZ"]}, {**RU, "buyer__jurisdiction": "KZ"}, "needs_filing", [["ru_rkn_notification"]], "RU-XB-ADQ"),
])
def test_rules_reading_lists_not_yet_filled(packs_with, facts, path, parameters, overrides, outcome, requirements, rule):
    decision = evaluate(facts(**overrides), packs_with(path, **parameters))

    assert decision.outcome == outcome
    assert [list(g) for g in decision.requirements] == requirements
    assert rule in [f.rule for f in decision.findings]


# The worked examples of this rule set (shared/compliance/examples.md), facts copied verbatim.
XB_39 = {
    "trade_date": "2026-11-26",
    "data": {"subject_jurisdictions": ["GB"], "storage_jurisdiction": "GB", "classification": "personal", "categories": ["contact"],
             "subjects": 40000, "de_identified": False, "flags": []},
    "exporter": {"jurisdiction": "GB", "flags": []},
    "buyer": {"jurisdiction": "US", "headquarters": "US", "owner_jurisdictions": [], "kind": "company", "certifications": ["us_dpf", "us_dpf_uk_extension"]},
    "purpose": "resale",
    "mechanisms": [],
    "prior_exports": [],
}
XB_54 = {
    "trade_date": "2026-11-26",
    "data": {"subject_jurisdictions": ["RU"], "storage_jurisdiction": "RU", "classification": "personal", "categories": ["contact"],
             "subjects": 50000, "de_identified": False, "flags": []},
    "exporter": {"jurisdiction": "RU", "flags": []},
    "buyer": {"jurisdiction": "DE", "headquarters": "DE", "owner_jurisdictions": [], "kind": "company", "certifications": []},
    "purpose": "resale",
    "mechanisms": [],
    "prior_exports": [],
}


@pytest.mark.parametrize(("body", "outcome", "requirements", "rule", "pack"), [
    (XB_39, "allow_flagged", [], "UK-US-1", "uk@2025.06.19"),
    (XB_54, "needs_filing", [["ru_rkn_notification"]], "RU-XB-ADQ", "ru@2025.02.28"),
], ids=["XB-39", "XB-54"])
def test_worked_examples(shipped_packs, body, outcome, requirements, rule, pack):
    decision = evaluate(parse_facts(body, today=date(2026, 11, 26)), shipped_packs)

    assert decision.outcome == outcome
    assert [list(g) for g in decision.requirements] == requirements
    assert [(f.rule, f.rulepack) for f in decision.findings if f.regime not in ("SANCTIONS",)] == [(rule, pack)]


def test_xb_54_localisation_is_met_and_the_notification_comes_with_its_duties(shipped_packs):
    decision = evaluate(parse_facts(XB_54, today=date(2026, 11, 26)), shipped_packs)

    assert "RU-LOC-1" not in [f.rule for f in decision.findings]
    assert any("Art. 12(4)" in o for o in decision.obligations)


# Explanations: the facts that decided, and the reading (INTERP) or unverified fact (VERIFY) behind it.
@pytest.mark.parametrize(("overrides", "rule", "phrases"), [
    ({**GB, "buyer__jurisdiction": "IN"}, "UK-SCC-1", ["to IN", "not materially lower", "VERIFY"]),
    ({**GB, "buyer__jurisdiction": "BR"}, "UK-DIV-1", ["BR is adequate for the EU", "VERIFY"]),
    ({**GB, "buyer__jurisdiction": "IN", "mechanisms": [{"code": "eu_art49_derogation"}]}, "UK-49-1-RESALE", ["Elementa's reading", "INTERP"]),
    ({**KR, "buyer__jurisdiction": "DE"}, "KR-28-8-EEA", ["DE is in the EU/EEA", "INTERP"]),
    ({**RU, "buyer__jurisdiction": "DE"}, "RU-XB-ADQ", ["DE counts as an adequate state", "VERIFY"]),
    ({**RU, "buyer__jurisdiction": "US"}, "RU-XB-NONADQ", ["10 working days", "approved_on"]),
    ({**origin("RU"), "data__storage_jurisdiction": "AE", "exporter__jurisdiction": "AE", "buyer__jurisdiction": "US"}, "RU-LOC-1",
     ["held in AE", "INTERP"]),
    ({**IN, "buyer__jurisdiction": "US", "data__categories": ["financial"], "trade_date": IN_FORCE_IN}, "IN-16-3", ["INTERP", "financial"]),
    ({**IN, "buyer__jurisdiction": "US", "trade_date": IN_FORCE_IN}, "IN-16-1", ["VERIFY"]),
    ({**JP, "buyer__jurisdiction": "GB"}, "JP-28-1", ["GB is designated", "VERIFY"]),
    ({**BR, "buyer__jurisdiction": "FR"}, "BR-33-ADQ", ["FR", "VERIFY"]),
    ({**SG, "buyer__jurisdiction": "US", "purpose": "contract_with_subject"}, "SG-26-DEEMED", ["contract_with_subject", "INTERP"]),
    ({**origin("AU"), "buyer__jurisdiction": "VN"}, "VN-SALE-1-BUYER", ["VN", "INTERP"]),
    ({**SA, "buyer__jurisdiction": "US"}, "SA-29-2", ["US is not on SDAIA's adequacy list", "VERIFY"]),
])
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


def test_every_finding_is_fully_rendered(shipped_packs, facts):
    for _, overrides, *_ in CASES:
        for finding in evaluate(facts(**overrides), shipped_packs).findings:
            assert "{" not in finding.explanation and "}" not in finding.explanation, finding.rule


# The packs themselves: named <regime>-<version>.yaml, every country list a parameter.
def _own_packs() -> list[Path]:
    return sorted(p for p in PACK_DIR.glob("*.yaml") if p.name.split("-", 1)[0] in REGIMES)


COUNTRY_FIELDS = {"data.subject_jurisdictions", "data.subject_countries", "data.storage_jurisdiction", "data.storage_country",
                  "exporter.jurisdiction", "exporter.country", "buyer.jurisdiction", "buyer.country", "buyer.headquarters",
                  "buyer.owner_jurisdictions", "buyer.linked_jurisdictions"}


def _literal_countries(condition: Any) -> list[Any]:
    if isinstance(condition, list):
        return [x for c in condition for x in _literal_countries(c)]
    if not isinstance(condition, dict):
        return []
    (op, arg), = condition.items()
    if op in ("all", "any", "not"):
        return _literal_countries(arg)
    if isinstance(arg, list) and len(arg) == 2 and arg[0] in COUNTRY_FIELDS and not (isinstance(arg[1], str) and arg[1].startswith("$")):
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


def test_every_rule_of_these_packs_is_reached_by_a_test():
    packs = [compile_pack(yaml.safe_load(p.read_text())) for p in _own_packs()]
    ids = {r.id for p in packs for r in (*p.rules, p.default) if r is not None}
    reached = {c[4] for c in CASES} | {s[0] for s in SATISFIED} | {"IN-16-2", "SA-29-1", "SA-29-1-SENSITIVE"}

    assert ids <= reached, sorted(ids - reached)
