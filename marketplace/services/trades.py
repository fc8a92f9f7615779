"""Buying, cancelling and reviewing trades. Every status change goes through trade_transition."""

from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.errors import SecondOfficerRequiredError
from compliance.services.reviews import review_approvers, review_record
from config.errors import NotFoundError
from config.transactions import savepoint_needed
from marketplace.errors import (
    AlreadyRenewedError,
    DatasetNotAvailableError,
    OwnDatasetError,
    RequirementsOutstandingError,
    TradeTransitionNotAllowedError,
)
from marketplace.models import Dataset, Membership, Trade
from marketplace.services.events import trade_event_emit
from marketplace.services.evidence_review import officer_require_independent
from marketplace.services.grants import grant_revoke_for_trade
from marketplace.services.ledger import ledger_refund
from marketplace.services.organisations import organisation_require_verified
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock, trade_open, trade_transition
from marketplace.trade_lifecycle import ensure_transition_allowed


def trade_create(
    *, membership: Membership, dataset_id: UUID, destination: str | None = None, purpose: str = "resale",
    mechanisms: list[dict[str, Any]] | None = None, delivery: str = "download", queries: int | None = None,
) -> Trade:
    """Open a trade in `checking` with the price and licence pinned; the compliance check is
    enqueued only after commit.

    What the buyer declares is recorded as its attestation, never taken as fact: `destination`
    (where the data will also go) is checked as a transfer of its own beside the one to where the
    buyer is established, and becomes a licence term; `mechanisms` are safeguards it intends to
    put on file, which satisfy nothing until their evidence is accepted; `purpose` decides some
    exemptions, which are then flagged for officers to sample.

    `delivery` "compute" buys query access under the dataset's compute offer instead of the file
    (its price, pricing and term; `queries` for a per-query offer): the data stays where it is stored
    and only released aggregates leave (marketplace/services/compute.py).

    Atomic; inside a keyed request's transaction without a savepoint of its own (config/transactions.py)."""
    with transaction.atomic(savepoint=savepoint_needed()):
        return _trade_create(membership=membership, dataset_id=dataset_id, destination=destination, purpose=purpose,
                             mechanisms=mechanisms, delivery=delivery, queries=queries)


def _trade_create(
    *, membership: Membership, dataset_id: UUID, destination: str | None, purpose: str,
    mechanisms: list[dict[str, Any]] | None, delivery: str, queries: int | None,
) -> Trade:
    dataset = Dataset.objects.select_related("provider").filter(pk=dataset_id).first()
    if dataset is None or dataset.status != Dataset.Status.PUBLISHED:
        raise DatasetNotAvailableError(fields={"dataset": ["no published dataset with this id"]})
    buyer = membership.organisation
    if dataset.provider_id == buyer.id:
        raise OwnDatasetError(fields={"dataset": ["this dataset belongs to your organisation"]})
    organisation_require_verified(organisation=buyer)  # an applicant trades only once an officer verified it
    organisation_require_verified(organisation=dataset.provider)
    now = timezone.now()
    destination = destination or buyer.jurisdiction
    terms: dict[str, Any] = {
        "price": dataset.price,
        "currency": dataset.currency,
        "pricing": dataset.pricing,
        "licence": dict(dataset.licence),
        "compute_queries": None,
    }
    if delivery == "compute":
        from marketplace.services.compute import compute_trade_terms

        terms = compute_trade_terms(dataset=dataset, queries=queries)
    licence = dict(terms["licence"])
    if destination != buyer.jurisdiction:
        licence["permitted_destinations"] = [buyer.jurisdiction, destination]
    trade = Trade.objects.create(
        dataset=dataset,
        provider=dataset.provider,
        buyer=buyer,
        buyer_user=membership.user,
        destination=destination,
        purpose=purpose,
        mechanisms=mechanisms or [],
        price=terms["price"],
        currency=terms["currency"],
        pricing=terms["pricing"],
        licence=licence,
        delivery=delivery,
        compute_queries=terms["compute_queries"],
        status=Trade.Status.CHECKING,
        status_changed_at=now,
        waiting_since=now,
    )
    trade_open(
        trade=trade,
        actor=membership.user,
        reason="purchase requested",
        data={
            "price": str(trade.price),
            "currency": trade.currency,
            "destination": trade.destination,
            "purpose": trade.purpose,
            "delivery": trade.delivery,
        },
        also=(("trade.buyer_attestation", {
            "established_in": buyer.jurisdiction, "destination": trade.destination, "purpose": trade.purpose,
            "intended_mechanisms": [m.get("code") for m in trade.mechanisms]}),),
    )
    return trade


@transaction.atomic
def trade_renew(*, trade_id: UUID, membership: Membership) -> Trade:
    """A subscription's next period: a new trade at today's price, checked again from scratch.

    At most one live renewal per period: the previous trade's row is locked before the check, so
    concurrent renewals queue and the later ones see the first (409 `already_renewed`); the
    `trade_one_live_renewal` constraint backs this up in the database. A rejected, cancelled or
    refunded renewal does not count, so the period can be renewed again."""
    previous = trade_lock(trade_id=trade_id)
    if previous is None or previous.buyer_id != membership.organisation_id:
        raise NotFoundError("No such trade.")
    if previous.pricing != "subscription" or previous.status != Trade.Status.SETTLED:
        raise TradeTransitionNotAllowedError("Only a settled subscription can be renewed.")
    if previous.renewals.exclude(
        status__in=(Trade.Status.REJECTED, Trade.Status.CANCELLED, Trade.Status.REFUNDED)
    ).exists():
        raise AlreadyRenewedError()
    trade = trade_create(membership=membership, dataset_id=previous.dataset_id, destination=previous.destination,
                         purpose=previous.purpose, mechanisms=previous.mechanisms, delivery=previous.delivery,
                         queries=previous.compute_queries)
    try:
        with transaction.atomic():
            Trade.objects.filter(pk=trade.pk).update(renews=previous)
    except IntegrityError:  # a concurrent renewal of the same period committed first
        raise AlreadyRenewedError() from None  # the outer transaction (trade, hold, events) rolls back
    trade.renews = previous
    return trade


