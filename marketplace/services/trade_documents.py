"""Evidence for a trade's requirements: adding it re-checks a trade that was waiting for it."""

import hashlib
from datetime import date

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from config.errors import ApplicationError
from marketplace.errors import TradeTransitionNotAllowedError
from marketplace.models import Membership, Trade, TradeDocument
from marketplace.services.events import trade_event_emit
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock
from marketplace.trade_lifecycle import CLOSED

# What a compliance document may be, recognised by its first bytes, not by what the client claims.
_SIGNATURES = {"application/pdf": (b"%PDF-",), "image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",)}


class UploadRejectedError(ApplicationError):
    code = "upload_rejected"
    status_code = 400
    default_message = "The file is not an accepted document."


def document_sniff(upload: UploadedFile) -> str:
    """The upload's content type if it is a PDF, PNG, JPEG or UTF-8 text within the size limit."""
    if upload.size > settings.ELEMENTA_MAX_UPLOAD_BYTES:
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


@transaction.atomic
def trade_document_add(
    *, trade_id: object, membership: Membership, code: str, reference: str = "", approved_on: date | None = None,
    valid_until: date | None = None, upload: UploadedFile | None = None,
) -> TradeDocument:
    """Record evidence from the buyer or the provider; a trade in `needs_documents` goes back to
    `checking` (the check is enqueued after commit)."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise Trade.DoesNotExist(f"no trade {trade_id}")
    if trade.status in CLOSED:
        raise TradeTransitionNotAllowedError(f"The trade is {trade.status}; it takes no more documents.")
    document = TradeDocument(
        trade=trade, code=code, reference=reference, approved_on=approved_on, valid_until=valid_until,
        organisation=membership.organisation, uploaded_by=membership.user,
    )
    if upload is not None:
        document.content_type = document_sniff(upload)
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        document.sha256, document.size = digest.hexdigest(), upload.size
        document.file.save(upload.name or "document", upload, save=False)
    document.save()
    trade_event_emit(kind="evidence.added", trade=trade, actor=membership.user, data={
        "document": str(document.id), "code": code, "reference": reference, "approved_on": approved_on, "valid_until": valid_until,
        "sha256": document.sha256, "organisation": str(membership.organisation_id)})
    if trade.status == Trade.Status.NEEDS_DOCUMENTS:
        trade_apply_transition(trade=trade, to=Trade.Status.CHECKING, actor=membership.user, reason=f"evidence added: {code} {reference}".strip())
    return document
