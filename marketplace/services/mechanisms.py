"""Safeguards an organisation keeps on file for all its trades."""

from datetime import date

from django.db import transaction

from marketplace.models import Membership, OrganisationMechanism
from marketplace.services.events import event_emit


@transaction.atomic
def mechanism_add(
    *, membership: Membership, code: str, reference: str = "", approved_on: date | None = None, valid_until: date | None = None
) -> OrganisationMechanism:
    mechanism = OrganisationMechanism.objects.create(
        organisation=membership.organisation, code=code, reference=reference, approved_on=approved_on,
        valid_until=valid_until, created_by=membership.user,
    )
    event_emit(kind="mechanism.added", subject_type="organisation", subject_id=membership.organisation_id, actor=membership.user,
               data={"mechanism": str(mechanism.id), "code": code, "reference": reference, "approved_on": approved_on, "valid_until": valid_until})
    return mechanism


@transaction.atomic
def mechanism_remove(*, mechanism_id: object, actor: object = None) -> None:
    mechanism = OrganisationMechanism.objects.filter(pk=mechanism_id).first()
    if mechanism is None:
        return
    event_emit(kind="mechanism.removed", subject_type="organisation", subject_id=mechanism.organisation_id, actor=actor,
               data={"mechanism": str(mechanism.id), "code": mechanism.code, "reference": mechanism.reference})
    mechanism.delete()
