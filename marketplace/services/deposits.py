"""Deposits: a member asks, an operator confirms, the ledger credits the wallet exactly once.

Segregation of duties: nobody confirms money they asked for. A member's request is approved by an
officer; an officer's direct credit to an organisation is only a request until a *different*
officer approves it. Only the system (seed data, the payment provider's confirmation) credits in
one step."""

from decimal import Decimal
from uuid import UUID

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from marketplace.errors import SamePersonNotAllowedError
from marketplace.lifecycles import deposit_ensure_transition
from marketplace.models import Deposit, Membership, Organisation
from marketplace.payments import payment_provider
from marketplace.services.events import event_emit
from marketplace.services.evidence_review import officer_require_independent
from marketplace.services.ledger import ledger_check_credit, ledger_deposit_credit


def _deposit_data(deposit: Deposit, **extra: object) -> dict[str, object]:
    return {
        "deposit": str(deposit.id),
        "amount": deposit.amount,
        "currency": deposit.currency,
        "direct": deposit.direct,
        **extra,
    }


@transaction.atomic
def deposit_request(*, membership: Membership, amount: Decimal, currency: str) -> Deposit:
    ledger_check_credit(organisation_id=membership.organisation_id, currency=currency, amount=amount)
    provider = payment_provider()
    deposit = Deposit.objects.create(
        organisation=membership.organisation,
        amount=amount,
        currency=currency,
        provider=provider.name,
        requested_by=membership.user,
    )
    deposit.provider_reference = provider.initiate(deposit)
    deposit.save(update_fields=["provider_reference"])
    event_emit(
        kind="deposit.requested",
        subject_type="organisation",
        subject_id=deposit.organisation_id,
        actor=membership.user,
        data=_deposit_data(deposit),
    )
    return deposit


@transaction.atomic
def deposit_credit_request(*, organisation: Organisation, amount: Decimal, currency: str, operator: User,
                           note: str = "") -> Deposit:
    """An officer's direct credit to an organisation (money that arrived outside the provider):
    recorded as a pending deposit that a second, different officer must approve."""
    ledger_check_credit(organisation_id=organisation.id, currency=currency, amount=amount)
    deposit = Deposit.objects.create(
        organisation=organisation,
        amount=amount,
        currency=currency,
        provider=payment_provider().name,
        requested_by=operator,
        direct=True,
        note=note,
    )
    event_emit(kind="deposit.credit_requested", subject_type="organisation", subject_id=organisation.id, actor=operator,
               data=_deposit_data(deposit, note=note))
    return deposit


@transaction.atomic
def deposit_approve(*, deposit_id: UUID, operator: User | None, note: str = "") -> Deposit:
    """Credit a pending deposit. Approving twice is refused, never credited twice; the person who
    requested it cannot approve it (409 same_person_not_allowed), nor can an officer of the
    organisation being credited (403 own_organisation). `operator=None` is the system
    (a payment provider's confirmation)."""
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    deposit_ensure_transition(current=deposit.status, target=Deposit.Status.CREDITED)
    if operator is not None and deposit.requested_by_id is not None and deposit.requested_by_id == operator.pk:
        raise SamePersonNotAllowedError()
    if operator is not None:  # nor does a colleague of the organisation being credited (403 own_organisation)
        officer_require_independent(officer=operator, party_ids=(deposit.organisation_id,))
    ledger_deposit_credit(deposit=deposit)
    note = note or deposit.note
    deposit.status, deposit.decided_by, deposit.decided_at, deposit.note = (
        Deposit.Status.CREDITED,
        operator,
        timezone.now(),
        note,
    )
    deposit.save(update_fields=["status", "decided_by", "decided_at", "note"])
    event_emit(
        kind="deposit.credited",
        subject_type="organisation",
        subject_id=deposit.organisation_id,
        actor=operator,
        actor_label="" if operator else "system",
        data=_deposit_data(
            deposit, note=note, requested_by=deposit.requested_by.get_username() if deposit.requested_by else None
        ),
    )
    return deposit


@transaction.atomic
def deposit_reject(*, deposit_id: UUID, operator: User, note: str) -> Deposit:
    """Refuse a pending deposit; nothing is credited. Recorded in the audit trail with who refused."""
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    deposit_ensure_transition(current=deposit.status, target=Deposit.Status.REJECTED)
    deposit.status, deposit.decided_by, deposit.decided_at, deposit.note = (
        Deposit.Status.REJECTED,
        operator,
        timezone.now(),
        note,
    )
    deposit.save(update_fields=["status", "decided_by", "decided_at", "note"])
    event_emit(kind="deposit.rejected", subject_type="organisation", subject_id=deposit.organisation_id, actor=operator,
               data=_deposit_data(deposit, note=note))
    return deposit


@transaction.atomic
def deposit_record(
    *, organisation: Organisation, amount: Decimal, currency: str, actor_label: str = "system", note: str = ""
) -> Deposit:
    """The system records money that has arrived, requested and credited in one step: seed data,
    test fixtures and scripts only. No person can do this over the API (deposit_credit_request)."""
    deposit = Deposit.objects.create(
        organisation=organisation, amount=amount, currency=currency, provider=payment_provider().name, note=note,
    )
    ledger_deposit_credit(deposit=deposit)
    deposit.status, deposit.decided_at = Deposit.Status.CREDITED, timezone.now()
    deposit.save(update_fields=["status", "decided_at"])
    event_emit(
        kind="deposit.credited",
        subject_type="organisation",
        subject_id=organisation.id,
        actor_label=actor_label,
        data=_deposit_data(deposit, note=note),
    )
    return deposit
