"""Evidence over HTTP: documents on a trade re-check it; standing mechanisms apply to every trade."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.models import OrganisationMechanism, Trade, TradeDocument
from tests.factories import MembershipFactory, TradeFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def waiting_trade(buyer, dataset) -> Trade:
    return TradeFactory(dataset=dataset, buyer=buyer.organisation, status=Trade.Status.NEEDS_DOCUMENTS)


def test_buyer_adds_evidence_and_the_trade_goes_back_to_checking(client_for, buyer_us, eu_personal, django_capture_on_commit_callbacks):
    trade = waiting_trade(buyer_us, eu_personal)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/",
                                             {"code": "eu_scc", "reference": "SCC module 1, signed 2026-11-01"}, format="json")

    assert response.status_code == 201, response.json()
    trade.refresh_from_db()
    assert trade.status == Trade.Status.CHECKING
    assert trade.events.last().reason == "evidence added: eu_scc SCC module 1, signed 2026-11-01"
    assert len(callbacks) == 1  # the re-check, after commit


def test_provider_uploads_a_pdf_which_is_stored_with_its_checksum(client_for, provider_eu, buyer_us, eu_personal):
    trade = waiting_trade(buyer_us, eu_personal)
    upload = SimpleUploadedFile("tia.pdf", PDF, content_type="application/pdf")

    response = client_for(provider_eu).post(f"/api/v1/trades/{trade.id}/documents/",
                                            {"code": "eu_tia", "approved_on": "2026-10-01", "file": upload}, format="multipart")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["content_type"], body["size"], body["sha256"]) == ("application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest())
    document = TradeDocument.objects.get()
    assert document.file.read() == PDF and document.organisation == provider_eu.organisation
    listed = client_for(buyer_us).get(f"/api/v1/trades/{trade.id}/documents/").json()
    assert [d["code"] for d in listed] == ["eu_tia"]


@pytest.mark.parametrize(("name", "content", "content_type"), [
    ("evil.exe", b"MZ\x90\x00\x03" + bytes(range(256)) * 8, "application/pdf"),   # binary posing as a PDF
    ("big.txt", b"a" * (10 * 1024 * 1024 + 1), "text/plain"),                      # over the limit
])
def test_uploads_outside_the_limits_are_refused_and_change_nothing(client_for, buyer_us, eu_personal, name, content, content_type):
    trade = waiting_trade(buyer_us, eu_personal)

    response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/",
                                         {"code": "eu_scc", "file": SimpleUploadedFile(name, content, content_type=content_type)},
                                         format="multipart")

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


def test_only_the_parties_add_documents(client_for, buyer_us, buyer_eu, officer, eu_personal):
    trade = waiting_trade(buyer_us, eu_personal)
    url = f"/api/v1/trades/{trade.id}/documents/"

    assert client_for(buyer_eu).post(url, {"code": "eu_scc"}, format="json").status_code == 404
    assert client_for(buyer_eu).get(url).status_code == 404
    assert client_for(officer).post(url, {"code": "eu_scc"}, format="json").status_code == 403
    assert client_for(officer).get(url).status_code == 200
    assert not TradeDocument.objects.exists()


def test_a_closed_trade_takes_no_documents(client_for, buyer_us, eu_personal):
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_us.organisation, status=Trade.Status.REJECTED)

    response = client_for(buyer_us).post(f"/api/v1/trades/{trade.id}/documents/", {"code": "eu_scc"}, format="json")

    assert response.status_code == 409


def test_standing_mechanisms_are_per_organisation(client_for, buyer_us, buyer_eu):
    mine = client_for(buyer_us).post("/api/v1/mechanisms/", {"code": "eu_scc", "reference": "SCC 2026", "valid_until": "2027-12-31"}, format="json")
    assert mine.status_code == 201, mine.json()
    colleague = MembershipFactory(organisation=buyer_us.organisation, role="buyer")

    assert [m["code"] for m in client_for(colleague).get("/api/v1/mechanisms/").json()["results"]] == ["eu_scc"]
    assert client_for(buyer_eu).get("/api/v1/mechanisms/").json()["count"] == 0
    assert client_for(buyer_eu).delete(f"/api/v1/mechanisms/{mine.json()['id']}/").status_code == 404
    assert client_for(colleague).delete(f"/api/v1/mechanisms/{mine.json()['id']}/").status_code == 204
    assert not OrganisationMechanism.objects.exists()


def test_preview_counts_standing_mechanisms_and_proposed_ones(client_for, rulepacks, buyer_us, eu_personal):
    buyer = client_for(buyer_us)
    url = f"/api/v1/datasets/{eu_personal.id}/compliance-preview/"

    assert buyer.get(url).json()["requirements"] == [["eu_scc"], ["eu_tia"]]
    assert buyer.get(url + "?mechanisms=eu_scc").json()["requirements"] == [["eu_tia"]]
    buyer.post("/api/v1/mechanisms/", {"code": "eu_scc"}, format="json")
    buyer.post("/api/v1/mechanisms/", {"code": "eu_tia", "valid_until": "2020-01-01"}, format="json")  # expired
    assert buyer.get(url).json()["requirements"] == [["eu_tia"]]
    assert buyer.get(url + "?mechanisms=eu_tia").json()["outcome"] == "allow"
    assert buyer.get(url + "?mechanisms=bogus").status_code == 400
