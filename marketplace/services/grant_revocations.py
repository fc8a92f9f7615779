"""Taking access away lawfully: suspension by re-screening, and revocation decided by an officer.

Who may do what:
- Re-screening (system:rescreening) suspends a live grant whose trade would now be denied, in the
  transaction that records the finding. Nothing is downloaded while it is suspended.
- An officer resolves a suspension: reinstate (with a reason) or revoke with a refund decision.
- A provider cannot revoke alone: its revoke call files a revocation request; access stays as it
  is until an officer decides (revoke with a refund decision, or decline).
- An officer may revoke directly, always with a refund decision; the decision is recorded as a
  revocation request decided at once (or decides the pending one, if the provider filed one).

Refunds (each with a reason; at most one refund per trade, the ledger's own guard):
- full: ledger_refund reverses the settlement exactly; the trade becomes `refunded` through the
  transition service.
- pro_rata: price × the unused fraction of the grant's term, rounded DOWN to the currency's minor
  unit (never more than the exact fraction is paid back); the unused fraction is measured from the
  moment access stopped for the buyer: the suspension, if the grant is suspended, else now. A grant
  that has not started yet is unused in full; one without an end date has no fraction, so pro-rata
  is refused (400 `pro_rata_unavailable`). The provider and the platform give back in the
  proportion settlement credited them (ledger_refund_split). The trade stays `settled`.
- none: the grant is revoked and no money moves.
A provider whose available balance does not cover its part gets 409 `refund_not_covered` and
nothing changes (the grant stays as it was).
"""

import logging
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.services.audit import audit_record
from config.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from marketplace.errors import (
    GrantAlreadyRevokedError,
    GrantNotSuspendedError,
    ProRataUnavailableError,
    RevocationRequestDecidedError,
    RevocationRequestPendingError,
)
from marketplace.models import AccessGrant, Dataset, GrantFlag, GrantRevocationRequest, Membership, Trade
from marketplace.money import quantum
from marketplace.selectors.members import is_officer
from marketplace.services.events import event_emit
from marketplace.services.grants import grant_revoke_locked
from marketplace.services.ledger import ledger_refund, ledger_refund_partial
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock
from marketplace.trade_lifecycle import ensure_transition_allowed

logger = logging.getLogger(__name__)

RESCREENING = "system:rescreening"
Refund = GrantRevocationRequest.Refund


def _parties(grant: AccessGrant) -> list[UUID]:
    provider_id = Dataset.objects.filter(pk=grant.dataset_id).values_list("provider_id", flat=True).first()
    return [grant.buyer_id] if provider_id is None else [grant.buyer_id, provider_id]


