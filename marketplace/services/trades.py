"""Buying, cancelling and reviewing trades. Every status change goes through trade_transition."""

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from compliance.errors import SecondOfficerRequiredError
from compliance.services.reviews import review_approvers, review_record
from config.errors import NotFoundError
from config.transactions import savepoint_needed
from marketplace.errors import (
    AlreadyHeldError,
    AlreadyRenewedError,
    DatasetNotAvailableError,
    OwnDatasetError,
    PriceChangedError,
    RequirementsOutstandingError,
    TradeTransitionNotAllowedError,
)
from marketplace.models import AccessGrant, Dataset, Membership, Trade
from marketplace.services.events import trade_event_emit
from marketplace.services.evidence_review import officer_require_independent
from marketplace.services.grants import grant_revoke_for_trade
from marketplace.services.ledger import ledger_refund
from marketplace.services.organisations import organisation_require_verified
from marketplace.services.trade_transitions import trade_apply_transition, trade_lock, trade_open, trade_transition
from marketplace.trade_lifecycle import ensure_transition_allowed


def trade_terms(*, dataset: Dataset, delivery: str = "download", queries: int | None = None) -> dict[str, Any]:
    """What buying `dataset` costs now and under which licence: the dataset's terms, or its compute
    offer's for `delivery` "compute" (`queries` for a per-query offer)."""
    if delivery == "compute":
        from marketplace.services.compute import compute_trade_terms

        terms = compute_trade_terms(dataset=dataset, queries=queries)
    else:
        terms = {
            "price": dataset.price,
            "currency": dataset.currency,
            "pricing": dataset.pricing,
            "licence": dict(dataset.licence),
            "compute_queries": None,
        }
    return {**terms, "licence_version": dataset.licence_version, "delivery": delivery}


def terms_public(terms: dict[str, Any]) -> dict[str, Any]:
    """Terms as a client sees them (the price as a decimal string, never a float)."""
    return {**terms, "price": str(terms["price"])}


def _terms_confirm(
    *, terms: dict[str, Any], price: Decimal | None, currency: str | None, licence_version: int | None
) -> None:
    """PriceChangedError unless every term the buyer confirmed is the one it would get."""
    fields: dict[str, list[str]] = {}
    if price is not None and price != terms["price"]:
        fields["expected_price"] = [f"the price is now {terms['price']} {terms['currency']}"]
    if currency is not None and currency != terms["currency"]:
        fields["expected_currency"] = [f"the currency is now {terms['currency']}"]
    if licence_version is not None and licence_version != terms["licence_version"]:
        fields["expected_licence_version"] = [f"the licence terms are now version {terms['licence_version']}"]
    if fields:
        raise PriceChangedError(fields=fields, current=terms_public(terms))


RENEWABLE = ("subscription",)


def trade_create(
    *, membership: Membership, dataset_id: UUID, destination: str | None = None, purpose: str = "resale",
    mechanisms: list[dict[str, Any]] | None = None, delivery: str = "download", queries: int | None = None,
    expected_price: Decimal | None = None, expected_currency: str | None = None,
    expected_licence_version: int | None = None, repeat: bool = False,
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

    Price pinning: `expected_price`, `expected_currency` and `expected_licence_version` (each
    optional) are compared with the very terms this trade is then priced at and its funds held for,
    read once in this transaction: a provider's change committed before that read is a 409
    `price_changed` carrying the current terms; one committed after it does not touch this trade.

    Already held: while the buyer's organisation holds a grant for the dataset and delivery that is
    neither revoked nor expired (suspended or not yet started included), a purchase is 409
    `already_held` unless `repeat`. The check is an EXISTS folded into the dataset's read.

    Atomic; inside a keyed request's transaction without a savepoint of its own (config/transactions.py)."""
    with transaction.atomic(savepoint=savepoint_needed()):
        return _trade_create(
            membership=membership, dataset_id=dataset_id, destination=destination, purpose=purpose,
            mechanisms=mechanisms, delivery=delivery, queries=queries, expected_price=expected_price,
            expected_currency=expected_currency, expected_licence_version=expected_licence_version, repeat=repeat,
        )


def _trade_create(
    *, membership: Membership, dataset_id: UUID, destination: str | None, purpose: str,
    mechanisms: list[dict[str, Any]] | None, delivery: str, queries: int | None, expected_price: Decimal | None,
    expected_currency: str | None, expected_licence_version: int | None, repeat: bool,
) -> Trade:
    now = timezone.now()
    buyer = membership.organisation
    datasets = Dataset.objects.select_related("provider").filter(pk=dataset_id)
    if not repeat:
        held = AccessGrant.objects.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=now),
            dataset=OuterRef("pk"), buyer=buyer, trade__delivery=delivery, revoked_at__isnull=True,
        )
        datasets = datasets.annotate(already_held=Exists(held))
    dataset = datasets.first()
    if dataset is None or dataset.status != Dataset.Status.PUBLISHED:
        raise DatasetNotAvailableError(fields={"dataset": ["no published dataset with this id"]})
    if dataset.provider_id == buyer.id:
        raise OwnDatasetError(fields={"dataset": ["this dataset belongs to your organisation"]})
    if getattr(dataset, "already_held", False):
        raise AlreadyHeldError(fields={"dataset": [f"your organisation already holds a {delivery} grant for it"]})
    organisation_require_verified(organisation=buyer)  # an applicant trades only once an officer verified it
    organisation_require_verified(organisation=dataset.provider)
    destination = destination or buyer.jurisdiction
    terms = trade_terms(dataset=dataset, delivery=delivery, queries=queries)
    _terms_confirm(
        terms=terms, price=expected_price, currency=expected_currency, licence_version=expected_licence_version
    )
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
        licence_version=terms["licence_version"],
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


