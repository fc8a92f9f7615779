"""A trade's transfer facts come from the dataset, the organisations and the export ledger."""

import uuid
from datetime import date

import pytest

from compliance.models import ExportRecord
from marketplace.services.trade_facts import trade_transfer_facts
from tests.factories import DatasetFactory, OrganisationFactory, TradeFactory

pytestmark = pytest.mark.django_db


def exported(day: date, *, exporter, buyer, subjects: int, state: str = "committed") -> None:
    ExportRecord.objects.create(
        subject_type="trade", subject_id=uuid.uuid4(), exporter_id=exporter.id, buyer_id=buyer.id, date=day,
        classification="personal", categories=["contact"], subjects=subjects, state=state,
    )


def test_facts_describe_dataset_exporter_and_buyer_organisation():
    provider = OrganisationFactory(jurisdiction="CN", exporter_flags=["cn_ciio"])
    buyer = OrganisationFactory(
        jurisdiction="SG", headquarters="US", owner_jurisdictions=["CN"], certifications=["apec_cbpr"]
    )
    dataset = DatasetFactory(
        provider=provider,
        subject_jurisdictions=["CN"],
        classification="sensitive_personal",
        categories=["health"],
        subjects=10,
    )
    trade = TradeFactory(dataset=dataset, buyer=buyer, destination="HK", mechanisms=[{"code": "cn_standard_contract"}])

    facts = trade_transfer_facts(trade=trade, trade_date=date(2026, 11, 26))

    assert facts["data"] == {
        "subject_jurisdictions": ["CN"],
        "storage_jurisdiction": "CN",
        "classification": "sensitive_personal",
        "categories": ["health"],
        "subjects": 10,
        "de_identified": False,
        "flags": [],
    }
    assert facts["exporter"] == {"jurisdiction": "CN", "flags": ["cn_ciio"]}
    # Where the buyer is established decides; the declared destination is a further transfer to check.
    assert facts["buyer"] == {
        "jurisdiction": "SG",
        "headquarters": "US",
        "owner_jurisdictions": ["CN"],
        "kind": "company",
        "certifications": ["apec_cbpr"],
        "declared_destinations": ["HK"],
    }
    assert facts["mechanisms"] == []  # named at purchase: an intention, not evidence
    assert facts["trade_date"] == "2026-11-26"


def test_prior_exports_sum_reserved_and_committed_transfers_per_window_bucket_and_buyer():
    provider = OrganisationFactory(jurisdiction="CN")
    buyer, other = OrganisationFactory(), OrganisationFactory()
    exported(date(2026, 3, 1), exporter=provider, buyer=other, subjects=40000)
    exported(
        date(2026, 5, 1), exporter=provider, buyer=other, subjects=40000, state="reserved"
    )  # checked, not yet settled
    exported(date(2026, 6, 1), exporter=provider, buyer=buyer, subjects=40000)
    exported(
        date(2026, 7, 1), exporter=provider, buyer=buyer, subjects=99999, state="released"
    )  # cancelled: not counted
    exported(date(2025, 12, 30), exporter=provider, buyer=buyer, subjects=40000)  # last year: the US window only
    exported(date(2025, 6, 1), exporter=provider, buyer=buyer, subjects=40000)    # outside every window
    exported(date(2026, 6, 1), exporter=OrganisationFactory(), buyer=buyer, subjects=40000)  # another exporter
    trade = TradeFactory(dataset=DatasetFactory(provider=provider, subject_jurisdictions=["CN"]), buyer=buyer)

    prior = trade_transfer_facts(trade=trade, trade_date=date(2026, 11, 26))["prior_exports"]

    summary = sorted((p["date"], p["subjects"], p["same_buyer"]) for p in prior)
    assert summary == [("2025-12-30", 40000, True), ("2026-05-01", 80000, False), ("2026-06-01", 40000, True)]


def test_mechanisms_are_the_accepted_evidence_of_the_trade_and_both_parties(buyer_us, provider_eu, eu_personal):
    from marketplace.models import OrganisationMechanism, TradeDocument

    trade = TradeFactory(dataset=eu_personal, buyer=buyer_us.organisation, mechanisms=[{"code": "eu_tia"}])  # a claim
    accepted = {"status": "accepted"}
    TradeDocument.objects.create(
        trade=trade, code="eu_scc", reference="SCC-1", organisation=buyer_us.organisation, **accepted
    )
    TradeDocument.objects.create(
        trade=trade, code="eu_tia", reference="TIA-1", organisation=buyer_us.organisation
    )  # pending
    TradeDocument.objects.create(
        trade=trade, code="eu_tia", reference="TIA-0", organisation=buyer_us.organisation, status="rejected"
    )
    OrganisationMechanism.objects.create(
        organisation=buyer_us.organisation, code="uk_idta", valid_until=date(2027, 1, 1), **accepted
    )
    OrganisationMechanism.objects.create(organisation=provider_eu.organisation, code="eu_bcr", **accepted)
    OrganisationMechanism.objects.create(organisation=provider_eu.organisation, code="uk_tra")  # pending
    OrganisationMechanism.objects.create(
        organisation=OrganisationFactory(), code="cn_standard_contract", **accepted
    )  # a stranger's

    mechanisms = trade_transfer_facts(trade=trade, trade_date=date(2026, 11, 26))["mechanisms"]

    assert sorted(m["code"] for m in mechanisms) == ["eu_bcr", "eu_scc", "uk_idta"]
    assert {"code": "uk_idta", "valid_until": "2027-01-01"} in mechanisms
