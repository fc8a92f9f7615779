"""The evidence pack: everything a regulator needs about one trade, in one document."""

from typing import Any

from django.utils import timezone

from compliance.models import AuditEvent, Review, RulePack
from compliance.selectors.facts import facts_for_viewer
from compliance.services.audit import audit_chain
from marketplace.models import LedgerTransaction, Trade


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def trade_evidence_pack(*, trade: Trade, viewer: Any) -> dict[str, Any]:
    """Assembled from the records themselves, so it shows what was decided and why. Pending audit
    events are chained first, so every event in the pack carries its hash. The facts are shown as
    `viewer` may see them (compliance/selectors/facts.py): the exporter's itemised earlier transfers
    only to officers, their totals to the parties."""
    audit_chain()
    trade = Trade.objects.select_related("dataset", "buyer", "provider", "decision").get(pk=trade.pk)
    check = trade.decision
    refs = check.rulepacks if check else []
    packs = {p.ref: p for p in RulePack.objects.all() if p.ref in refs}
    grant = getattr(trade, "grant", None) if hasattr(Trade, "grant") else None
    subjects = [("trade", str(trade.id))] + ([("grant", str(grant.id))] if grant is not None else [])
    audit = AuditEvent.objects.none()
    for subject_type, subject_id in subjects:
        audit = audit | AuditEvent.objects.filter(subject_type=subject_type, subject_id=subject_id)
    return {
        "generated_at": timezone.now().isoformat(),
        "trade": {
            "id": str(trade.id),
            "status": trade.status,
            "created_at": _iso(trade.created_at),
            "settled_at": _iso(trade.settled_at),
            "dataset": {"id": str(trade.dataset_id), "title": trade.dataset.title},
            "buyer": {"id": str(trade.buyer_id), "name": trade.buyer.name, "jurisdiction": trade.buyer.jurisdiction},
            "provider": {
                "id": str(trade.provider_id),
                "name": trade.provider.name,
                "jurisdiction": trade.provider.jurisdiction,
            },
            "destination": trade.destination,
            "purpose": trade.purpose,
            "price": str(trade.price),
            "currency": trade.currency,
            "pricing": trade.pricing,
            "licence": trade.licence,
        },
        "facts": facts_for_viewer(check.facts, user=viewer) if check else None,
        "decision": {
            **check.decision,
            "check": str(check.id),
            "checked_at": _iso(check.created_at),
            "engine_version": check.engine_version,
        }
        if check
        else None,
        "rulepacks": [
            {
                "ref": ref,
                "title": packs[ref].title,
                "effective_from": _iso(packs[ref].effective_from),
                "checksum": packs[ref].checksum,
                "source": packs[ref].source,
            }
            for ref in refs
            if ref in packs
        ],
        "evidence": [
            {
                "id": str(d.id),
                "code": d.code,
                "reference": d.reference,
                "approved_on": _iso(d.approved_on),
                "valid_until": _iso(d.valid_until),
                "sha256": d.sha256,
                "content_type": d.content_type,
                "size": d.size,
                "organisation": str(d.organisation_id),
                "uploaded_by": d.uploaded_by.get_username() if d.uploaded_by else None,
                "at": _iso(d.created_at),
                "status": d.status,
                "reviewed_by": d.reviewed_by_label or None,
                "reviewed_at": _iso(d.reviewed_at),
                "review_reason": d.review_reason,
            }
            for d in trade.documents.select_related("uploaded_by").order_by("created_at")
        ],
        "reviews": [
            {
                "verdict": r.verdict,
                "officer": r.officer_username,
                "reason": r.reason,
                "conditions": r.conditions,
                "at": _iso(r.created_at),
                "check": str(r.compliance_check_id) if r.compliance_check_id else None,
            }
            for r in Review.objects.filter(subject_type="trade", subject_id=trade.id).order_by("created_at")
        ],
        "events": [
            {"at": _iso(e.at), "from": e.from_status, "to": e.to_status, "actor": e.actor_label, "reason": e.reason}
            for e in trade.events.order_by("at", "id")
        ],
        "money": [
            {
                "kind": t.kind,
                "at": _iso(t.created_at),
                "legs": [
                    {"account": e.account, "amount": str(e.amount), "currency": e.currency} for e in t.entries.all()
                ],
            }
            for t in LedgerTransaction.objects.filter(trade=trade).prefetch_related("entries").order_by("created_at")
        ],
        "grant": None
        if grant is None
        else {
            "id": str(grant.id),
            "valid_from": _iso(grant.valid_from),
            "valid_until": _iso(grant.valid_until),
            "revoked_at": _iso(grant.revoked_at),
            "revoked_reason": grant.revoked_reason,
            "max_version": grant.max_version,
        },
        "audit": [
            {
                "id": e.id,
                "at": _iso(e.at),
                "kind": e.kind,
                "actor": e.actor_label,
                "data": e.data,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in audit.order_by("id")
        ],
    }
