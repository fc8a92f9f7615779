"""Compute-to-data over HTTP: a dataset's compute offer, queries under a compute grant, their
results (JSON, or CSV with `Accept: text/csv` or `?format=csv`), and officers' review of held results."""

import csv
import io
import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import PermissionDeniedError
from config.permissions import IsOfficer
from config.serializers import StrictModelSerializer, StrictSerializer
from config.users import request_user
from marketplace.apis.serializers import CurrencyField, ReasonSerializer
from marketplace.models import ComputeOffer, ComputeQuery, Dataset, Membership
from marketplace.models.compute import MIN_K
from marketplace.money import MoneyError, money
from marketplace.selectors.datasets import dataset_list_visible
from marketplace.selectors.members import membership_of, scoped_to_parties
from marketplace.services import compute as compute_services


def _membership(request: Request) -> Membership:
    membership = membership_of(request.user)
    if membership is None:
        raise PermissionDeniedError("Your account belongs to no organisation.")
    return membership


class ComputeOfferSerializer(StrictModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    columns = serializers.DictField(child=serializers.ChoiceField(choices=ComputeOffer.Role.choices), allow_empty=False,
                                    help_text="{column: role}; roles: identifier, quasi_identifier, sensitive, plain.")
    min_group_size = serializers.IntegerField(min_value=MIN_K, max_value=100_000, default=10)
    max_result_rows = serializers.IntegerField(min_value=1, max_value=100_000, default=1000)
    price = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, help_text="Per period, or per query."
    )
    currency = CurrencyField(default="USD")
    term_days = serializers.IntegerField(min_value=1, max_value=3650, default=30)
    bounds = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        required=False,
        default=dict,
    )
    dp_epsilon_per_period = serializers.DecimalField(
        max_digits=8, decimal_places=4, min_value=0, required=False, allow_null=True
    )
    dp_epsilon_per_query = serializers.DecimalField(
        max_digits=8, decimal_places=4, min_value=0, required=False, allow_null=True
    )

    class Meta:
        model = ComputeOffer
        fields = [
            "dataset",
            "enabled",
            "table_name",
            "columns",
            "min_group_size",
            "max_result_rows",
            "price",
            "currency",
            "pricing",
            "term_days",
            "dp_epsilon_per_period",
            "dp_epsilon_per_query",
            "bounds",
            "contributions_per_person",
            "review_sensitive_queries",
            "updated_at",
        ]
        read_only_fields = ["dataset", "review_sensitive_queries", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["price"] = money(attrs["price"], (attrs.get("currency") or "USD").upper())
        except MoneyError as exc:
            raise serializers.ValidationError({"price": [str(exc)]}) from None
        return attrs


class DatasetComputeOfferApi(APIView):
    """A dataset's compute offer: run aggregate queries where the data is stored instead of buying the file."""

    def _dataset(self, request: Request, dataset_id: uuid.UUID) -> Dataset:
        return get_object_or_404(dataset_list_visible(user=request.user), pk=dataset_id)

    @extend_schema(responses=ComputeOfferSerializer)
    def get(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """Anyone who sees the dataset (404 when it has no compute offer)."""
        offer = get_object_or_404(ComputeOffer, dataset=self._dataset(request, dataset_id))
        return Response(ComputeOfferSerializer(offer).data)

    @extend_schema(request=ComputeOfferSerializer, responses=ComputeOfferSerializer)
    def put(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """The dataset's provider: create or replace the offer (k at least 5; both ε values or neither).
        Audited (`dataset.compute_offered`)."""
        dataset = self._dataset(request, dataset_id)
        membership = _membership(request)
        if dataset.provider_id != membership.organisation_id:
            raise PermissionDeniedError("Only the dataset's provider may offer it for computation.")
        serializer = ComputeOfferSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer = compute_services.compute_offer_put(
            dataset_id=dataset.id, membership=membership, values=serializer.validated_data
        )
        return Response(ComputeOfferSerializer(offer).data)


class ReviewPolicySerializer(ReasonSerializer):
    review_sensitive_queries = serializers.BooleanField()


class ComputeReviewPolicyApi(APIView):
    permission_classes = [IsAuthenticated, IsOfficer]

    @extend_schema(request=ReviewPolicySerializer, responses=ComputeOfferSerializer)
    def post(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """Officers: require (or stop requiring) an officer's release of results of queries that read a
        sensitive column. Audited (`dataset.compute_review_policy`)."""
        serializer = ReviewPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        offer = compute_services.compute_offer_require_review(
            dataset_id=dataset_id,
            officer=request_user(request),
            required=data["review_sensitive_queries"],
            reason=data["reason"],
        )
        return Response(ComputeOfferSerializer(offer).data)


class QuerySubmitSerializer(StrictSerializer):
    sql = serializers.CharField(
        max_length=10_000,
        trim_whitespace=True,
        help_text="One aggregate SELECT over the grant's tables (see GET /grants/{id}/ `tables`).",
    )


class ComputeQuerySerializer(StrictModelSerializer):
    grant = serializers.UUIDField(source="grant_id")
    dataset = serializers.UUIDField(source="dataset_id")
    report = serializers.SerializerMethodField(
        help_text="The release report: rows read, groups suppressed (< k), rows capped, ε spent."
    )
    result = serializers.SerializerMethodField(help_text="{columns, rows}; null until released.")

    class Meta:
        model = ComputeQuery
        fields = [
            "id",
            "grant",
            "dataset",
            "username",
            "sql",
            "sql_sha256",
            "status",
            "reason_code",
            "reason",
            "queue",
            "tables",
            "review_required",
            "report",
            "result",
            "result_sha256",
            "reviewed_by_label",
            "review_reason",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_report(self, query: ComputeQuery) -> dict[str, Any]:
        return {"k": query.k, "rows_read": query.rows_read, "groups_total": query.groups_total,
                "groups_suppressed": query.groups_suppressed, "rows_capped": query.rows_capped,
                "epsilon_reserved": float(query.epsilon), "epsilon_spent": float(query.epsilon_spent),
                "differential_privacy": query.mechanism, "columns_read": query.columns_read}

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_result(self, query: ComputeQuery) -> dict[str, Any] | None:
        return query.result if query.status == ComputeQuery.Status.RELEASED else None


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        return JSONRenderer().render(data)  # only errors reach here: the result CSV is written by the view


def query_visible(*, user: Any) -> QuerySet[ComputeQuery]:
    """The buying organisation's queries; officers see all. A provider sees none of the buyer's SQL."""
    qs = ComputeQuery.objects.select_related("grant")
    return scoped_to_parties(qs, user=user, parties=("buyer_id",))


class ComputeQueryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Compute queries: status (queued, running, held, released, refused, failed), release report and result."""

    serializer_class = ComputeQuerySerializer
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get_renderers(self) -> list[BaseRenderer]:
        """CSV is the released result of one query: the other actions answer JSON only."""
        if getattr(self, "action", None) == "retrieve":
            return super().get_renderers()
        return [JSONRenderer()]

    def handle_exception(self, exc: Exception) -> Response:
        """Errors are JSON, in the error shape, whatever format the client asked for."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response

    def get_queryset(self) -> QuerySet[ComputeQuery]:
        if getattr(self, "swagger_fake_view", False):
            return ComputeQuery.objects.none()
        qs = query_visible(user=self.request.user)
        if self.action == "list" and self.request.query_params.get("status"):
            qs = qs.filter(status=self.request.query_params["status"])
        return qs

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the released result as CSV.")
        ]
    )
    def retrieve(self, request: Request, pk: str | None = None) -> Any:
        """The buying organisation and officers (others: 404). With `Accept: text/csv` or `?format=csv`,
        the released result as CSV (header row, then the rows); a query with no released result
        answers 404 in that format."""
        query = self.get_object()
        if getattr(request.accepted_renderer, "format", "") == "csv":
            if query.status != ComputeQuery.Status.RELEASED or not query.result:
                return HttpResponse("no released result\n", status=status.HTTP_404_NOT_FOUND, content_type="text/csv")
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(query.result["columns"])
            writer.writerows(query.result["rows"])
            response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="query-{query.id}.csv"'
            return response
        return Response(self.get_serializer(query).data)

    def _review(self, request: Request, *, release_it: bool) -> Response:
        query = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reviewed = compute_services.compute_query_review(
            query_id=query.id,
            officer=request_user(request),
            release_it=release_it,
            reason=serializer.validated_data["reason"],
        )
        return Response(ComputeQuerySerializer(reviewed).data)

    @extend_schema(request=ReasonSerializer, responses=ComputeQuerySerializer)
    @action(
        detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsOfficer], renderer_classes=[JSONRenderer]
    )
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Officers: release a held result to the buyer (its ε is spent). 409 `query_not_held`."""
        return self._review(request, release_it=True)

    @extend_schema(request=ReasonSerializer, responses=ComputeQuerySerializer)
    @action(
        detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsOfficer], renderer_classes=[JSONRenderer]
    )
    def refuse(self, request: Request, pk: str | None = None) -> Response:
        """Officers: refuse a held result; the buyer never sees it, its ε and query are given back. 409
        `query_not_held`."""
        return self._review(request, release_it=False)


QUERY_ACCEPTED = inline_serializer("QueryAccepted", {"id": serializers.UUIDField(), "status": serializers.CharField(),
                                                     "queue": serializers.CharField(), "url": serializers.CharField()})


def grant_queries(view: Any, request: Request, grant: Any) -> Response:
    """GET: the grant's queries, newest first. POST: submit one (202 with its id; 400 `query_refused`)."""
    if request.method == "GET":
        qs = query_visible(user=request.user).filter(grant=grant)
        page = view.paginate_queryset(qs)
        return view.get_paginated_response(ComputeQuerySerializer(page, many=True).data)
    if grant.buyer_id != _membership(request).organisation_id:
        raise PermissionDeniedError("Only the buying organisation runs queries under a grant.")
    serializer = QuerySubmitSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    query = compute_services.compute_query_submit(
        grant_id=grant.id, membership=_membership(request), sql=serializer.validated_data["sql"]
    )
    return Response(
        {"id": str(query.id), "status": query.status, "queue": query.queue, "url": f"/api/v1/queries/{query.id}/"},
        status=status.HTTP_202_ACCEPTED,
    )

