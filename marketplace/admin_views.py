"""The officer's trade page in the admin: what it shows (built from the evidence pack) and its
actions (approve or reject through trade_review, download the evidence pack or a document)."""

import json
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from compliance.admin import error_text, is_workspace_officer
from config.errors import ApplicationError, NotFoundError
from config.users import request_user
from marketplace.models import Trade, TradeDocument
from marketplace.services.evidence import trade_evidence_pack
from marketplace.services.evidence_review import trade_document_review
from marketplace.services.trades import REJECTABLE, needs_four_eyes, trade_review

__all__ = [
    "EvidenceDecisionForm",
    "TradeReviewForm",
    "trade_document_decide_view",
    "trade_document_file_view",
    "trade_evidence_view",
    "trade_page_context",
    "trade_review_view",
]


class TradeReviewForm(forms.Form):
    """The same input as POST /api/v1/trades/{id}/approve/ (and /reject/): a reason, and for an
    approval an optional condition on the grant."""

    verdict = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=4000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why: the evidence checked, the legal basis"}),
        help_text="Recorded with the review and shown to both parties in the trade's events.",
    )
    grant_valid_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, label="Grant valid days",
        help_text="Approvals only: access ends this many days after settlement, if sooner than the licence.",
    )


class EvidenceDecisionForm(forms.Form):
    """The same input as POST /api/v1/documents/{id}/accept/ (and /reject/)."""

    verdict = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject")], widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=4000, strip=True, help_text="What was checked; a rejection's reason is shown to the uploader."
    )


def _when(value: Any) -> Any:
    """The evidence pack's ISO strings back to datetimes, so templates format them."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _show(value: Any) -> str:
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(str(v) for v in value) if value else "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value in (None, "") else str(value)


def _row(key: str, value: Any) -> tuple[str, str, bool]:
    text = _show(value)
    return key, text, "\n" in text  # multi-line (JSON) values go in a <pre>


def _fact_sections(facts: dict[str, Any] | None) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """The facts the engine saw, as titled key/value tables: one per object (data, exporter,
    buyer), the scalars under "transfer"; lists of objects stay JSON."""
    if not facts:
        return []
    transfer = [_row(key, value) for key, value in facts.items() if not isinstance(value, dict)]
    sections = [
        (key, [_row(k, v) for k, v in value.items()]) for key, value in facts.items() if isinstance(value, dict)
    ]
    return [("transfer", transfer), *sections] if transfer else sections


def trade_page_context(*, request: HttpRequest, trade: Trade) -> dict[str, Any]:
    """Everything the trade page shows, read from the evidence pack (one source for the page and
    the downloadable JSON)."""
    pack = trade_evidence_pack(trade=trade, viewer=request.user)
    decision = pack["decision"] or {}
    reviews = [{**r, "at": _when(r["at"])} for r in pack["reviews"]]
    approvals = [r for r in reviews if r["verdict"] == "approve" and r["check"] == decision.get("check")]
    return {
        "trade": trade,
        "pack": pack,
        "decision": decision,
        "findings": decision.get("findings", []),
        "fact_sections": _fact_sections(pack["facts"]),
        "evidence": [
            {
                **d,
                "at": _when(d["at"]),
                "file_url": reverse("admin:marketplace_trade_document_file", args=[trade.pk, d["id"]])
                if d["size"]
                else None,
                "decide_url": reverse("admin:marketplace_trade_document_decide", args=[trade.pk, d["id"]])
                if d["status"] == "pending"
                else None,
            }
            for d in pack["evidence"]
        ],
        "can_decide_evidence": is_workspace_officer(request),
        "reviews": reviews,
        "events": [{**e, "at": _when(e["at"])} for e in pack["events"]],
        "money": [{**m, "at": _when(m["at"])} for m in pack["money"]],
        "grant": pack["grant"],
        "waiting_since": trade.waiting_since or trade.status_changed_at,
        "can_review": is_workspace_officer(request) and trade.status in REJECTABLE,
        # A finding that needs a regulator's approval (or asks for it) takes two different officers.
        "four_eyes": needs_four_eyes(decision),
        "approvals": approvals,
        "review_form": TradeReviewForm(),
        "review_url": reverse("admin:marketplace_trade_review", args=[trade.pk]),
        "evidence_url": reverse("admin:marketplace_trade_evidence", args=[trade.pk]),
    }


def trade_review_view(request: HttpRequest, trade_id: Any) -> HttpResponse:
    """POST from the trade page's form: approve or reject through the same service as the API,
    then back to the trade page with what happened."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not is_workspace_officer(request):
        raise PermissionDenied
    page = reverse("admin:marketplace_trade_change", args=[trade_id])
    form = TradeReviewForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = field.replace("_", " ").capitalize()
            messages.error(request, f"{label}: {' '.join(str(e) for e in errors)} Nothing was recorded.")
        return redirect(page)
    data = form.cleaned_data
    approve = data["verdict"] == "approve"
    conditions = {"grant_valid_days": data["grant_valid_days"]} if approve and data.get("grant_valid_days") else None
    try:
        trade = trade_review(
            trade_id=trade_id,
            officer=request_user(request),
            approve=approve,
            reason=data["reason"],
            conditions=conditions,
        )
    except NotFoundError:
        raise Http404("No such trade.") from None
    except ApplicationError as exc:
        messages.error(request, f"Nothing was recorded: {error_text(exc)}")
        return redirect(page)
    if approve and trade.status in REJECTABLE:
        messages.warning(
            request,
            "First approval recorded; the trade is still waiting. A finding needs a regulator's approval "
            "(four eyes), so a second, different officer must approve it too before it can settle.",
        )
    elif approve:
        messages.success(request, "Approved: the trade is approved and settles in the background; reload to follow it.")
    else:
        messages.success(request, "Rejected: the trade is closed; both parties see the reason in its events.")
    return redirect(page)


