"""Revocation requests over HTTP: a provider asks, the buyer sees, an officer decides.

A provider cannot take paid access away alone: POST /grants/{id}/revoke/ (or POST here) files a
request, answered 202; access stays as it is until an officer decides at
POST /revocation-requests/{id}/decide/ (revoke with a refund decision, or decline).
"""

from collections.abc import Sequence
from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import NotFoundError, PermissionDeniedError
from config.permissions import IsOfficer, IsProvider
from config.serializers import StrictModelSerializer, StrictSerializer
from marketplace.idempotency import idempotent
from marketplace.models import AccessGrant, GrantRevocationRequest, Membership
from marketplace.selectors.grants import grant_list_visible, revocation_request_list_visible
from marketplace.selectors.members import membership_of
from marketplace.services.grant_revocations import grant_revocation_decide, grant_revocation_request


def membership_required(request: Request) -> Membership:
    membership = membership_of(request.user)
    if membership is None:
        raise PermissionDeniedError("Your account belongs to no organisation.")
    return membership


class RevocationRequestSerializer(StrictModelSerializer):
    grant = serializers.UUIDField(source="grant_id")
    trade = serializers.UUIDField(source="grant.trade_id")
    dataset = serializers.UUIDField(source="grant.dataset_id")
    dataset_title = serializers.CharField(source="grant.dataset.title")
    provider = serializers.UUIDField(source="grant.dataset.provider_id")
    buyer = serializers.UUIDField(source="grant.buyer_id")
    buyer_name = serializers.CharField(source="grant.buyer.name")
    grant_status = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="requested_by_label")
    requested_by_organisation = serializers.UUIDField(source="requested_by_organisation_id")
    decided_by = serializers.CharField(source="decided_by_label")
    refund_amount = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True, coerce_to_string=True,
                                             help_text="What the buyer got back (null until revoked).")

    class Meta:
        model = GrantRevocationRequest
        fields = [
            "id", "grant", "trade", "dataset", "dataset_title", "provider", "buyer", "buyer_name", "grant_status",
            "reason", "requested_by", "requested_by_organisation", "created_at", "status",
            "decided_by", "decided_at", "decision_reason", "refund", "refund_amount", "refund_currency",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.CharField(help_text="The grant's status now: pending, active, suspended, expired or revoked.")
    )
    def get_grant_status(self, request: GrantRevocationRequest) -> str:
        return request.grant.status_at()


class RevocationRequestCreateSerializer(StrictSerializer):
    grant = serializers.UUIDField()
    reason = serializers.CharField(max_length=4000, help_text="Why access should end; the buyer sees it.")


class RevocationDecisionSerializer(StrictSerializer):
    decision = serializers.ChoiceField(
        choices=["revoke", "decline"], help_text="revoke: access ends now; decline: access stays."
    )
    refund = serializers.ChoiceField(
        choices=GrantRevocationRequest.Refund.choices,
        required=False,
        help_text="Required to revoke. full: the price back, trade refunded; pro_rata: the unused "
        "fraction of the term (rounded down to the cent), trade stays settled; none.",
    )
    reason = serializers.CharField(max_length=4000, help_text="Why; both parties see it.")


class RevocationRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=GrantRevocationRequest.Status.choices)
    grant = django_filters.UUIDFilter(field_name="grant_id")

    class Meta:
        model = GrantRevocationRequest
        fields: list[str] = []


class RevocationRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Requests to revoke access grants, newest first: the grant's buyer and the dataset's provider
    see theirs, officers see all; another organisation gets 404."""

    serializer_class = RevocationRequestSerializer
    filterset_class = RevocationRequestFilter
    queryset = GrantRevocationRequest.objects.none()  # for the schema; get_queryset is what runs

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "create":
            return [IsAuthenticated(), IsProvider()]
        if self.action == "decide":
            return [IsAuthenticated(), IsOfficer()]
        return super().get_permissions()

    def get_queryset(self) -> QuerySet[GrantRevocationRequest]:
        if getattr(self, "swagger_fake_view", False):
            return GrantRevocationRequest.objects.none()
        return revocation_request_list_visible(user=self.request.user).order_by("-created_at", "-id")

    @extend_schema(request=RevocationRequestCreateSerializer, responses={202: RevocationRequestSerializer})
    def create(self, request: Request) -> Response:
        """The dataset's provider asks for a grant to be revoked (providers only; 404 for a grant you
        cannot see, 403 for one on another provider's dataset, 409 `revocation_request_pending` /
        `grant_already_revoked`). Answers 202: nothing changes for the buyer until an officer decides."""
        serializer = RevocationRequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        grant_id = serializer.validated_data["grant"]
        if not grant_list_visible(user=request.user).filter(pk=grant_id).exists():
            raise NotFoundError("No such grant.")
        filed = grant_revocation_request(
            grant_id=grant_id, membership=membership_required(request), reason=serializer.validated_data["reason"]
        )
        return Response(
            RevocationRequestSerializer(self.get_queryset().get(pk=filed.pk)).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(request=RevocationDecisionSerializer, responses=RevocationRequestSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Officers only: revoke (with a refund decision: full, pro_rata or none) or decline, with a
        reason. Errors: 400 (no reason; revoke without refund; `pro_rata_unavailable` for a grant
        with no end date), 409 `revocation_request_decided`, `grant_already_revoked`, `refund_not_covered`."""
        filed = self.get_object()
        serializer = RevocationDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        decided = grant_revocation_decide(
            request_id=filed.id,
            officer=membership_required(request),
            revoke=data["decision"] == "revoke",
            refund=data.get("refund"),
            reason=data["reason"],
        )
        return Response(RevocationRequestSerializer(self.get_queryset().get(pk=decided.pk)).data)


def revocation_requests_of(grant: AccessGrant) -> list[dict[str, Any]]:
    """A grant's requests, newest first (from the prefetch when the caller made one)."""
    requests = sorted(grant.revocation_requests.all(), key=lambda r: (r.created_at, str(r.id)), reverse=True)
    return RevocationRequestSerializer(requests, many=True).data  # type: ignore[return-value]
