"""Officers' review of evidence: a trade document or a standing mechanism counts toward a
requirement only once accepted.

- The person who submitted a piece of evidence never reviews it, nor does an officer (or admin)
  of an organisation that is party to it: the trade's buyer or provider, or the organisation
  that keeps a standing mechanism on file.
- A regulator's approval (vocabulary.REGULATOR_APPROVALS: a CAC security assessment, a
  certification, binding corporate rules) needs two different officers: the first acceptance is
  recorded and the evidence stays pending; the second accepts it.
- Acceptance re-checks what waits for it: the trade (a trade document), or every open trade of the
  organisation as buyer or provider (a standing mechanism). Rejection tells the submitter why.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compliance.engine.vocabulary import REGULATOR_APPROVALS
from compliance.errors import SecondOfficerRequiredError
from config.errors import NotFoundError
from marketplace.errors import EvidenceNotPendingError, OwnEvidenceError, OwnOrganisationError
from marketplace.models import EvidenceStatus, OrganisationMechanism, Trade, TradeDocument
from marketplace.selectors.members import membership_of
from marketplace.services.events import event_emit, trade_event_emit
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock

# A trade in one of these is waiting for people or documents: new accepted evidence re-checks it.
RECHECKABLE = (Trade.Status.NEEDS_DOCUMENTS, Trade.Status.IN_REVIEW)


@dataclass(frozen=True)
class EvidenceDecision:
    """What a review did: `awaiting` is "second_officer" after the first of two acceptances."""

    evidence: TradeDocument | OrganisationMechanism
    awaiting: str | None = None


def _submitter_id(evidence: TradeDocument | OrganisationMechanism) -> Any:
    return evidence.uploaded_by_id if isinstance(evidence, TradeDocument) else evidence.created_by_id


def officer_require_independent(*, officer: User, party_ids: tuple[object, ...]) -> None:
    """An officer whose organisation is a party (buyer, provider, the keeper of a mechanism) decides
    nothing of it: 403 `own_organisation`."""
    membership = membership_of(officer)
    if membership is not None and membership.organisation_id in party_ids:
        raise OwnOrganisationError()


def _parties(evidence: TradeDocument | OrganisationMechanism) -> tuple[object, ...]:
    if isinstance(evidence, TradeDocument):
        return (evidence.trade.buyer_id, evidence.trade.provider_id, evidence.organisation_id)
    return (evidence.organisation_id,)


def _check_reviewer(evidence: TradeDocument | OrganisationMechanism, officer: User) -> None:
    if evidence.status != EvidenceStatus.PENDING:
        raise EvidenceNotPendingError(f"This evidence is already {evidence.status}.")
    if _submitter_id(evidence) == officer.pk:
        raise OwnEvidenceError()
    officer_require_independent(officer=officer, party_ids=_parties(evidence))


def _accept(evidence: TradeDocument | OrganisationMechanism, officer: User, reason: str) -> str | None:
    """Record an acceptance; returns "second_officer" when a regulator approval waits for a second one."""
    _check_reviewer(evidence, officer)
    now = timezone.now()
    if evidence.code in REGULATOR_APPROVALS and evidence.first_accepted_by_id is None:
        evidence.first_accepted_by, evidence.first_accepted_at = officer, now
        evidence.review_reason = reason
        evidence.save(update_fields=["first_accepted_by", "first_accepted_at", "review_reason"])
        return "second_officer"
    if evidence.first_accepted_by_id == officer.pk:
        raise SecondOfficerRequiredError(
            "A regulator's approval is accepted by two different officers; you gave the first acceptance."
        )
    evidence.status, evidence.reviewed_by, evidence.reviewed_by_label = (
        EvidenceStatus.ACCEPTED,
        officer,
        officer.get_username(),
    )
    evidence.reviewed_at, evidence.review_reason = now, reason
    evidence.save(update_fields=["status", "reviewed_by", "reviewed_by_label", "reviewed_at", "review_reason"])
    return None


def _reject(evidence: TradeDocument | OrganisationMechanism, officer: User, reason: str) -> None:
    _check_reviewer(evidence, officer)
    evidence.status, evidence.reviewed_by, evidence.reviewed_by_label = (
        EvidenceStatus.REJECTED,
        officer,
        officer.get_username(),
    )
    evidence.reviewed_at, evidence.review_reason = timezone.now(), reason
    evidence.save(update_fields=["status", "reviewed_by", "reviewed_by_label", "reviewed_at", "review_reason"])


def _data(evidence: TradeDocument | OrganisationMechanism, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "evidence": str(evidence.id),
        "code": evidence.code,
        "reference": evidence.reference,
        "sha256": evidence.sha256,
        "reason": reason,
        "status": evidence.status,
        **extra,
    }


def _recheck(trade: Trade, actor: User | None, why: str) -> None:
    if trade.status in RECHECKABLE:
        trade_apply_transition(trade=trade, to=Trade.Status.CHECKING, actor=actor, reason=why)


@transaction.atomic
def trade_document_review(*, document_id: UUID, officer: User, accept: bool, reason: str) -> EvidenceDecision:
    """Accept or reject one trade document (the trade row is locked first, then the document)."""
    trade_id = TradeDocument.objects.filter(pk=document_id).values_list("trade_id", flat=True).first()
    if trade_id is None:
        raise NotFoundError("No such document.")
    trade = trade_lock(trade_id=trade_id)
    assert trade is not None  # documents cascade with their trade
    document = TradeDocument.objects.select_for_update().get(pk=document_id)
    document.trade = trade
    if not accept:
        _reject(document, officer, reason)
        trade_event_emit(kind="evidence.rejected", trade=trade, actor=officer, data=_data(document, reason))
        return EvidenceDecision(document)
    awaiting = _accept(document, officer, reason)
    if awaiting:
        trade_event_emit(
            kind="evidence.first_acceptance",
            trade=trade,
            actor=officer,
            data=_data(document, reason, awaiting=awaiting),
        )
        return EvidenceDecision(document, awaiting)
    trade_event_emit(kind="evidence.accepted", trade=trade, actor=officer, data=_data(document, reason))
    _recheck(trade, officer, f"evidence accepted: {document.code} {document.reference}".strip())
    return EvidenceDecision(document)


@transaction.atomic
def mechanism_review(*, mechanism_id: UUID, officer: User, accept: bool, reason: str) -> EvidenceDecision:
    """Accept or reject a standing mechanism; acceptance re-checks the organisation's waiting trades."""
    mechanism = OrganisationMechanism.objects.select_for_update().filter(pk=mechanism_id).first()
    if mechanism is None:
        raise NotFoundError("No such mechanism.")
    org = mechanism.organisation_id
    if not accept:
        _reject(mechanism, officer, reason)
        event_emit(kind="evidence.rejected", subject_type="organisation", subject_id=org, actor=officer,
                   organisation_ids=[org], data=_data(mechanism, reason))
        return EvidenceDecision(mechanism)
    awaiting = _accept(mechanism, officer, reason)
    kind = "evidence.first_acceptance" if awaiting else "evidence.accepted"
    event_emit(kind=kind, subject_type="organisation", subject_id=org, actor=officer, organisation_ids=[org],
               data=_data(mechanism, reason, **({"awaiting": awaiting} if awaiting else {})))
    if awaiting:
        return EvidenceDecision(mechanism, awaiting)
    organisation_trades_recheck(organisation_id=org, actor=officer,
                                why=f"standing evidence accepted: {mechanism.code} {mechanism.reference}".strip())
    return EvidenceDecision(mechanism)


def organisation_trades_recheck(*, organisation_id: UUID, actor: User | None, why: str) -> None:
    """Re-check every trade of the organisation (as buyer or provider) that still waits for a
    decision, after its standing evidence changed (accepted, or withdrawn). Call inside a transaction.

    Trades in `checking` too: a check in flight may have read the old evidence. Locking the trade
    waits for that check to commit, and then it is re-checked like any waiting trade."""
    open_ = (Trade.Status.CHECKING, *RECHECKABLE)
    waiting = Trade.objects.filter(Q(buyer_id=organisation_id) | Q(provider_id=organisation_id), status__in=open_)
    for trade_id in waiting.order_by("id").values_list("id", flat=True):  # in id order: concurrent callers lock alike
        trade = trade_lock(trade_id=trade_id)
        if trade is not None:
            _recheck(trade, actor, why)
