"""The exporter's earlier transfers are its confidential sales history: the parties of a trade see
only the totals the cumulative rules used; officers see every earlier transfer."""

import json
import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone

from compliance.models import ExportRecord
from marketplace.models import Trade
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create
from tests.factories import MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


def exported(
    day: date, *, exporter, buyer, subjects: int, categories: list[str], classification: str = "personal"
) -> None:
    ExportRecord.objects.create(
        subject_type="trade", subject_id=uuid.uuid4(), exporter_id=exporter.id, buyer_id=buyer.id, date=day,
        classification=classification, categories=categories, subjects=subjects, state="committed",
    )


@pytest.fixture
def history(provider_cn, buyer_us):
    """The CN provider sold 120,000 contact records and 30,000 financial records to another buyer
    this year, and 2,000 contact records to buyer_us (its own purchase)."""
    today = timezone.localdate()
    other = OrganisationFactory(name="Someone Else Ltd", jurisdiction="SG")
    days = {"other_contact": max(date(today.year, 1, 1), today - timedelta(days=40)),
            "other_financial": max(date(today.year, 1, 1), today - timedelta(days=20)),
            "own": max(date(today.year, 1, 1), today - timedelta(days=10))}
    exported(
        days["other_contact"], exporter=provider_cn.organisation, buyer=other, subjects=120000, categories=["contact"]
    )
    exported(
        days["other_financial"],
        exporter=provider_cn.organisation,
        buyer=other,
        subjects=30000,
        categories=["financial"],
    )
    exported(
        days["own"],
        exporter=provider_cn.organisation,
        buyer=buyer_us.organisation,
        subjects=2000,
        categories=["contact", "profile"],
    )
    return days


def _leaks(body: object, days: dict[str, date]) -> list[str]:
    """Anything in a response that identifies another buyer's individual transfer."""
    text = json.dumps(body)
    found = [f"date {d.isoformat()}" for key, d in days.items() if key.startswith("other") and d.isoformat() in text]
    found += [
        s
        for s in ("120000", "120,000", "30000", "30,000", "financial", '"same_buyer":', '"prior_exports":')
        if s in text
    ]
    return found


def _trade(buyer, dataset) -> Trade:
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer, dataset_id=dataset.id).id)
    assert trade is not None
    return trade


def test_a_buyer_sees_only_totals_in_preview_trade_and_evidence_pack(
    client_for, rulepacks, buyer_us, cn_personal, history
):
    client = client_for(buyer_us)
    preview = client.get(f"/api/v1/datasets/{cn_personal.id}/compliance-preview/")
    trade = _trade(buyer_us, cn_personal)
    detail = client.get(f"/api/v1/trades/{trade.id}/")
    pack = client.get(f"/api/v1/trades/{trade.id}/evidence/")

    assert preview.status_code == detail.status_code == pack.status_code == 200
    for response in (preview, detail, pack):
        assert _leaks(response.json(), history) == []
    # the totals the rules compared are there, in the explanation and in the pack
    explanations = " ".join(f["explanation"] for f in preview.json()["findings"])
    assert "152,000 before" in explanations
    totals = pack.json()["facts"]["prior_export_totals"]
    assert totals["calendar_year"] == {"from": f"{timezone.localdate().year}-01-01", "personal_subjects": 152000,
                                       "sensitive_personal_subjects": 0}
    assert totals["same_buyer_12_months"]["subjects_by_category"] == {"contact": 2000}  # the buyer's own purchase only


def test_the_provider_sees_only_totals_too(client_for, rulepacks, buyer_us, provider_cn, cn_personal, history):
    trade = _trade(buyer_us, cn_personal)

    detail = client_for(provider_cn).get(f"/api/v1/trades/{trade.id}/")
    pack = client_for(provider_cn).get(f"/api/v1/trades/{trade.id}/evidence/")

    assert detail.status_code == pack.status_code == 200
    assert _leaks(detail.json(), history) == [] and _leaks(pack.json(), history) == []
    assert pack.json()["facts"]["prior_export_totals"]["calendar_year"]["personal_subjects"] == 152000


def test_an_officer_sees_every_earlier_transfer(client_for, rulepacks, officer, buyer_us, cn_personal, history):
    trade = _trade(buyer_us, cn_personal)
    Trade.objects.filter(pk=trade.pk).update(status=Trade.Status.IN_REVIEW)  # so it shows in the queue too

    pack = client_for(officer).get(f"/api/v1/trades/{trade.id}/evidence/").json()
    queue = client_for(officer).get("/api/v1/reviews/").json()["results"]

    for facts in (pack["facts"], next(t for t in queue if t["id"] == str(trade.id))["facts"]):
        assert "prior_export_totals" not in facts
        items = {(p["date"], tuple(p["categories"]), p["subjects"], p["same_buyer"]) for p in facts["prior_exports"]}
        assert (history["other_contact"].isoformat(), ("contact",), 120000, False) in items
        assert (history["other_financial"].isoformat(), ("financial",), 30000, False) in items


def test_a_stranger_gets_no_pack_at_all(client_for, rulepacks, buyer_us, cn_personal, history):
    trade = _trade(buyer_us, cn_personal)
    stranger = MembershipFactory(organisation=OrganisationFactory(), role="provider")

    assert client_for(stranger).get(f"/api/v1/trades/{trade.id}/evidence/").status_code == 404
