"""Access grants: what a buyer may download, issued at settlement, revocable, and every download recorded.

The rules:
- valid_from is the settlement time; a subscription renewal (trade.renews) starts when the grant it
  renews ends, if that is later (renewing early does not shorten the current term). A revoked or
  open-ended renewed grant chains nothing: the renewal starts at settlement.
- valid_until is valid_from + licence["term_days"] days, or no expiry when the licence sets no term.
- Versions: a one-time purchase covers versions 1…N, N being the latest at settlement (1 if nothing
  was uploaded yet: the buyer gets the first upload); a subscription covers every version.
"""

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Subquery
from django.utils import timezone

from compliance.models import Review
from config.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from marketplace.errors import (
    GrantAlreadyRevokedError,
)
from marketplace.models import AccessGrant, Dataset, DatasetFile, Membership, Trade
from marketplace.selectors.grants import _utc
from marketplace.selectors.members import is_officer
from marketplace.services.events import event_emit

logger = logging.getLogger(__name__)


# --- issuing and revoking ---------------------------------------------------------------------


def _term_days(licence: Any) -> int | None:
    term = licence.get("term_days") if isinstance(licence, dict) else None
    if isinstance(term, bool) or not isinstance(term, int) or term <= 0:
        return None
    return term


# What issuing a grant reads, as annotations a caller about to settle can add to its trade lock
# (trade_lock(for_settlement=True)): the trade's grant if it has one (a duplicate settlement),
# whether an officer approved it (whose conditions may shorten the grant) and the dataset's latest
# file version. Read with the lock, they cost no statement of their own.
_CONTEXT = ("grant_context_existing", "grant_context_approved", "grant_context_latest")


def grant_context_annotations() -> dict[str, Any]:
    return {
        _CONTEXT[0]: Subquery(AccessGrant.objects.filter(trade_id=OuterRef("pk")).values("pk")[:1]),
        _CONTEXT[1]: Exists(Review.objects.filter(subject_type="trade", subject_id=OuterRef("pk"), verdict="approve")),
        _CONTEXT[2]: Subquery(
            DatasetFile.objects.filter(dataset_id=OuterRef("dataset_id")).order_by().values("dataset_id")
            .annotate(latest=Max("version")).values("latest")[:1]
        ),
    }


def _settlement_context(trade: Trade) -> tuple[UUID | str | None, bool, int | None]:
    """The grant context read with the trade's lock (used once: taken off the instance), or, for a
    caller that locked the trade without it, in one statement of its own."""
    if hasattr(trade, _CONTEXT[0]):
        existing_id, approved, latest = (getattr(trade, name) for name in _CONTEXT)
        for name in _CONTEXT:
            delattr(trade, name)
        return existing_id, bool(approved), latest
    grant, review, version = AccessGrant._meta, Review._meta, DatasetFile._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT id FROM {grant.db_table} WHERE trade_id = %s), "
            f"EXISTS (SELECT 1 FROM {review.db_table} WHERE subject_type = 'trade' AND subject_id = %s "
            f"AND verdict = 'approve'), "
            f"(SELECT MAX(version) FROM {version.db_table} WHERE dataset_id = %s)",
            [grant.get_field("trade").get_db_prep_value(trade.id, connection),
             review.get_field("subject_id").get_db_prep_value(trade.id, connection),
             version.get_field("dataset").get_db_prep_value(trade.dataset_id, connection)],
        )
        existing_id, approved, latest = cursor.fetchone()
    return existing_id, bool(approved), latest


