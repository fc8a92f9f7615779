"""The officers' review queue."""


from django.db.models import QuerySet
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from config.permissions import IsOfficer
from marketplace.apis import serializers as s
from marketplace.apis.filters import ReviewQueueFilter
from marketplace.models import Trade
from marketplace.selectors.trades import review_queue


class ReviewQueueApi(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Officers only: what waits for an officer, longest waiting first (`waiting_since`, which a
    re-check does not reset): trades in review, and open trades with evidence to accept or reject
    (`pending_evidence`; `?item=evidence` or `?item=review` picks one kind). Each comes with its
    facts in full (officers see the exporter's itemised earlier transfers, `prior_exports`),
    findings, requirements, evidence and `waiting_since`. `?waiting=true` adds trades waiting for
    documents; `regime` matches regimes with a finding that is not `allow`;
    `waiting_since_before` / `waiting_since_after` take ISO 8601."""

    serializer_class = s.ReviewItemSerializer
    permission_classes = [IsAuthenticated, IsOfficer]
    filterset_class = ReviewQueueFilter

    def get_queryset(self) -> QuerySet[Trade]:
        waiting = self.request.query_params.get("waiting", "").lower() in ("1", "true", "yes")
        return review_queue(user=self.request.user, include_waiting=waiting)
