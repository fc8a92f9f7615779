"""Which access grants a user may see, and what a buyer's active grants cover."""

from datetime import UTC, datetime
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from marketplace.models import AccessGrant, GrantRevocationRequest
from marketplace.selectors.members import scoped_to_parties


def grant_list_visible(*, user: User | AnonymousUser) -> QuerySet[AccessGrant]:
    """Grants the user may see: its organisation's as buyer, those on its organisation's datasets,
    or all for officers."""
    qs = AccessGrant.objects.select_related("dataset", "buyer", "trade")
    return scoped_to_parties(qs, user=user, parties=("buyer_id", "dataset__provider_id"))


def grant_highest_version_for(*, organisation_id: UUID, dataset_id: UUID) -> tuple[bool, int | None]:
    """(holds an active download grant, highest version its active grants cover: None = every version).
    Compute grants never show the files: their buyers query them where they are stored."""
    grants = list(
        AccessGrant.objects.filter(
            AccessGrant.active_q(), buyer_id=organisation_id, dataset_id=dataset_id, trade__delivery="download"
        ).values_list("max_version", flat=True)
    )
    if not grants:
        return False, None
    if any(v is None for v in grants):
        return True, None
    return True, max(v for v in grants if v is not None)


def revocation_request_list_visible(*, user: User | AnonymousUser) -> QuerySet[GrantRevocationRequest]:
    """Revocation requests the user may see: those on grants it may see (the grant's buyer and the
    dataset's provider; officers see all)."""
    qs = GrantRevocationRequest.objects.select_related("grant__dataset", "grant__buyer")
    return scoped_to_parties(qs, user=user, parties=("grant__buyer_id", "grant__dataset__provider_id"))


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "?"


def grant_inactive_message(grant: AccessGrant, now: datetime | None = None) -> str:
    status = grant.status_at(now)
    if status == AccessGrant.Status.REVOKED:
        return f"The grant was revoked on {_utc(grant.revoked_at)}: {grant.revoked_reason}"
    if status == AccessGrant.Status.SUSPENDED:
        return (f"The grant was suspended on {_utc(grant.suspended_at)} until an officer reviews it: "
                f"{grant.suspended_reason}")
    if status == AccessGrant.Status.EXPIRED:
        return f"The grant expired on {_utc(grant.valid_until)}."
    if status == AccessGrant.Status.PENDING:
        return f"The grant starts on {_utc(grant.valid_from)}."
    return "The grant is active."
