"""Evidence for a trade's requirements. It arrives `pending` and counts for nothing until an
officer accepts it (marketplace.services.evidence_review), which re-checks the trade."""

import hashlib
from datetime import date
from uuid import UUID

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from config.errors import NotFoundError
from marketplace.errors import EvidenceIncompleteError, TradeTransitionNotAllowedError, UploadRejectedError
from marketplace.models import Membership, OrganisationMechanism, TradeDocument
from marketplace.services.events import trade_event_emit
from marketplace.services.trade_transitions import trade_lock
from marketplace.trade_lifecycle import CLOSED

# What a compliance document may be, recognised by its first bytes, not by what the client claims.
_SIGNATURES = {"application/pdf": (b"%PDF-",), "image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",)}


def upload_size(upload: UploadedFile) -> int:
    """The upload's size in bytes. Django's uploads carry it; a file object built without one is
    measured by seeking to its end, so an unknown size is never compared or stored as None."""
    if upload.size is not None:
        return upload.size
    upload.seek(0, 2)
    size = upload.tell()
    upload.seek(0)
    return size


def document_sniff(upload: UploadedFile) -> str:
    """The upload's content type if it is a PDF, PNG, JPEG or UTF-8 text within the size limit."""
    if upload_size(upload) > settings.ELEMENTA_MAX_UPLOAD_BYTES:
        raise UploadRejectedError(fields={"file": [f"at most {settings.ELEMENTA_MAX_UPLOAD_BYTES:,} bytes"]})
    head = upload.read(2048)
    upload.seek(0)
    for content_type, signatures in _SIGNATURES.items():
        if head.startswith(signatures):
            return content_type
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the 2 KiB boundary; anything else is binary
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            raise UploadRejectedError(fields={"file": ["accepted: PDF, PNG, JPEG or plain text"]}) from None
    return "text/plain"


def evidence_require_complete(*, reference: str, approved_on: date | None, upload: UploadedFile | None) -> None:
    """A claim is not evidence: the document itself, its reference and the date it took effect."""
    missing = {}
    if upload is None:
        missing["file"] = ["attach the signed document, approval or filing (PDF, PNG, JPEG or plain text)"]
    if not (reference or "").strip():
        missing["reference"] = ["the document's reference (contract number, approval or filing number)"]
    if approved_on is None:
        missing["approved_on"] = ["the date the document was signed, approved or filed"]
    if missing:
        raise EvidenceIncompleteError(fields=missing)


def evidence_store_file(*, evidence: TradeDocument | OrganisationMechanism, upload: UploadedFile) -> None:
    """Sniff, hash and attach an upload to a TradeDocument or OrganisationMechanism (not yet saved)."""
    evidence.content_type = document_sniff(upload)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    evidence.sha256, evidence.size = digest.hexdigest(), upload_size(upload)
    evidence.file.save(upload.name or "document", upload, save=False)


@transaction.atomic
def trade_document_add(
    *, trade_id: UUID, membership: Membership, code: str, reference: str = "", approved_on: date | None = None,
    valid_until: date | None = None, upload: UploadedFile | None = None,
) -> TradeDocument:
    """Record evidence from the buyer or the provider, `pending` an officer's review. The trade's
    status does not change: accepted evidence re-checks it."""
    evidence_require_complete(reference=reference, approved_on=approved_on, upload=upload)
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise NotFoundError("No such trade.")
    if trade.status in CLOSED:
        raise TradeTransitionNotAllowedError(f"The trade is {trade.status}; it takes no more documents.")
    document = TradeDocument(
        trade=trade, code=code, reference=reference, approved_on=approved_on, valid_until=valid_until,
        organisation=membership.organisation, uploaded_by=membership.user,
    )
    assert upload is not None  # evidence_require_complete
    evidence_store_file(evidence=document, upload=upload)
    document.save()
    trade_event_emit(
        kind="evidence.added",
        trade=trade,
        actor=membership.user,
        data={
            "document": str(document.id),
            "code": code,
            "reference": reference,
            "approved_on": approved_on,
            "valid_until": valid_until,
            "sha256": document.sha256,
            "organisation": str(membership.organisation_id),
            "status": document.status,
        },
    )
    return document