def _required(value: str, name: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInputError(f"A {name} is required.", fields={name: ["this field is required"]})
    return value


def _officer(membership: Membership, what: str) -> User:
    if not is_officer(membership.user):
        raise PermissionDeniedError(f"Only a compliance officer may {what}.")
    return membership.user


def _lock_grant(grant_id: UUID) -> tuple[Trade, AccessGrant]:
    """Lock the grant's trade, then the grant (always in this order: trade, grant, request)."""
    trade_id = AccessGrant.objects.filter(pk=grant_id).values_list("trade_id", flat=True).first()
    trade = trade_lock(trade_id=trade_id) if trade_id is not None else None
    grant = AccessGrant.objects.select_for_update().filter(pk=grant_id).first() if trade is not None else None
    if trade is None or grant is None:
        raise NotFoundError("No such grant.")
    return trade, grant


def grant_flag_close(*, flag: GrantFlag, user: User, note: str, revoked: bool) -> GrantFlag:
    """Mark one locked, open re-screening flag resolved by `user`, and audit it."""
    flag.status = GrantFlag.Status.RESOLVED
    flag.resolved_by = user
    flag.resolved_by_label = user.get_username()[:150]
    flag.resolved_at = timezone.now()
    flag.resolution_note = note
    flag.revoked = revoked
    flag.save(update_fields=["status", "resolved_by", "resolved_by_label", "resolved_at", "resolution_note", "revoked"])
    audit_record(kind="grant.flag_resolved", subject_type="grant", subject_id=flag.grant_id, actor=user,
                 data={"flag": str(flag.id), "rulepack": flag.rulepack_ref, "revoked": revoked, "note": note})
    return flag


def _resolve_flags(*, grant: AccessGrant, user: User, note: str, revoked: bool) -> None:
    """Close the grant's open re-screening flags: the officer's decision answers them."""
    for flag in GrantFlag.objects.select_for_update().filter(grant=grant, status=GrantFlag.Status.OPEN):
        grant_flag_close(flag=flag, user=user, note=note, revoked=revoked)


# --- suspension -------------------------------------------------------------------------------


@transaction.atomic
def grant_suspend(
    *, grant_id: UUID, reason: str, actor_label: str = RESCREENING, data: dict[str, object] | None = None
) -> bool:
    """Suspend a grant at once (called by re-screening inside the transaction of its finding).
    Returns False, changing nothing, if it is already suspended or revoked."""
    grant = AccessGrant.objects.select_for_update().filter(pk=grant_id).first()
    if grant is None or grant.revoked_at is not None or grant.suspended_at is not None:
        return False
    grant.suspended_at = timezone.now()
    grant.suspended_reason = reason
    grant.suspended_by_label = actor_label[:150]
    grant.save(update_fields=["suspended_at", "suspended_reason", "suspended_by_label"])
    logger.warning("grant %s suspended by %s: %s", grant.id, actor_label, reason)
    event_emit(
        kind="grant.suspended",
        subject_type="grant",
        subject_id=grant.id,
        actor_label=actor_label,
        organisation_ids=_parties(grant),
        data={"trade": str(grant.trade_id), "dataset": str(grant.dataset_id), "reason": reason, **(data or {})},
    )
    return True


@transaction.atomic
def grant_reinstate(*, grant_id: UUID, officer: Membership, reason: str) -> AccessGrant:
    """An officer lifts a suspension (downloads work again at once) and closes the grant's open
    re-screening flags with the reason."""
    user = _officer(officer, "reinstate a grant")
    reason = _required(reason, "reason")
    _trade, grant = _lock_grant(grant_id)
    if grant.revoked_at is not None:
        raise GrantAlreadyRevokedError()
    if grant.suspended_at is None:
        raise GrantNotSuspendedError()
    suspended = {
        "suspended_at": grant.suspended_at,
        "suspended_reason": grant.suspended_reason,
        "suspended_by": grant.suspended_by_label,
    }
    grant.suspended_at, grant.suspended_reason, grant.suspended_by_label = None, "", ""
    grant.save(update_fields=["suspended_at", "suspended_reason", "suspended_by_label"])
    _resolve_flags(grant=grant, user=user, note=f"reinstated: {reason}", revoked=False)
    event_emit(
        kind="grant.reinstated",
        subject_type="grant",
        subject_id=grant.id,
        actor=user,
        organisation_ids=_parties(grant),
        data={"trade": str(grant.trade_id), "dataset": str(grant.dataset_id), "reason": reason, **suspended},
    )
    return grant


# --- revocation -------------------------------------------------------------------------------


def grant_unused_fraction(*, grant: AccessGrant, now: datetime | None = None) -> Decimal | None:
    """The part of the grant's term not yet used, from 0 to 1; None for a grant with no end date.
    Time under suspension counts as unused: the buyer could not use it."""
    if grant.valid_until is None:
        return None
    stopped = now or timezone.now()
    if grant.suspended_at is not None:
        stopped = min(stopped, grant.suspended_at)
    term = (grant.valid_until - grant.valid_from).total_seconds()
    left = (grant.valid_until - max(stopped, grant.valid_from)).total_seconds()
    return min(max(Decimal(str(left)) / Decimal(str(term)), Decimal(0)), Decimal(1))


def grant_pro_rata_amount(*, trade: Trade, grant: AccessGrant, now: datetime | None = None) -> Decimal:
    fraction = grant_unused_fraction(grant=grant, now=now)
    if fraction is None:
        raise ProRataUnavailableError(fields={"refund": ["the grant has no end date: choose full or none"]})
    return (trade.price * fraction).quantize(quantum(trade.currency), rounding=ROUND_DOWN)


def _revoke_with_refund(*, trade: Trade, grant: AccessGrant, user: User, refund: str, reason: str) -> Decimal:
    """Revoke and refund as decided; returns the amount the buyer got back. Callers hold the locks."""
    if grant.revoked_at is not None:
        raise GrantAlreadyRevokedError()
    amount = Decimal(0)
    if refund == Refund.FULL:
        ensure_transition_allowed(current=trade.status, target=Trade.Status.REFUNDED)
        if ledger_refund(trade=trade) is not None:
            amount = trade.price
        grant_revoke_locked(grant=grant, user=user, label=user.get_username(), reason=reason)
        trade_apply_transition(
            trade=trade, to=Trade.Status.REFUNDED, actor=user, reason=f"access revoked with a full refund: {reason}"
        )
    elif refund == Refund.PRO_RATA:
        amount = grant_pro_rata_amount(trade=trade, grant=grant)
        if (
            amount > 0
            and ledger_refund_partial(trade=trade, amount=amount, memo=f"pro-rata refund of trade {trade.id}") is None
        ):
            amount = Decimal(0)  # never settled through the ledger (or refunded already): nothing to give back
        grant_revoke_locked(grant=grant, user=user, label=user.get_username(), reason=reason)
    else:
        grant_revoke_locked(grant=grant, user=user, label=user.get_username(), reason=reason)
    _resolve_flags(grant=grant, user=user, note=f"revoked ({refund} refund): {reason}", revoked=True)
    return amount


def _decide(
    *,
    request: GrantRevocationRequest,
    trade: Trade,
    grant: AccessGrant,
    user: User,
    revoke: bool,
    refund: str,
    reason: str,
) -> GrantRevocationRequest:
    amount = _revoke_with_refund(trade=trade, grant=grant, user=user, refund=refund, reason=reason) if revoke else None
    request.status = GrantRevocationRequest.Status.REVOKED if revoke else GrantRevocationRequest.Status.DECLINED
    request.decided_by = user
    request.decided_by_label = user.get_username()[:150]
    request.decided_at = timezone.now()
    request.decision_reason = reason
    request.refund = refund if revoke else ""
    request.refund_amount = amount
    request.refund_currency = trade.currency if revoke else ""
    request.save()
    event_emit(
        kind="grant.revocation_decided",
        subject_type="grant",
        subject_id=grant.id,
        actor=user,
        organisation_ids=_parties(grant),
        data={
            "trade": str(trade.id),
            "request": str(request.id),
            "decision": request.status,
            "refund": request.refund,
            "refund_amount": str(amount) if amount is not None else None,
            "currency": trade.currency,
            "reason": reason,
        },
    )
    return request


def _refund_choice(*, revoke: bool, refund: str | None) -> str:
    if not revoke:
        return ""
    if refund not in Refund.values:
        raise InvalidInputError(
            "Revoking needs a refund decision.", fields={"refund": [f"one of {', '.join(Refund.values)}"]}
        )
    return str(refund)


@transaction.atomic
def grant_revocation_request(*, grant_id: UUID, membership: Membership, reason: str) -> GrantRevocationRequest:
    """The dataset's provider asks for a grant to be revoked. Nothing changes for the buyer until an
    officer decides; both parties are told."""
    reason = _required(reason, "reason")
    _trade, grant = _lock_grant(grant_id)
    if (
        Dataset.objects.filter(pk=grant.dataset_id).values_list("provider_id", flat=True).first()
        != membership.organisation_id
    ):
        raise PermissionDeniedError("Only the dataset's provider may ask for a grant to be revoked.")
    if grant.revoked_at is not None:
        raise GrantAlreadyRevokedError()
    if GrantRevocationRequest.objects.filter(grant=grant, status=GrantRevocationRequest.Status.PENDING).exists():
        raise RevocationRequestPendingError()
    user = membership.user
    try:
        with transaction.atomic():
            request = GrantRevocationRequest.objects.create(
                grant=grant, reason=reason, requested_by=user, requested_by_label=user.get_username()[:150],
                requested_by_organisation_id=membership.organisation_id,
            )
    except IntegrityError:  # a concurrent request won the one-pending constraint
        raise RevocationRequestPendingError() from None
    event_emit(
        kind="grant.revocation_requested",
        subject_type="grant",
        subject_id=grant.id,
        actor=user,
        organisation_ids=_parties(grant),
        data={"trade": str(grant.trade_id), "request": str(request.id), "reason": reason},
    )
    return request


@transaction.atomic
def grant_revocation_decide(
    *, request_id: UUID, officer: Membership, revoke: bool, refund: str | None, reason: str,
) -> GrantRevocationRequest:
    """An officer decides a pending request: revoke with a refund decision (full, pro_rata, none),
    or decline (access stays). Money, grant and trade change in this one transaction."""
    user = _officer(officer, "decide a revocation request")
    reason = _required(reason, "reason")
    refund = _refund_choice(revoke=revoke, refund=refund)
    grant_id = GrantRevocationRequest.objects.filter(pk=request_id).values_list("grant_id", flat=True).first()
    if grant_id is None:
        raise NotFoundError("No such revocation request.")
    trade, grant = _lock_grant(grant_id)
    request = GrantRevocationRequest.objects.select_for_update().get(pk=request_id)
    if request.status != GrantRevocationRequest.Status.PENDING:
        raise RevocationRequestDecidedError(f"The request was {request.status} by {request.decided_by_label}.")
    return _decide(request=request, trade=trade, grant=grant, user=user, revoke=revoke, refund=refund, reason=reason)


@transaction.atomic
def grant_revoke_by_officer(
    *, grant_id: UUID, officer: Membership, refund: str | None, reason: str
) -> GrantRevocationRequest:
    """An officer revokes a grant (a suspended one, or any other) with a refund decision. A pending
    provider request is decided by this; otherwise the decision is recorded as a request decided at once."""
    user = _officer(officer, "revoke a grant")
    reason = _required(reason, "reason")
    refund = _refund_choice(revoke=True, refund=refund)
    trade, grant = _lock_grant(grant_id)
    if grant.revoked_at is not None:
        raise GrantAlreadyRevokedError()
    request = (
        GrantRevocationRequest.objects.select_for_update()
        .filter(grant=grant, status=GrantRevocationRequest.Status.PENDING)
        .first()
    )
    if request is None:
        request = GrantRevocationRequest.objects.create(
            grant=grant, reason=reason, requested_by=user, requested_by_label=user.get_username()[:150],
            requested_by_organisation_id=officer.organisation_id,
        )
    return _decide(request=request, trade=trade, grant=grant, user=user, revoke=True, refund=refund, reason=reason)