def trade_evidence_view(request: HttpRequest, trade_id: Any) -> HttpResponse:
    """The evidence pack as a JSON download, the same document as GET /api/v1/trades/{id}/evidence/."""
    if not is_workspace_officer(request):
        raise PermissionDenied
    trade = Trade.objects.filter(pk=trade_id).first()
    if trade is None:
        raise Http404("No such trade.")
    pack = trade_evidence_pack(trade=trade, viewer=request.user)
    response = JsonResponse(pack, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2, "ensure_ascii": False})
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="evidence-{trade.pk}-{stamp}.json"'
    return response


def trade_document_file_view(request: HttpRequest, trade_id: Any, document_id: Any) -> FileResponse:
    """A document's file, as uploaded (its type was checked then: PDF, PNG, JPEG or text)."""
    if not is_workspace_officer(request):
        raise PermissionDenied
    document = TradeDocument.objects.filter(pk=document_id, trade_id=trade_id).first()
    if document is None or not document.file:
        raise Http404("No such document file.")
    name = PurePosixPath(document.file.name).name
    return FileResponse(
        document.file.open("rb"), as_attachment=True, filename=name, content_type=document.content_type or None
    )


def trade_document_decide_view(request: HttpRequest, trade_id: Any, document_id: Any) -> HttpResponse:
    """POST from the evidence table: accept or reject one document through the API's service."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not is_workspace_officer(request):
        raise PermissionDenied
    page = reverse("admin:marketplace_trade_change", args=[trade_id]) + "#evidence"
    if not TradeDocument.objects.filter(pk=document_id, trade_id=trade_id).exists():
        raise Http404("No such document on this trade.")
    form = EvidenceDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A reason is required. Nothing was recorded.")
        return redirect(page)
    accept = form.cleaned_data["verdict"] == "accept"
    try:
        decision = trade_document_review(
            document_id=document_id, officer=request_user(request), accept=accept, reason=form.cleaned_data["reason"]
        )
    except ApplicationError as exc:
        messages.error(request, f"Nothing was recorded: {error_text(exc)}")
        return redirect(page)
    if decision.awaiting:
        messages.warning(
            request,
            "First acceptance recorded: a regulator's approval needs a second, different officer to accept it too.",
        )
    elif accept:
        messages.success(request, "Accepted: the trade is re-checked in the background; reload to follow it.")
    else:
        messages.success(request, "Rejected: the uploader sees your reason on the trade's documents.")
    return redirect(page)
