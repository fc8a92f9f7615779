"""What a buyer declares can add law to a decision but never take any away; approvals that rest on
a regulator's word are marked for four eyes."""

from collections.abc import Callable

from compliance.engine import Outcome, evaluate
from compliance.engine.facts import TransferFacts

CN_PERSONAL = {
    "data__subject_jurisdictions": ["CN"],
    "data__storage_jurisdiction": "CN",
    "exporter__jurisdiction": "CN",
    "data__subjects": 150_000,
}


def test_a_singapore_buyer_declaring_china_is_still_an_export_from_china(
    facts: Callable[..., TransferFacts], shipped_packs: list
) -> None:
    alone = evaluate(facts(**CN_PERSONAL, buyer__jurisdiction="SG"), shipped_packs)
    declared = evaluate(
        facts(**CN_PERSONAL, buyer__jurisdiction="SG", buyer__declared_destinations=["CN"]), shipped_packs
    )
    assert alone.outcome != Outcome.ALLOW
    assert declared.outcome == alone.outcome
    assert declared.requirements == alone.requirements


def test_a_us_buyer_declaring_germany_still_needs_scc_and_tia(
    facts: Callable[..., TransferFacts], shipped_packs: list
) -> None:
    decision = evaluate(facts(buyer__jurisdiction="US", buyer__declared_destinations=["DE"]), shipped_packs)
    assert decision.outcome == Outcome.NEEDS_MECHANISM
    assert [list(g) for g in decision.requirements] == [["eu_scc"], ["eu_tia"]]


def test_a_declared_destination_adds_its_own_law_and_says_so(
    facts: Callable[..., TransferFacts], shipped_packs: list
) -> None:
    """A German buyer says the data will also go to Iran: the embargo decides."""
    decision = evaluate(facts(buyer__jurisdiction="DE", buyer__declared_destinations=["IR"]), shipped_packs)
    assert decision.outcome == Outcome.DENY
    denying = [f for f in decision.findings if f.outcome == Outcome.DENY]
    assert denying and all(f.explanation.startswith("to the declared destination IR:") for f in denying)


def test_declaring_the_place_of_establishment_changes_nothing(
    facts: Callable[..., TransferFacts], shipped_packs: list
) -> None:
    plain = evaluate(facts(buyer__jurisdiction="US"), shipped_packs)
    same = evaluate(facts(buyer__jurisdiction="US", buyer__declared_destinations=["US"]), shipped_packs)
    assert plain == same


def test_exemptions_resting_on_a_declared_purpose_are_flagged(
    facts: Callable[..., TransferFacts], shipped_packs: list
) -> None:
    decision = evaluate(facts(**CN_PERSONAL, buyer__jurisdiction="SG", purpose="contract_with_subject"), shipped_packs)
    rule = next(f for f in decision.findings if f.rule == "CN-EX-CONTRACT")
    assert rule.outcome == Outcome.ALLOW_FLAGGED
    assert "declared purpose" in rule.explanation


def test_a_rule_needing_a_regulators_approval_asks_for_four_eyes_even_once_satisfied(
    facts: Callable[..., TransferFacts], shipped_packs: list,
) -> None:
    important = {**CN_PERSONAL, "data__classification": "important", "buyer__jurisdiction": "SG"}
    open_ = evaluate(facts(**important), shipped_packs)
    met = evaluate(
        facts(**important, mechanisms=[{"code": "cn_security_assessment", "approved_on": "2026-01-05"}]), shipped_packs
    )
    for decision in (open_, met):
        finding = next(f for f in decision.findings if f.rule == "CN-IMP-1")
        assert finding.four_eyes and finding.as_dict()["four_eyes"] is True
    assert next(f for f in met.findings if f.rule == "CN-IMP-1").outcome == Outcome.ALLOW
    assert not any(f.four_eyes for f in evaluate(facts(), shipped_packs).findings)
