"""Safeguards an organisation keeps on file for all its trades."""

from datetime import date

from django.db import transaction

from marketplace.models import Membership, OrganisationMechanism


@transaction.atomic
def mechanism_add(
    *, membership: Membership, code: str, reference: str = "", approved_on: date | None = None, valid_until: date | None = None
) -> OrganisationMechanism:
    return OrganisationMechanism.objects.create(
        organisation=membership.organisation, code=code, reference=reference, approved_on=approved_on,
        valid_until=valid_until, created_by=membership.user,
    )


@transaction.atomic
def mechanism_remove(*, mechanism_id: object) -> None:
    OrganisationMechanism.objects.filter(pk=mechanism_id).delete()
