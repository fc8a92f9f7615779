"""The compliance gate cannot be walked around, end to end: HTTP API → commit → a real worker.

Each test is an attack that used to work: a buyer's word standing for evidence or for where it is
established, empty evidence, an officer approving over open requirements, one officer where two
are needed."""

import pytest

from marketplace.models import Membership, Settlement, Trade
from tests.conftest import wait_for_status
from tests.evidence import accept_document, upload_document
from tests.factories import DatasetFactory, MembershipFactory, OrganisationFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DECIDED = {"settled", "rejected", "cancelled", "needs_documents", "in_review"}


@pytest.fixture(autouse=True)
def _worker(celery_worker, rulepacks):
    """The session's worker process and the shipped packs."""


def member(name: str, jurisdiction: str, role: str = "buyer") -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name=name, jurisdiction=jurisdiction), role=role
    )


@pytest.fixture
def buyer_sg(db: None) -> Membership:
    return member("Lion City Analytics", "SG")


@pytest.fixture
def buyer_ru(db: None) -> Membership:
    return member("Volga Data", "RU")


@pytest.fixture
def second_officer(operator) -> Membership:
    return MembershipFactory.create(organisation=operator, role=Membership.Role.OFFICER)


@pytest.fixture
def cn_subscribers(provider_cn):
    return DatasetFactory(provider=provider_cn.organisation, title="Guangdong mobile subscribers", subjects=150_000,
                          subject_jurisdictions=["CN"], pi_duties_attested=True)


@pytest.fixture
def cn_important(provider_cn):
    return DatasetFactory(
        provider=provider_cn.organisation,
        title="East China logistics hub throughput",
        classification="important",
        categories=["statistics"],
        subjects=0,
        subject_jurisdictions=["CN"],
    )


