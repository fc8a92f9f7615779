"""Who a user is on the marketplace: organisation and role."""

from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from config.permissions import ADMIN, OFFICER, role_of
from marketplace.models import Membership


def membership_of(user: Any) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.membership
    except Membership.DoesNotExist:
        return None


def is_officer(user: Any) -> bool:
    return role_of(user) in (OFFICER, ADMIN)


M = TypeVar("M", bound=Model)


def scoped_to_parties(qs: QuerySet[M], *, user: Any, parties: tuple[str, ...]) -> QuerySet[M]:
    """Every row for officers; otherwise the rows where the user's organisation is one of the
    `parties` (organisation id lookups, e.g. "buyer_id", "provider_id"); nothing without one."""
    if is_officer(user):
        return qs
    membership = membership_of(user)
    if membership is None:
        return qs.none()
    condition = Q()
    for lookup in parties:
        condition |= Q(**{lookup: membership.organisation_id})
    return qs.filter(condition)
