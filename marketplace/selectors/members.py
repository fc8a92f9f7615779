"""Who a user is on the marketplace: organisation and role."""

from typing import Any

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