def buy(client, dataset, **extra) -> str:
    response = client.post("/api/v1/trades/", {"dataset": str(dataset.id), **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def decided(client, trade_id: str) -> dict:
    wait_for_status(trade_id, DECIDED)
    return client.get(f"/api/v1/trades/{trade_id}/").json()


def rules(body: dict) -> dict[str, str]:
    return {f["rule"]: f["outcome"] for f in body["decision"]["findings"]}


# 1. The buyer's word satisfies the law -------------------------------------------------------

def test_mechanisms_named_at_purchase_satisfy_nothing(client_for, buyer_us, eu_personal):
    buyer = client_for(buyer_us)
    trade_id = buy(buyer, eu_personal, mechanisms=[{"code": "eu_scc"}, {"code": "eu_tia"}])

    body = decided(buyer, trade_id)

    assert body["status"] == "needs_documents"
    assert body["decision"]["requirements"] == [["eu_scc"], ["eu_tia"]]
    assert "satisfied" not in " ".join(f["explanation"] for f in body["decision"]["findings"])
    assert body["mechanisms"] == [{"code": "eu_scc"}, {"code": "eu_tia"}]  # kept as the buyer's stated intention
    assert not Settlement.objects.filter(trade_id=trade_id).exists()


def test_a_claimed_chinese_standard_contract_satisfies_nothing(client_for, buyer_sg, cn_subscribers):
    buyer = client_for(buyer_sg)
    trade_id = buy(buyer, cn_subscribers, mechanisms=[{"code": "cn_standard_contract"}])

    body = decided(buyer, trade_id)

    assert body["status"] == "needs_documents"
    assert ["cn_standard_contract", "cn_certification"] in body["decision"]["requirements"]


# 2. The buyer's word on destination decides the regime -----------------------------------------

def test_a_singapore_buyer_declaring_china_is_still_exporting_from_china(client_for, buyer_sg, cn_subscribers):
    buyer = client_for(buyer_sg)
    honest = decided(buyer, buy(buyer, cn_subscribers))
    claimed = decided(buyer, buy(buyer, cn_subscribers, destination="CN"))

    assert claimed["status"] == honest["status"] == "needs_documents"
    assert claimed["decision"]["requirements"] == honest["decision"]["requirements"]
    assert claimed["licence"]["permitted_destinations"] == ["SG", "CN"]  # the declaration binds the buyer


def test_a_us_buyer_declaring_germany_still_needs_scc_and_tia(client_for, buyer_us, eu_personal):
    buyer = client_for(buyer_us)

    body = decided(buyer, buy(buyer, eu_personal, destination="DE"))

    assert body["status"] == "needs_documents"
    assert body["decision"]["requirements"] == [["eu_scc"], ["eu_tia"]]


# 3. Empty evidence counts; no person ever looks at evidence ----------------------------------------

def test_evidence_settles_a_trade_only_after_an_officer_accepts_it(
    client_for, buyer_us, provider_eu, officer, eu_personal
):
    buyer = client_for(buyer_us)
    trade_id = buy(buyer, eu_personal)
    decided(buyer, trade_id)

    empty = buyer.post(f"/api/v1/trades/{trade_id}/documents/", {"code": "eu_tia"}, format="json")
    assert empty.status_code == 400 and empty.json()["code"] == "evidence_incomplete"
    scc = upload_document(buyer, trade_id, "eu_scc")
    tia = upload_document(client_for(provider_eu), trade_id, "eu_tia")
    assert Trade.objects.get(pk=trade_id).status == "needs_documents"

    queue = client_for(officer).get("/api/v1/reviews/?item=evidence").json()["results"]
    assert [(t["id"], t["pending_evidence"]) for t in queue] == [(trade_id, True)]
    accept_document(client_for(officer), scc["id"])
    assert wait_for_status(trade_id, DECIDED - {"in_review"}).status == "needs_documents"  # the TIA is still pending
    accept_document(client_for(officer), tia["id"])

    settled = wait_for_status(trade_id, {"settled", "rejected"})
    assert settled.status == "settled"
    finding = next(
        f for f in buyer.get(f"/api/v1/trades/{trade_id}/").json()["decision"]["findings"] if f["rule"] == "EU-SCC-1"
    )
    assert "satisfied by eu_scc, eu_tia" in finding["explanation"]
    assert client_for(officer).get("/api/v1/reviews/?item=evidence").json()["count"] == 0


# 4. An officer's approval skips open requirements -------------------------------------------------

def test_no_officer_approves_over_open_requirements(client_for, buyer_ru, officer, second_officer, eu_personal):
    buyer = client_for(buyer_ru)
    trade_id = buy(buyer, eu_personal)
    body = decided(buyer, trade_id)
    assert body["status"] == "in_review" and body["decision"]["requirements"] == [["eu_scc"], ["eu_tia"]]

    for who in (officer, second_officer):
        refused = client_for(who).post(f"/api/v1/trades/{trade_id}/approve/", {"reason": "looks fine"}, format="json")
        assert refused.status_code == 409 and refused.json()["code"] == "requirements_outstanding"
        assert refused.json()["fields"]["requirements"] == [["eu_scc"], ["eu_tia"]]
    assert Trade.objects.get(pk=trade_id).status == "in_review"

    for code in ("eu_scc", "eu_tia"):
        accept_document(client_for(officer), upload_document(buyer, trade_id, code)["id"])
    rechecked = wait_for_status(trade_id, {"in_review"})
    assert rechecked.decision.decision["requirements"] == []
    approved = client_for(second_officer).post(
        f"/api/v1/trades/{trade_id}/approve/", {"reason": "sanctions screen cleared"}, format="json"
    )
    assert approved.status_code == 200 and approved.json()["awaiting"] is None
    assert wait_for_status(trade_id, {"settled"}).status == "settled"


def test_officers_cannot_approve_a_trade_waiting_for_documents(
    client_for, buyer_sg, officer, second_officer, cn_important
):
    buyer = client_for(buyer_sg)
    trade_id = buy(buyer, cn_important)
    body = decided(buyer, trade_id)
    assert body["status"] == "needs_documents" and body["decision"]["requirements"] == [["cn_security_assessment"]]

    for who in (officer, second_officer):  # two officers no longer stand in for a CAC security assessment
        refused = client_for(who).post(f"/api/v1/trades/{trade_id}/approve/", {"reason": "urgent"}, format="json")
        assert refused.status_code == 409 and refused.json()["code"] == "requirements_outstanding"
    assert Trade.objects.get(pk=trade_id).status == "needs_documents"
    rejected = client_for(officer).post(
        f"/api/v1/trades/{trade_id}/reject/", {"reason": "no assessment on file"}, format="json"
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


# 5. Four eyes only looked at the overall outcome ---------------------------------------------------

def test_four_eyes_follow_any_finding_that_needs_an_approval(
    client_for, buyer_ru, provider_cn, officer, second_officer, cn_important
):
    buyer = client_for(buyer_ru)
    trade_id = buy(buyer, cn_important)
    body = decided(buyer, trade_id)
    assert body["status"] == "in_review"
    assert rules(body)["SAN-RU-1"] == "review" and rules(body)["CN-IMP-1"] == "needs_approval"

    refused = client_for(officer).post(f"/api/v1/trades/{trade_id}/approve/", {"reason": "ok"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "requirements_outstanding"

    assessment = upload_document(client_for(provider_cn), trade_id, "cn_security_assessment")
    assert accept_document(client_for(officer), assessment["id"])["awaiting"] == "second_officer"
    assert Trade.objects.get(pk=trade_id).status == "in_review"  # one officer's acceptance re-checks nothing
    accept_document(client_for(second_officer), assessment["id"])
    rechecked = wait_for_status(trade_id, {"in_review"})
    assert rechecked.decision.decision["requirements"] == []

    first = client_for(officer).post(
        f"/api/v1/trades/{trade_id}/approve/", {"reason": "sanctions screen cleared"}, format="json"
    )
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["awaiting"]) == ("in_review", "second_officer")
    again = client_for(officer).post(f"/api/v1/trades/{trade_id}/approve/", {"reason": "me again"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "second_officer_required"
    second = client_for(second_officer).post(f"/api/v1/trades/{trade_id}/approve/", {"reason": "concur"}, format="json")
    assert (second.json()["status"], second.json()["awaiting"]) == ("approved", None)
    assert wait_for_status(trade_id, {"settled"}).status == "settled"


def test_a_declared_purpose_exemption_settles_flagged_with_the_declaration_recorded(
    client_for, buyer_sg, cn_subscribers
):
    buyer = client_for(buyer_sg)
    trade_id = buy(buyer, cn_subscribers, purpose="contract_with_subject")

    wait_for_status(trade_id, {"settled", "rejected", "needs_documents", "in_review"})
    body = buyer.get(f"/api/v1/trades/{trade_id}/").json()

    assert body["status"] == "settled" and body["decision"]["outcome"] == "allow_flagged"
    assert rules(body)["CN-EX-CONTRACT"] == "allow_flagged"
    from compliance.models import AuditEvent
    attestation = AuditEvent.objects.get(kind="trade.buyer_attestation", subject_id=trade_id)
    assert attestation.data["purpose"] == "contract_with_subject" and attestation.actor_label == buyer_sg.user.username
