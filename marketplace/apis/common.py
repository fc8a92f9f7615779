"""What every API module needs about the caller."""

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from config.errors import PermissionDeniedError
from marketplace.models import Membership
from marketplace.selectors.members import membership_of


def request_membership(request: Request) -> Membership:
    """The caller's membership; 403 if the account belongs to no organisation."""
    membership = membership_of(request.user)
    if membership is None:
        raise PermissionDeniedError("Your account belongs to no organisation.")
    return membership


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Retrying with the same key and body returns the first response instead of acting twice (kept ≥ 24 h).",
)