@transaction.atomic(savepoint=False)  # inside the settlement's transaction: no savepoint of its own
def grant_issue(*, trade: Trade) -> AccessGrant:
    """Issue the buyer's access grant for a trade that is settling.

    Called by trade_apply_transition inside the settlement transaction, with the trade row locked;
    idempotent: a trade that already has a grant gets it back. The OneToOne on trade is the last guard.
    """
    existing_id, approved, latest = _settlement_context(trade)
    if existing_id is not None:
        return AccessGrant.objects.get(pk=existing_id)
    valid_from = trade.settled_at or timezone.now()
    if trade.renews_id is not None:
        renewed = (
            AccessGrant.objects.filter(trade_id=trade.renews_id, revoked_at__isnull=True).only("valid_until").first()
        )
        if renewed is not None and renewed.valid_until is not None and renewed.valid_until > valid_from:
            valid_from = renewed.valid_until
    term = _term_days(trade.licence)
    # An officer may approve on condition that access is shorter than the licence (e.g. 90 days).
    limits = [
        r.conditions["grant_valid_days"]
        for r in Review.objects.filter(subject_type="trade", subject_id=trade.id, verdict="approve")
        if isinstance(r.conditions, dict) and r.conditions.get("grant_valid_days")
    ] if approved else []
    if limits:
        term = min([term, *limits]) if term else min(limits)
    if trade.pricing == "subscription":
        max_version = None
    else:
        max_version = latest or 1
    grant = AccessGrant.objects.create(
        trade=trade, buyer_id=trade.buyer_id, dataset_id=trade.dataset_id, max_version=max_version,
        destination=trade.destination, valid_from=valid_from,
        valid_until=valid_from + timedelta(days=term) if term else None,
    )
    if trade.delivery == "compute":
        from marketplace.services.compute import compute_grant_setup

        compute_grant_setup(grant=grant, trade=trade)
        max_version = None
    logger.info(
        "trade %s: grant %s issued, valid %s to %s, versions ≤ %s",
        trade.id,
        grant.id,
        grant.valid_from,
        grant.valid_until,
        grant.max_version or "all",
    )
    event_emit(
        kind="grant.issued",
        subject_type="grant",
        subject_id=grant.id,
        actor_label="system:settlement",
        organisation_ids=[trade.buyer_id, trade.provider_id],
        data={
            "trade": str(trade.id),
            "dataset": str(trade.dataset_id),
            "buyer": str(trade.buyer_id),
            "max_version": max_version,
            "valid_from": grant.valid_from,
            "valid_until": grant.valid_until,
            "destination": grant.destination,
            "delivery": trade.delivery,
            "queries": grant.queries_left,
        },
    )
    return grant


def grant_revoke_locked(*, grant: AccessGrant, user: User | None, label: str, reason: str) -> AccessGrant:
    """Revoke a grant whose row the caller has locked in its transaction; both parties are told."""
    grant.revoked_at = timezone.now()
    grant.revoked_reason = reason
    grant.revoked_by = user
    grant.revoked_by_label = label[:150]
    grant.save(update_fields=["revoked_at", "revoked_reason", "revoked_by", "revoked_by_label"])
    logger.info("grant %s revoked by %s: %s", grant.id, grant.revoked_by_label, reason)
    provider_id = Dataset.objects.filter(pk=grant.dataset_id).values_list("provider_id", flat=True).first()
    event_emit(
        kind="grant.revoked",
        subject_type="grant",
        subject_id=grant.id,
        actor=user,
        actor_label=grant.revoked_by_label,
        organisation_ids=[grant.buyer_id] if provider_id is None else [grant.buyer_id, provider_id],
        data={"trade": str(grant.trade_id), "dataset": str(grant.dataset_id), "reason": reason},
    )
    return grant


@transaction.atomic
def grant_revoke(*, grant_id: UUID, actor_membership: Membership, reason: str) -> AccessGrant:
    """Revoke a grant without a refund: an officer, with a reason (re-screening flags). Downloads stop
    at once; downloads already streaming finish (the check is made when a download starts). A
    provider does not revoke alone: see grant_revocations.grant_revocation_request."""
    grant = AccessGrant.objects.select_for_update(of=("self",)).select_related("dataset").filter(pk=grant_id).first()
    if grant is None:
        raise NotFoundError("No such grant.")
    user = actor_membership.user
    if not is_officer(user):
        raise PermissionDeniedError("Only an officer may revoke a grant.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInputError("A reason is required.", fields={"reason": ["this field is required"]})
    if grant.revoked_at is not None:
        raise GrantAlreadyRevokedError(f"The grant was already revoked on {_utc(grant.revoked_at)}.")
    return grant_revoke_locked(grant=grant, user=user, label=user.get_username(), reason=reason)


@transaction.atomic
def grant_revoke_for_trade(*, trade: Trade, actor: User | Membership | str | None, reason: str) -> None:
    """Revoke the grant a trade issued (refunds). No-op if the trade has no grant or it is already
    revoked (the first revocation's reason stands). `actor` is a user, a membership, a label such as
    "system:refund", or None ("system")."""
    grant = AccessGrant.objects.select_for_update().filter(trade_id=trade.id).first()
    if grant is None or grant.revoked_at is not None:
        return
    if isinstance(actor, Membership):
        actor = actor.user
    if isinstance(actor, str) or actor is None:
        grant_revoke_locked(grant=grant, user=None, label=actor or "system", reason=reason or "refunded")
    else:
        grant_revoke_locked(grant=grant, user=actor, label=actor.get_username(), reason=reason or "refunded")


# --- reads ------------------------------------------------------------------------------------
# (Selectors; kept here, next to the grant services they serve, rather than in marketplace/selectors/.)


