"""Which trades a user may see: the buyer's and provider's organisations, and officers."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, Q, QuerySet

from marketplace.models import Trade, TradeDocument, TradeEvent
from marketplace.selectors.members import is_officer, membership_of


def trade_list_for(*, user: AbstractBaseUser) -> QuerySet[Trade]:
    qs = Trade.objects.select_related("dataset", "buyer", "provider", "decision")
    if is_officer(user):
        return qs
    membership = membership_of(user)
    if membership is None:
        return qs.none()
    org = membership.organisation_id
    return qs.filter(Q(buyer_id=org) | Q(provider_id=org))


def trade_detail_queryset(*, user: AbstractBaseUser) -> QuerySet[Trade]:
    return trade_list_for(user=user).prefetch_related(Prefetch("events", queryset=TradeEvent.objects.order_by("at", "id")))


def review_queue(*, user: AbstractBaseUser, include_waiting: bool = False) -> QuerySet[Trade]:
    """Trades the engine sent to a person, longest waiting first (`waiting_since`, which a re-check
    does not reset), with their evidence. With `include_waiting`, also those waiting for documents
    (which an officer may decide too)."""
    statuses = [Trade.Status.IN_REVIEW, *([Trade.Status.NEEDS_DOCUMENTS] if include_waiting else [])]
    return (
        trade_list_for(user=user).filter(status__in=statuses)
        .prefetch_related(Prefetch("documents", queryset=TradeDocument.objects.order_by("created_at")))
        .order_by("waiting_since", "id")
    )