def _renewable(*, trade_id: UUID, membership: Membership, lock: bool) -> Trade:
    previous = trade_lock(trade_id=trade_id) if lock else Trade.objects.filter(pk=trade_id).first()
    if previous is None or previous.buyer_id != membership.organisation_id:
        raise NotFoundError("No such trade.")
    if previous.pricing not in RENEWABLE or previous.status != Trade.Status.SETTLED:
        raise TradeTransitionNotAllowedError("Only a settled subscription can be renewed.")
    return previous


def trade_renewal_terms(*, trade_id: UUID, membership: Membership) -> dict[str, Any]:
    """The next period's terms of a settled subscription (what `renew` would charge now), beside the
    current period's, and whether renewing needs the buyer to confirm them."""
    previous = _renewable(trade_id=trade_id, membership=membership, lock=False)
    dataset = Dataset.objects.get(pk=previous.dataset_id)
    terms = trade_terms(dataset=dataset, delivery=previous.delivery, queries=previous.compute_queries)
    current = {"price": str(previous.price), "currency": previous.currency, "pricing": previous.pricing,
               "licence_version": previous.licence_version}
    changed = (terms["price"], terms["currency"], terms["licence_version"]) != (
        previous.price, previous.currency, previous.licence_version
    )
    return {"next": terms_public(terms), "current": current, "changed": changed}


@transaction.atomic
def trade_renew(
    *, trade_id: UUID, membership: Membership, expected_price: Decimal | None = None,
    expected_currency: str | None = None, expected_licence_version: int | None = None,
) -> Trade:
    """A subscription's next period: a new trade at today's price, checked again from scratch.

    The buyer is never charged terms it did not agree to: each of `expected_price`,
    `expected_currency` and `expected_licence_version` it leaves out must equal the renewed period's
    (so a renewal on unchanged terms needs no confirmation); any difference is 409 `price_changed`
    with the new terms, which `trade_renewal_terms` also shows beforehand.

    At most one live renewal per period: the previous trade's row is locked before the check, so
    concurrent renewals queue and the later ones see the first (409 `already_renewed`); the
    `trade_one_live_renewal` constraint backs this up in the database. A rejected, cancelled or
    refunded renewal does not count, so the period can be renewed again."""
    previous = _renewable(trade_id=trade_id, membership=membership, lock=True)
    if previous.renewals.exclude(
        status__in=(Trade.Status.REJECTED, Trade.Status.CANCELLED, Trade.Status.REFUNDED)
    ).exists():
        raise AlreadyRenewedError()
    trade = trade_create(membership=membership, dataset_id=previous.dataset_id, destination=previous.destination,
                         purpose=previous.purpose, mechanisms=previous.mechanisms, delivery=previous.delivery,
                         queries=previous.compute_queries, repeat=True,  # the grant it renews is still held
                         expected_price=previous.price if expected_price is None else expected_price,
                         expected_currency=expected_currency or previous.currency,
                         expected_licence_version=expected_licence_version or previous.licence_version)
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
