"""DRF permission atoms by the caller's role in its organisation.

Here in config, not in an app, so compliance can use them without importing marketplace: the role
is read from `user.membership` by attribute, the way Django exposes the one-to-one relation.
"""

from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

PROVIDER, BUYER, OFFICER, ADMIN = "provider", "buyer", "officer", "admin"


def role_of(user: Any) -> str | None:
    """The user's role; None without a membership. The officer and admin roles hold only in the
    platform operator's organisation: an "officer" of a buyer or provider would review evidence and
    read facts of every other organisation's trades, so it is no role at all."""
    if not getattr(user, "is_authenticated", False):
        return None
    membership = getattr(user, "membership", None)
    role = getattr(membership, "role", None)
    if role in (OFFICER, ADMIN) and not getattr(getattr(membership, "organisation", None), "is_operator", False):
        return None
    return role


class _HasRole(BasePermission):
    roles: tuple[str, ...] = ()
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return role_of(request.user) in self.roles


class IsProvider(_HasRole):
    roles = (PROVIDER, ADMIN)
    message = "Only a data provider may do this."


class IsBuyer(_HasRole):
    roles = (BUYER,)
    message = "Only a buyer may do this."


class IsOfficer(_HasRole):
    roles = (OFFICER, ADMIN)
    message = "Only a compliance officer may do this."


class IsAuthenticatedOrPublicCatalogue(BasePermission):
    """Signed-in callers; anonymous ones too, for reads only, while ELEMENTA_PUBLIC_CATALOGUE is on.
    Put only on views that show published listings and nothing provider-private to anonymous callers."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(request.user, "is_authenticated", False):
            return True
        return request.method in SAFE_METHODS and bool(settings.ELEMENTA_PUBLIC_CATALOGUE)
