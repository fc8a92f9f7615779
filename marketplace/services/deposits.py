"""Deposits: a member asks, an operator confirms, the ledger credits the wallet exactly once."""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from config.errors import ConflictError
from marketplace.models import Deposit, Membership, Organisation
from marketplace.payments import payment_provider
from marketplace.services.events import event_emit
from marketplace.services.ledger import ledger_deposit_credit


class DepositNotPendingError(ConflictError):
    code = "deposit_not_pending"
    default_message = "The deposit has already been decided."


@transaction.atomic
def deposit_request(*, membership: Membership, amount: Decimal, currency: str) -> Deposit:
    provider = payment_provider()
    deposit = Deposit.objects.create(
        organisation=membership.organisation, amount=amount, currency=currency, provider=provider.name, requested_by=membership.user,
    )
    deposit.provider_reference = provider.initiate(deposit)
    deposit.save(update_fields=["provider_reference"])
    return deposit


@transaction.atomic
def deposit_approve(*, deposit_id: object, operator: AbstractBaseUser, note: str = "") -> Deposit:
    """Credit a pending deposit. Approving twice is refused, never credited twice."""
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    if deposit.status != Deposit.Status.PENDING:
        raise DepositNotPendingError(f"The deposit is {deposit.status}.")
    ledger_deposit_credit(deposit=deposit)
    deposit.status, deposit.decided_by, deposit.decided_at, deposit.note = Deposit.Status.CREDITED, operator, timezone.now(), note
    deposit.save(update_fields=["status", "decided_by", "decided_at", "note"])
    event_emit(kind="deposit.credited", subject_type="organisation", subject_id=deposit.organisation_id, actor=operator,
               actor_label="" if operator else "system", data={"deposit": str(deposit.id), "amount": deposit.amount,
                                                                 "currency": deposit.currency, "note": note})
    return deposit


@transaction.atomic
def deposit_reject(*, deposit_id: object, operator: AbstractBaseUser, note: str) -> Deposit:
    """Refuse a pending deposit: nothing is credited. Audited as `deposit.rejected` with the operator."""
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    if deposit.status != Deposit.Status.PENDING:
        raise DepositNotPendingError(f"The deposit is {deposit.status}.")
    deposit.status, deposit.decided_by, deposit.decided_at, deposit.note = Deposit.Status.REJECTED, operator, timezone.now(), note
    deposit.save(update_fields=["status", "decided_by", "decided_at", "note"])
    event_emit(kind="deposit.rejected", subject_type="organisation", subject_id=deposit.organisation_id, actor=operator,
               data={"deposit": str(deposit.id), "amount": deposit.amount, "currency": deposit.currency, "note": note})
    return deposit


@transaction.atomic
def deposit_record(*, organisation: Organisation, amount: Decimal, currency: str, operator: AbstractBaseUser, note: str = "") -> Deposit:
    """An operator records money that has arrived: requested and approved in one step."""
    deposit = Deposit.objects.create(
        organisation=organisation, amount=amount, currency=currency, provider=payment_provider().name, requested_by=operator,
    )
    return deposit_approve(deposit_id=deposit.id, operator=operator, note=note)
