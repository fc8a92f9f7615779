"""Which trades a user may see: the buyer's and provider's organisations, and officers."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from marketplace.models import EvidenceStatus, Trade, TradeDocument, TradeEvent
from marketplace.selectors.members import scoped_to_parties


def trade_list_for(*, user: User | AnonymousUser) -> QuerySet[Trade]:
    qs = Trade.objects.select_related("dataset", "buyer", "provider", "decision")
    return scoped_to_parties(qs, user=user, parties=("buyer_id", "provider_id"))


def trade_detail_queryset(*, user: User | AnonymousUser) -> QuerySet[Trade]:
    return trade_list_for(user=user).prefetch_related(
        Prefetch("events", queryset=TradeEvent.objects.order_by("at", "id"))
    )


# An open trade with evidence pending an officer's review is in the queue whatever its status.
EVIDENCE_OPEN = (Trade.Status.CHECKING, Trade.Status.NEEDS_DOCUMENTS, Trade.Status.IN_REVIEW)


def review_queue(*, user: User | AnonymousUser, include_waiting: bool = False) -> QuerySet[Trade]:
    """What waits for an officer, longest waiting first (`waiting_since`, which a re-check does not
    reset), with its evidence: trades the engine sent to a person, and open trades with evidence to
    accept or reject (`pending_evidence`). With `include_waiting`, also every trade waiting for
    documents (which an officer may reject)."""
    statuses = [Trade.Status.IN_REVIEW, *([Trade.Status.NEEDS_DOCUMENTS] if include_waiting else [])]
    pending = TradeDocument.objects.filter(trade_id=OuterRef("pk"), status=EvidenceStatus.PENDING)
    return (
        trade_list_for(user=user).annotate(pending_evidence=Exists(pending))
        .filter(Q(status__in=statuses) | Q(pending_evidence=True, status__in=EVIDENCE_OPEN))
        .prefetch_related(Prefetch("documents", queryset=TradeDocument.objects.order_by("created_at")))
        .order_by("waiting_since", "id")
    )
