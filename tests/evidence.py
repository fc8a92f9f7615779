"""Helpers for tests that put evidence on file and have officers decide it, through the HTTP API."""

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def evidence_payload(code: str, **extra: Any) -> dict[str, Any]:
    """A complete piece of evidence: the document, its reference and the date it took effect."""
    return {"code": code, "reference": f"{code.upper()}-2026-001", "approved_on": "2026-01-05",
            "file": SimpleUploadedFile(f"{code}.pdf", PDF, content_type="application/pdf"), **extra}


def upload_document(client: Any, trade_id: object, code: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/trades/{trade_id}/documents/", evidence_payload(code, **extra), format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def upload_mechanism(client: Any, code: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/mechanisms/", evidence_payload(code, **extra), format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def accept_document(
    officer_client: Any, document_id: str, reason: str = "signed copy checked against the register"
) -> dict[str, Any]:
    response = officer_client.post(f"/api/v1/documents/{document_id}/accept/", {"reason": reason}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def accept_mechanism(officer_client: Any, mechanism_id: str, reason: str = "signed copy checked") -> dict[str, Any]:
    response = officer_client.post(f"/api/v1/mechanisms/{mechanism_id}/accept/", {"reason": reason}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()