@transaction.atomic
def trade_refund(*, trade_id: UUID, officer: User, reason: str) -> Trade:
    """Reverse a settled trade: the ledger gives the buyer the price back, the grant is revoked,
    and the reason is on the trade's events for both parties. Officers' refunds go through
    marketplace.services.refunds.trade_refund_request (two officers over the threshold)."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise NotFoundError("No such trade.")
    ensure_transition_allowed(current=trade.status, target=Trade.Status.REFUNDED)
    ledger_refund(trade=trade)
    grant_revoke_for_trade(trade=trade, actor=officer, reason=f"refunded: {reason}")
    return trade_apply_transition(trade=trade, to=Trade.Status.REFUNDED, actor=officer, reason=reason)


@transaction.atomic
def trade_cancel(*, trade_id: UUID, actor: User, reason: str = "") -> Trade:
    """The buyer withdraws before settlement."""
    return trade_transition(
        trade_id=trade_id, to=Trade.Status.CANCELLED, actor=actor, reason=reason or "cancelled by the buyer"
    )


# Officers reject a trade in review or waiting for documents; they approve only one in review.
REJECTABLE = frozenset({Trade.Status.IN_REVIEW, Trade.Status.NEEDS_DOCUMENTS})
APPROVABLE = frozenset({Trade.Status.IN_REVIEW})


def needs_four_eyes(decision: dict[str, Any]) -> bool:
    """Any finding that needs an approval (or whose rule asks for four eyes), whatever the overall outcome."""
    return any(f.get("four_eyes") or f.get("outcome") == "needs_approval" for f in decision.get("findings", []))


@transaction.atomic
def trade_review(
    *, trade_id: UUID, officer: User, approve: bool, reason: str, conditions: dict[str, Any] | None = None
) -> Trade:
    """An officer's verdict; the review row and the status change commit together
    (trade_review_awaiting tells what a trade still waits for).

    - Approval needs a trade in review with no outstanding requirement: evidence for each must
      have been accepted (then the engine re-checked it); a trade waiting for documents can only
      be rejected.
    - Four eyes: if any finding needs an approval or asks for four eyes, two different officers
      approve; the first approval is recorded and the trade waits.
    - An officer (or admin) of the buyer or the provider decides nothing of the trade (403 `own_organisation`).
    - An engine `deny` is final: the trade is already rejected and cannot be reviewed."""
    trade = trade_lock(trade_id=trade_id)
    if trade is None:
        raise NotFoundError("No such trade.")
    officer_require_independent(officer=officer, party_ids=(trade.buyer_id, trade.provider_id))
    allowed = APPROVABLE if approve else REJECTABLE
    check = trade.decision
    if approve and trade.status == Trade.Status.NEEDS_DOCUMENTS and check is not None:
        raise RequirementsOutstandingError(
            _outstanding_message(check.decision), fields={"requirements": check.decision["requirements"]}
        )
    if trade.status not in allowed:
        verb, where = ("approved", "in review") if approve else ("rejected", "in review or waiting for documents")
        raise TradeTransitionNotAllowedError(f"Only a trade {where} can be {verb}; this one is {trade.status}.")
    if approve and check is not None and check.decision.get("requirements"):
        raise RequirementsOutstandingError(
            _outstanding_message(check.decision), fields={"requirements": check.decision["requirements"]}
        )
    four_eyes = approve and check is not None and needs_four_eyes(check.decision)
    approvers = review_approvers(subject_type="trade", subject_id=trade.id, check=check) if four_eyes else set()
    if four_eyes and officer.pk in approvers:
        raise SecondOfficerRequiredError(
            "You gave the first approval; a second, different officer must give the other."
        )
    review_record(
        subject_type="trade", subject_id=trade.id, check=check, officer=officer,
        verdict="approve" if approve else "reject", reason=reason, conditions=conditions,
    )
    if four_eyes and not approvers:
        trade_event_emit(
            kind="review.first_approval",
            trade=trade,
            actor=officer,
            data={"reason": reason, "conditions": conditions or {}},
        )
        return trade  # waits for a second officer
    to = Trade.Status.APPROVED if approve else Trade.Status.REJECTED
    return trade_apply_transition(trade=trade, to=to, actor=officer, reason=reason)


def trade_review_awaiting(*, trade: Trade) -> str | None:
    """"second_officer" while a four-eyes trade in review has one approval of its current
    decision; None otherwise."""
    check = trade.decision
    if trade.status != Trade.Status.IN_REVIEW or check is None or not needs_four_eyes(check.decision):
        return None
    return "second_officer" if review_approvers(subject_type="trade", subject_id=trade.id, check=check) else None


def _outstanding_message(decision: dict[str, Any]) -> str:
    groups = [" or ".join(group) for group in decision.get("requirements", [])]
    return (
        ("Accepted evidence is still missing for: " + "; ".join(groups) + ".")
        if groups
        else "Requirements are outstanding."
    )
