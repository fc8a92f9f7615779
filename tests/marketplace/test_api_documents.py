"""Evidence over HTTP: a document or standing mechanism is a claim until an officer accepts it;
only accepted evidence re-checks a trade and satisfies a requirement."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import AuditEvent
from marketplace.models import OrganisationMechanism, Trade, TradeDocument
from tests.evidence import PDF, accept_document, accept_mechanism, evidence_payload, upload_document, upload_mechanism
from tests.factories import MembershipFactory, TradeFactory

pytestmark = pytest.mark.django_db


def waiting_trade(buyer, dataset) -> Trade:
    return TradeFactory.create(dataset=dataset, buyer=buyer.organisation, status=Trade.Status.NEEDS_DOCUMENTS)


@pytest.fixture
def second_officer(operator):
    return MembershipFactory(organisation=operator, role="officer")


def test_uploaded_evidence_waits_for_an_officer_and_does_not_move_the_trade(
    client_for, buyer_us, eu_personal, django_capture_on_commit_callbacks,
):
    trade = waiting_trade(buyer_us, eu_personal)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = upload_document(client_for(buyer_us), trade.id, "eu_scc")

    assert (body["status"], body["awaiting"]) == ("pending", None)
    trade.refresh_from_db()
    assert trade.status == Trade.Status.NEEDS_DOCUMENTS
    assert not [c for c in callbacks if "check" in repr(c)]  # no re-check: nothing was accepted


def test_an_officer_accepts_and_the_trade_is_rechecked(
    client_for, buyer_us, officer, eu_personal, django_capture_on_commit_callbacks
):
    trade = waiting_trade(buyer_us, eu_personal)
    document = upload_document(client_for(buyer_us), trade.id, "eu_scc")

    with django_capture_on_commit_callbacks(execute=False):
        body = accept_document(client_for(officer), document["id"], reason="module 1 SCC, both signatures present")

    assert (body["status"], body["reviewed_by"], body["review_reason"]) == (
        "accepted",
        officer.user.username,
        "module 1 SCC, both signatures present",
    )
    trade.refresh_from_db()
    assert trade.status == Trade.Status.CHECKING
    assert trade.events.last().reason == "evidence accepted: eu_scc EU_SCC-2026-001"
    assert AuditEvent.objects.filter(kind="evidence.accepted", actor=officer.user, subject_id=str(trade.id)).exists()


def test_a_rejection_is_shown_to_the_uploader_with_the_reason(client_for, buyer_us, officer, eu_personal):
    trade = waiting_trade(buyer_us, eu_personal)
    document = upload_document(client_for(buyer_us), trade.id, "eu_tia")

    response = client_for(officer).post(
        f"/api/v1/documents/{document['id']}/reject/", {"reason": "unsigned draft"}, format="json"
    )

    assert response.status_code == 200 and response.json()["status"] == "rejected"
    listed = client_for(buyer_us).get(f"/api/v1/trades/{trade.id}/documents/").json()
    assert [(d["status"], d["review_reason"]) for d in listed] == [("rejected", "unsigned draft")]
    trade.refresh_from_db()
    assert trade.status == Trade.Status.NEEDS_DOCUMENTS
    again = client_for(officer).post(
        f"/api/v1/documents/{document['id']}/accept/", {"reason": "changed my mind"}, format="json"
    )
    assert again.status_code == 409 and again.json()["code"] == "evidence_not_pending"


@pytest.mark.parametrize(("payload", "missing"), [
    ({"code": "eu_tia"}, {"file", "reference", "approved_on"}),
    ({"code": "eu_tia", "reference": "TIA-7", "approved_on": "2026-01-05"}, {"file"}),
])
def test_a_claim_without_its_document_is_refused_as_json(client_for, buyer_us, eu_personal, payload, missing):
    trade = waiting_trade(buyer_us, eu_personal)

    response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/", payload, format="json")

    assert response.status_code == 400 and response.json()["code"] == "evidence_incomplete"
    assert set(response.json()["fields"]) == missing
    assert not TradeDocument.objects.exists()


@pytest.mark.parametrize("drop", ["reference", "approved_on", "file"])
def test_evidence_needs_the_file_a_reference_and_a_date(client_for, buyer_us, eu_personal, drop):
    trade = waiting_trade(buyer_us, eu_personal)
    payload = evidence_payload("eu_scc")
    del payload[drop]

    response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/", payload, format="multipart")

    assert response.status_code == 400 and response.json()["code"] == "evidence_incomplete"
    assert list(response.json()["fields"]) == [drop]
    assert not TradeDocument.objects.exists()


def test_provider_uploads_a_pdf_which_is_stored_with_its_checksum(client_for, provider_eu, buyer_us, eu_personal):
    trade = waiting_trade(buyer_us, eu_personal)

    body = upload_document(client_for(provider_eu), trade.id, "eu_tia", approved_on="2026-10-01")

    assert (body["content_type"], body["size"], body["sha256"]) == (
        "application/pdf",
        len(PDF),
        hashlib.sha256(PDF).hexdigest(),
    )
    document = TradeDocument.objects.get()
    assert document.file.read() == PDF and document.organisation == provider_eu.organisation
    listed = client_for(buyer_us).get(f"/api/v1/trades/{trade.id}/documents/").json()
    assert [d["code"] for d in listed] == ["eu_tia"]


@pytest.mark.parametrize(("name", "content", "content_type"), [
    ("evil.exe", b"MZ\x90\x00\x03" + bytes(range(256)) * 8, "application/pdf"),   # binary posing as a PDF
    ("big.txt", b"a" * (10 * 1024 * 1024 + 1), "text/plain"),                      # over the limit
])
def test_uploads_outside_the_limits_are_refused_and_change_nothing(
    client_for, buyer_us, eu_personal, name, content, content_type
):
    trade = waiting_trade(buyer_us, eu_personal)
    payload = evidence_payload("eu_scc", file=SimpleUploadedFile(name, content, content_type=content_type))

    response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/", payload, format="multipart")

    assert response.status_code == 400 and response.json()["code"] == "upload_rejected"
    assert not TradeDocument.objects.exists()
    trade.refresh_from_db()
    assert trade.status == Trade.Status.NEEDS_DOCUMENTS


@pytest.mark.parametrize(("payload", "field"), [
    ({"code": "handshake"}, "code"),
    ({}, "code"),
    ({"code": "eu_scc", "approved_on": "2026-10-01", "valid_until": "2026-09-01"}, "valid_until"),
    ({"code": "eu_scc", "valid_until": "soon"}, "valid_until"),
])
def test_bad_document_fields(client_for, buyer_us, eu_personal, payload, field):
    trade = waiting_trade(buyer_us, eu_personal)

    response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/", payload, format="json")

    assert response.status_code == 400 and field in response.json()["fields"]


def test_only_the_parties_add_documents_and_only_officers_decide(
    client_for, buyer_us, buyer_eu, provider_eu, officer, eu_personal
):
    trade = waiting_trade(buyer_us, eu_personal)
    url = f"/api/v1/trades/{trade.id}/documents/"

    assert client_for(buyer_eu).post(url, evidence_payload("eu_scc"), format="multipart").status_code == 404
    assert client_for(buyer_eu).get(url).status_code == 404
    assert client_for(officer).post(url, evidence_payload("eu_scc"), format="multipart").status_code == 403
    assert client_for(officer).get(url).status_code == 200
    document = upload_document(client_for(buyer_us), trade.id, "eu_scc")
    for member in (buyer_us, provider_eu, buyer_eu):
        refused = client_for(member).post(
            f"/api/v1/documents/{document['id']}/accept/", {"reason": "mine"}, format="json"
        )
        assert refused.status_code == 403
        assert client_for(member).get("/api/v1/documents/").status_code == 403
    assert TradeDocument.objects.get().status == "pending"


def test_a_closed_trade_takes_no_documents(client_for, buyer_us, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_us.organisation, status=Trade.Status.REJECTED)

    response = client_for(buyer_us).post(
        f"/api/v1/trades/{trade.id}/documents/", evidence_payload("eu_scc"), format="multipart"
    )

    assert response.status_code == 409


def test_a_regulators_approval_needs_two_officers(
    client_for, provider_cn, buyer_us, officer, second_officer, cn_personal
):
    trade = waiting_trade(buyer_us, cn_personal)
    document = upload_document(client_for(provider_cn), trade.id, "cn_security_assessment")

    first = accept_document(client_for(officer), document["id"])
    assert (first["status"], first["awaiting"]) == ("pending", "second_officer")
    same = client_for(officer).post(f"/api/v1/documents/{document['id']}/accept/", {"reason": "again"}, format="json")
    assert same.status_code == 409 and same.json()["code"] == "second_officer_required"
    trade.refresh_from_db()
    assert trade.status == Trade.Status.NEEDS_DOCUMENTS

    second = accept_document(client_for(second_officer), document["id"])
    assert (second["status"], second["awaiting"]) == ("accepted", None)
    trade.refresh_from_db()
    assert trade.status == Trade.Status.CHECKING


def test_nobody_reviews_their_own_evidence(client_for, operator, officer, second_officer):
    """An officer's own organisation keeps a mechanism on file: that officer cannot accept it, and
    neither can a colleague (officers decide nothing of their own organisation)."""
    mine = upload_mechanism(client_for(officer), "eu_scc")

    refused = client_for(officer).post(
        f"/api/v1/mechanisms/{mine['id']}/accept/", {"reason": "looks fine"}, format="json"
    )
    colleague = client_for(second_officer).post(
        f"/api/v1/mechanisms/{mine['id']}/accept/", {"reason": "looks fine"}, format="json"
    )

    assert refused.status_code == 403 and refused.json()["code"] == "own_evidence"
    assert colleague.status_code == 403 and colleague.json()["code"] == "own_organisation"
    assert OrganisationMechanism.objects.get().status == "pending"


def test_standing_mechanisms_are_per_organisation(client_for, buyer_us, buyer_eu, officer):
    mine = upload_mechanism(client_for(buyer_us), "eu_scc", valid_until="2027-12-31")
    colleague = MembershipFactory(organisation=buyer_us.organisation, role="buyer")

    assert [m["code"] for m in client_for(colleague).get("/api/v1/mechanisms/").json()["results"]] == ["eu_scc"]
    assert client_for(buyer_eu).get("/api/v1/mechanisms/").json()["count"] == 0
    assert client_for(buyer_eu).delete(f"/api/v1/mechanisms/{mine['id']}/").status_code == 404
    assert (
        client_for(buyer_eu)
        .post(f"/api/v1/mechanisms/{mine['id']}/accept/", {"reason": "x"}, format="json")
        .status_code
        == 403
    )
    assert [m["id"] for m in client_for(officer).get("/api/v1/mechanisms/?status=pending").json()["results"]] == [
        mine["id"]
    ]
    assert client_for(officer).delete(f"/api/v1/mechanisms/{mine['id']}/").status_code == 403
    assert client_for(colleague).delete(f"/api/v1/mechanisms/{mine['id']}/").status_code == 204
    assert not OrganisationMechanism.objects.exists()


def test_preview_counts_only_accepted_standing_mechanisms(client_for, rulepacks, buyer_us, officer, eu_personal):
    buyer = client_for(buyer_us)
    url = f"/api/v1/datasets/{eu_personal.id}/compliance-preview/"

    assert buyer.get(url).json()["requirements"] == [["eu_scc"], ["eu_tia"]]
    assert buyer.get(url + "?mechanisms=eu_scc").json()["requirements"] == [["eu_tia"]]  # a "what if", not a fact
    scc = upload_mechanism(buyer, "eu_scc")
    tia = upload_mechanism(buyer, "eu_tia", approved_on="2019-01-01", valid_until="2020-01-01")  # expired
    assert buyer.get(url).json()["requirements"] == [["eu_scc"], ["eu_tia"]]  # pending: counts for nothing
    accept_mechanism(client_for(officer), scc["id"])
    accept_mechanism(client_for(officer), tia["id"])
    assert buyer.get(url).json()["requirements"] == [["eu_tia"]]
    assert buyer.get(url + "?mechanisms=eu_tia").json()["outcome"] == "allow"
    assert buyer.get(url + "?mechanisms=bogus").status_code == 400


def test_accepting_a_standing_mechanism_rechecks_the_organisations_waiting_trades(
    client_for, buyer_us, officer, eu_personal
):
    waiting = waiting_trade(buyer_us, eu_personal)
    settled = TradeFactory(dataset=eu_personal, buyer=buyer_us.organisation, status=Trade.Status.SETTLED)
    scc = upload_mechanism(client_for(buyer_us), "eu_scc")

    accept_mechanism(client_for(officer), scc["id"])

    waiting.refresh_from_db()
    settled.refresh_from_db()
    assert (waiting.status, settled.status) == (Trade.Status.CHECKING, Trade.Status.SETTLED)
