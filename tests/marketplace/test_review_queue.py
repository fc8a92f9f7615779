"""The officer's queue: filters, what each item shows, four eyes, conditions, the evidence pack."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import Review
from marketplace.models import Trade
from marketplace.services.settlement import trade_settle
from marketplace.services.trade_compliance import trade_check_compliance
from marketplace.services.trades import trade_create
from tests.evidence import accept_document, upload_document
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


def checked(buyer, dataset) -> Trade:
    trade = trade_check_compliance(trade_id=trade_create(membership=buyer, dataset_id=dataset.id).id)
    assert trade is not None
    return trade


@pytest.fixture
def cn_important(provider_cn):
    """Notified important data: CN-IMP-1 needs a CAC security assessment (needs_approval)."""
    return DatasetFactory(provider=provider_cn.organisation, subject_jurisdictions=["CN"], classification="important",
                          categories=[], subjects=0, price="500.00", currency="USD")


@pytest.fixture
def second_officer(operator):
    return MembershipFactory(organisation=operator, role="officer")


def test_queue_items_carry_facts_findings_requirements_and_evidence(
    client_for, rulepacks, officer, second_officer, buyer_eu, buyer_us, eu_health, eu_personal,
):
    in_review = checked(buyer_eu, eu_health)
    waiting = checked(buyer_us, eu_personal)
    scc = upload_document(client_for(buyer_us), waiting.id, "eu_scc", reference="SCC-7")
    accept_document(client_for(second_officer), scc["id"])
    waiting = trade_check_compliance(trade_id=waiting.id)  # still needs the TIA

    queue = client_for(officer).get("/api/v1/reviews/").json()["results"]
    everything = client_for(officer).get("/api/v1/reviews/?waiting=true").json()["results"]

    assert [t["id"] for t in queue] == [str(in_review.id)]
    item = queue[0]
    assert item["facts"]["data"]["categories"] == ["health"]
    assert "EU-ART9-1" in [f["rule"] for f in item["decision"]["findings"]]
    assert item["waiting_hours"] >= 0
    pending = next(t for t in everything if t["id"] == str(waiting.id))
    assert pending["decision"]["requirements"] == [["eu_tia"]]
    assert [(d["reference"], d["status"]) for d in pending["documents"]] == [("SCC-7", "accepted")]


def test_pending_evidence_puts_a_trade_in_the_queue_as_an_evidence_item(
    client_for, rulepacks, officer, buyer_us, eu_personal, eu_health
):
    in_review = checked(buyer_us, eu_health)
    waiting = checked(buyer_us, eu_personal)
    officer_client = client_for(officer)
    assert [t["id"] for t in officer_client.get("/api/v1/reviews/").json()["results"]] == [str(in_review.id)]

    upload_document(client_for(buyer_us), waiting.id, "eu_tia")

    queue = officer_client.get("/api/v1/reviews/").json()["results"]
    assert {(t["id"], t["pending_evidence"]) for t in queue} == {(str(in_review.id), False), (str(waiting.id), True)}
    assert [t["id"] for t in officer_client.get("/api/v1/reviews/?item=evidence").json()["results"]] == [
        str(waiting.id)
    ]
    assert [t["id"] for t in officer_client.get("/api/v1/reviews/?item=review").json()["results"]] == [
        str(in_review.id)
    ]


def test_queue_filters(client_for, rulepacks, officer, buyer_eu, eu_health, provider_eu):
    old = checked(buyer_eu, eu_health)
    Trade.objects.filter(pk=old.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=30), waiting_since=timezone.now() - timedelta(hours=30)
    )
    pricey = checked(buyer_eu, DatasetFactory(provider=provider_eu.organisation, classification="sensitive_personal",
                                              categories=["health"], subjects=10, price="9000.00"))
    officer_client = client_for(officer)

    def ids(query: str) -> set[str]:
        response = officer_client.get(f"/api/v1/reviews/?{query}")
        assert response.status_code == 200, response.json()
        return {t["id"] for t in response.json()["results"]}

    assert ids("regime=EU") == {str(old.id), str(pricey.id)}
    assert ids("regime=CN") == set()
    assert ids("outcome=review") == {str(old.id), str(pricey.id)}
    assert ids("outcome=deny") == set()
    assert ids("destination=DE") == {str(old.id), str(pricey.id)}
    assert ids("older_than_hours=24") == {str(old.id)}
    assert ids("price_min=1000") == {str(pricey.id)}
    assert ids("price_max=1000") == {str(old.id)}
    assert officer_client.get("/api/v1/reviews/?outcome=maybe").status_code == 400


def test_a_regulators_approval_is_evidence_two_officers_accept_not_an_officers_approval(
    client_for, rulepacks, officer, second_officer, buyer_us, provider_cn, cn_important,
):
    trade = checked(buyer_us, cn_important)
    assert (trade.status, trade.decision.outcome) == ("needs_documents", "needs_approval")
    url = f"/api/v1/trades/{trade.id}/approve/"

    for who in (officer, second_officer):
        refused = client_for(who).post(url, {"reason": "CAC approval letter seen, ref 2026-441"}, format="json")
        assert refused.status_code == 409 and refused.json()["code"] == "requirements_outstanding"
    assert not Review.objects.filter(subject_id=trade.id).exists()

    assessment = upload_document(client_for(provider_cn), trade.id, "cn_security_assessment")
    accept_document(client_for(officer), assessment["id"], reason="CAC approval letter seen, ref 2026-441")
    accept_document(client_for(second_officer), assessment["id"], reason="confirmed against the CAC register")
    trade = trade_check_compliance(trade_id=trade.id)

    assert trade.status == "approved"
    finding = next(f for f in trade.decision.decision["findings"] if f["rule"] == "CN-IMP-1")
    assert "satisfied by cn_security_assessment" in finding["explanation"] and finding["four_eyes"]


def test_one_officer_suffices_for_a_review_outcome(client_for, rulepacks, officer, buyer_eu, eu_health):
    trade = checked(buyer_eu, eu_health)

    response = client_for(officer).post(
        f"/api/v1/trades/{trade.id}/approve/", {"reason": "explicit consent on file"}, format="json"
    )

    assert response.json()["status"] == "approved"


def test_an_engine_deny_is_final(client_for, rulepacks, officer, buyer_ir, eu_public):
    trade = checked(buyer_ir, eu_public)

    response = client_for(officer).post(f"/api/v1/trades/{trade.id}/approve/", {"reason": "looks fine"}, format="json")

    assert trade.status == "rejected" and response.status_code == 409


def test_approval_conditions_shorten_the_grant(client_for, rulepacks, officer, buyer_eu, provider_eu):
    dataset = DatasetFactory(
        provider=provider_eu.organisation,
        classification="sensitive_personal",
        categories=["health"],
        subjects=10,
        licence={"term_days": 365},
    )
    trade = checked(buyer_eu, dataset)

    response = client_for(officer).post(
        f"/api/v1/trades/{trade.id}/approve/",
        {"reason": "research use only", "conditions": {"grant_valid_days": 90}},
        format="json",
    )
    trade_settle(trade_id=trade.id)

    assert response.status_code == 200
    grant = Trade.objects.get(pk=trade.id).grant
    assert grant.valid_until - grant.valid_from == timedelta(days=90)
    assert Review.objects.get(subject_id=trade.id).conditions == {"grant_valid_days": 90}
    bad = client_for(officer).post(
        f"/api/v1/trades/{trade.id}/approve/", {"reason": "x", "conditions": {"export_to_mars": True}}, format="json"
    )
    assert bad.status_code == 400


def test_evidence_pack_has_everything_a_regulator_asks_for(
    client_for, rulepacks, officer, buyer_us, provider_eu, eu_personal, buyer_eu
):
    trade = checked(buyer_us, eu_personal)
    for code in ("eu_scc", "eu_tia"):
        accept_document(client_for(officer), upload_document(client_for(buyer_us), trade.id, code)["id"])
    trade = trade_check_compliance(trade_id=trade.id)
    trade_settle(trade_id=trade.id)

    pack = client_for(officer).get(f"/api/v1/trades/{trade.id}/evidence/").json()

    assert pack["trade"]["status"] == "settled"
    assert pack["facts"]["buyer"]["jurisdiction"] == "US"
    assert pack["decision"]["outcome"] == "allow" and "eu@2026.11.27" in pack["decision"]["rulepacks"]
    assert {p["ref"] for p in pack["rulepacks"]} == set(pack["decision"]["rulepacks"]) and all(
        p["checksum"] for p in pack["rulepacks"]
    )
    assert [(e["code"], e["status"], e["reviewed_by"]) for e in pack["evidence"]] == [
        ("eu_scc", "accepted", officer.user.username), ("eu_tia", "accepted", officer.user.username)]
    assert [m["kind"] for m in pack["money"]] == ["hold", "settle"]
    assert pack["grant"]["valid_from"]
    kinds = [a["kind"] for a in pack["audit"]]
    assert (
        kinds.count("trade.decided") == 2
        and "evidence.added" in kinds
        and "evidence.accepted" in kinds
        and "grant.issued" in kinds
    )
    assert all(a["hash"] and a["prev_hash"] for a in pack["audit"])
    assert (
        client_for(buyer_us).get(f"/api/v1/trades/{trade.id}/evidence/").status_code == 200
    )  # a party may keep a copy
    assert client_for(buyer_eu).get(f"/api/v1/trades/{trade.id}/evidence/").status_code == 404


def test_other_organisations_cannot_use_review_endpoints(
    client_for, rulepacks, buyer_us, provider_eu, eu_health, buyer_eu
):
    trade = checked(buyer_eu, eu_health)
    for member in (buyer_us, provider_eu, buyer_eu):
        assert client_for(member).get("/api/v1/reviews/").status_code == 403
        assert (
            client_for(member).post(f"/api/v1/trades/{trade.id}/approve/", {"reason": "x"}, format="json").status_code
            == 403
        )
    stranger = MembershipFactory(organisation=OrganisationFactory(), role="buyer")
    assert client_for(stranger).get(f"/api/v1/trades/{trade.id}/evidence/").status_code == 404


@pytest.mark.parametrize("query", ["older_than_hours=1e16", "older_than_hours=-1", "older_than_hours=soon"])
def test_out_of_range_ages_are_400s_not_500s(client_for, officer, query):
    """Found by schemathesis: an unbounded age overflowed timedelta."""
    response = client_for(officer).get(f"/api/v1/reviews/?{query}")

    assert response.status_code == 400 and "older_than_hours" in response.json()["fields"]
