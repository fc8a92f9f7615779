"""Dataset files and access grants over HTTP: upload versions, list grants, download; revocation
requests (providers), suspension and revocation decisions (officers)."""

import uuid
from collections.abc import Sequence
from typing import Any

import django_filters
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import error_body
from config.errors import PermissionDeniedError
from config.permissions import IsOfficer, IsProvider
from config.serializers import StrictModelSerializer, StrictSerializer
from marketplace.apis.common import request_membership as _membership
from marketplace.apis.compute import QUERY_ACCEPTED, ComputeQuerySerializer, QuerySubmitSerializer, grant_queries
from marketplace.apis.revocations import RevocationRequestSerializer, revocation_requests_of
from marketplace.apis.serializers import ReasonSerializer
from marketplace.errors import GrantRequiredError, GrantSuspendedError, RangeNotSatisfiableError
from marketplace.idempotency import idempotent
from marketplace.models import AccessGrant, Dataset, DatasetFile, GrantDownload, GrantRevocationRequest, PrivacyBudget
from marketplace.selectors.datasets import dataset_list_visible
from marketplace.selectors.grants import grant_highest_version_for, grant_list_visible
from marketplace.selectors.members import is_officer
from marketplace.services.compute import compute_tables
from marketplace.services.dataset_files import dataset_file_upload
from marketplace.services.downloads import DownloadPlan, DownloadStream, etag_of, grant_download_open
from marketplace.services.grant_revocations import grant_reinstate, grant_revocation_request, grant_revoke_by_officer

# --- serializers ------------------------------------------------------------------------------


class AccessErrorSerializer(StrictSerializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField()  # type: ignore[assignment]  # a declared field: the metaclass pops it, no .fields clash


class DatasetFileSerializer(StrictModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by_label", read_only=True)

    class Meta:
        model = DatasetFile
        fields = [
            "id",
            "dataset",
            "version",
            "original_name",
            "content_type",
            "size",
            "sha256",
            "uploaded_by",
            "created_at",
        ]
        read_only_fields = fields


class DatasetFileUploadSerializer(StrictSerializer):
    file = serializers.FileField(
        help_text="The new version's content; its type is taken from the file name.", allow_empty_file=True
    )


class GrantDownloadSerializer(StrictModelSerializer):
    range = serializers.CharField(source="range_header")

    class Meta:
        model = GrantDownload
        fields = [
            "at",
            "version",
            "username",
            "range",
            "first_byte",
            "last_byte",
            "length",
            "bytes_sent",
            "completed_at",
        ]
        read_only_fields = fields


class GrantSerializer(StrictModelSerializer):
    trade = serializers.UUIDField(source="trade_id")
    dataset = serializers.UUIDField(source="dataset_id")
    dataset_title = serializers.CharField(source="dataset.title")
    provider = serializers.UUIDField(source="dataset.provider_id")
    buyer = serializers.UUIDField(source="buyer_id")
    buyer_name = serializers.CharField(source="buyer.name")
    pricing = serializers.CharField(source="trade.pricing")
    max_version = serializers.IntegerField(
        allow_null=True, help_text="Highest version covered; null: every version (subscriptions)."
    )
    download_version = serializers.SerializerMethodField(
        help_text="The version a download without ?version= gets; null: no file yet."
    )
    status = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()
    revoked_by = serializers.CharField(source="revoked_by_label")
    suspended_by = serializers.CharField(
        source="suspended_by_label", help_text="e.g. system:rescreening; empty unless suspended."
    )
    revocation_requests = serializers.SerializerMethodField(
        help_text="Requests to revoke this grant and their decisions, newest first."
    )
    delivery = serializers.CharField(
        source="trade.delivery", help_text="download: the file; compute: queries where the data is stored."
    )
    queries_left = serializers.IntegerField(
        allow_null=True, help_text="Per-query compute grants: queries still to run."
    )
    tables = serializers.SerializerMethodField(
        help_text="Compute grants: the queryable tables, their columns and roles, and the release policy."
    )
    privacy_budget = serializers.SerializerMethodField(
        help_text="Compute grants with differential privacy: ε total, reserved, spent, left."
    )

    class Meta:
        model = AccessGrant
        fields = [
            "id", "trade", "dataset", "dataset_title", "provider", "buyer", "buyer_name", "pricing", "destination",
            "max_version", "download_version", "valid_from", "valid_until", "status", "active",
            "revoked_at", "revoked_reason", "revoked_by", "suspended_at", "suspended_reason", "suspended_by",
            "revocation_requests", "delivery", "queries_left", "tables", "privacy_budget", "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(RevocationRequestSerializer(many=True))
    def get_revocation_requests(self, grant: AccessGrant) -> list[dict[str, Any]]:
        return revocation_requests_of(grant)

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_tables(self, grant: AccessGrant) -> list[dict[str, Any]]:
        return compute_tables(grant=grant) if grant.trade.delivery == "compute" else []

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_privacy_budget(self, grant: AccessGrant) -> dict[str, float] | None:
        try:
            budget = grant.privacy_budget
        except PrivacyBudget.DoesNotExist:
            return None
        return {"total": float(budget.total), "reserved": float(budget.reserved), "spent": float(budget.spent),
                "left": float(budget.total - budget.reserved - budget.spent)}

    def get_download_version(self, grant: AccessGrant) -> int | None:
        latest = getattr(grant, "latest_version", None)
        if latest is None:
            return None
        return latest if grant.max_version is None else min(latest, grant.max_version)

    @extend_schema_field(serializers.ChoiceField(choices=AccessGrant.Status.choices))
    def get_status(self, grant: AccessGrant) -> str:
        return grant.status_at()

    def get_active(self, grant: AccessGrant) -> bool:
        return grant.status_at() == AccessGrant.Status.ACTIVE


# --- filters ----------------------------------------------------------------------------------


class GrantFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(
        method="by_active", help_text="true: grants that allow downloads now; false: the others."
    )
    dataset = django_filters.UUIDFilter(field_name="dataset_id")
    suspended = django_filters.BooleanFilter(
        method="by_suspended", help_text="true: grants suspended and waiting for an officer."
    )

    class Meta:
        model = AccessGrant
        fields: list[str] = []

    def by_active(self, qs: QuerySet[AccessGrant], name: str, value: bool) -> QuerySet[AccessGrant]:
        return qs.filter(AccessGrant.active_q()) if value else qs.exclude(AccessGrant.active_q())

    def by_suspended(self, qs: QuerySet[AccessGrant], name: str, value: bool) -> QuerySet[AccessGrant]:
        suspended = qs.filter(suspended_at__isnull=False, revoked_at__isnull=True)
        return suspended if value else qs.exclude(pk__in=suspended.values("pk"))


# --- views ------------------------------------------------------------------------------------


class DatasetFileListApi(mixins.ListModelMixin, generics.GenericAPIView):
    """A dataset's file versions, newest first. Providers upload new versions; each is immutable."""

    serializer_class = DatasetFileSerializer
    parser_classes = [MultiPartParser]  # a real file upload: multipart only (the GET ignores it)

    def get_permissions(self) -> Sequence[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), IsProvider()]
        return super().get_permissions()

    def _dataset(self) -> Dataset:
        return get_object_or_404(
            dataset_list_visible(user=self.request.user), pk=self.kwargs["dataset_id"]
        )  # 404 if not visible

    def get_queryset(self) -> QuerySet[DatasetFile]:
        if getattr(self, "swagger_fake_view", False):
            return DatasetFile.objects.none()
        dataset = self._dataset()
        files = DatasetFile.objects.filter(dataset=dataset).order_by("-version")
        membership = _membership(self.request)
        if is_officer(self.request.user) or dataset.provider_id == membership.organisation_id:
            return files
        holds, highest = grant_highest_version_for(organisation_id=membership.organisation_id, dataset_id=dataset.id)
        if not holds:
            if AccessGrant.objects.filter(buyer_id=membership.organisation_id, dataset=dataset, revoked_at__isnull=True,
                                          suspended_at__isnull=False).exists():
                raise GrantSuspendedError()
            raise GrantRequiredError()
        return files if highest is None else files.filter(version__lte=highest)

    @extend_schema(responses=DatasetFileSerializer(many=True))
    def get(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """Versions you may see: all for the provider and officers; for a buyer, those its active grants
        cover (403 `grant_suspended` while its only grant is suspended, `grant_required` without one)."""
        return self.list(request)

    @extend_schema(request={"multipart/form-data": DatasetFileUploadSerializer}, responses={201: DatasetFileSerializer})
    def post(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """Upload the dataset's next version (the provider only)."""
        dataset = self._dataset()
        membership = _membership(request)
        if dataset.provider_id != membership.organisation_id:
            raise PermissionDeniedError("Only the dataset's provider may upload its files.")
        serializer = DatasetFileUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset_file = dataset_file_upload(
            dataset_id=dataset.id, membership=membership, upload=serializer.validated_data["file"]
        )
        return Response(DatasetFileSerializer(dataset_file).data, status=status.HTTP_201_CREATED)


class GrantRevokeSerializer(ReasonSerializer):
    refund = serializers.ChoiceField(
        choices=GrantRevocationRequest.Refund.choices,
        required=False,
        help_text="Officers: required. full: the price back, the trade becomes refunded; pro_rata: the unused "
                  "fraction of the "
        "term (rounded down to the cent), the trade stays settled; none. Ignored for a provider's request.",
    )


IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Retrying with the same key and body returns the first response instead of acting twice (kept ≥ 24 h).",
)


class DownloadQuerySerializer(serializers.Serializer):  # a query string, not a body
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Defaults to the latest version the grant covers."
    )


_BINARY = OpenApiResponse(OpenApiTypes.BINARY, description="The file's bytes (206: the requested range).")
_ERROR = AccessErrorSerializer


class GrantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What was bought: access grants issued at settlement, their downloads, and revocation."""

    filterset_class = GrantFilter

    def get_queryset(self) -> QuerySet[AccessGrant]:
        if getattr(self, "swagger_fake_view", False):
            return AccessGrant.objects.none()
        requests = GrantRevocationRequest.objects.select_related("grant__dataset", "grant__buyer").order_by(
            "-created_at", "-id"
        )
        qs = grant_list_visible(user=self.request.user).prefetch_related(
            Prefetch("revocation_requests", queryset=requests)
        )
        qs = qs.select_related("privacy_budget", "dataset__compute_offer")  # compute grants: no query per grant
        if self.action in ("list", "retrieve", "reinstate"):
            latest = (
                DatasetFile.objects.filter(dataset_id=OuterRef("dataset_id")).order_by("-version").values("version")[:1]
            )
            qs = qs.annotate(latest_version=Subquery(latest))
        return qs

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return GrantDownloadSerializer if self.action == "downloads" else GrantSerializer

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A download client may send `Accept: application/octet-stream`; the file is not rendered by
        # DRF, and errors fall back to JSON instead of a 406.
        return super().perform_content_negotiation(request, force=force or self.action == "download")

    @extend_schema(responses=GrantDownloadSerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None)
    def downloads(self, request: Request, pk: str | None = None) -> Response:
        """Every download under the grant, newest first: who, which version, which bytes, how much was sent."""
        grant = self.get_object()
        page = self.paginate_queryset(GrantDownload.objects.filter(grant=grant).order_by("-at", "-id"))
        return self.get_paginated_response(GrantDownloadSerializer(page, many=True).data)

    @extend_schema(
        request=GrantRevokeSerializer,
        responses={
            200: RevocationRequestSerializer,
            202: RevocationRequestSerializer,
            400: _ERROR,
            403: _ERROR,
            409: _ERROR,
        },
        parameters=[IDEMPOTENCY],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """The dataset's provider: files a revocation request (202, the request); access stays as it is
        until an officer decides at /revocation-requests/{id}/decide/. An officer: revokes now with a
        refund decision (`refund`: full, pro_rata or none; 200, the decided request; a pending provider
        request is decided by it). The buyer: 403; another organisation: 404. 409 `grant_already_revoked`,
        `revocation_request_pending`, `refund_not_covered`; 400 `pro_rata_unavailable` (no end date)."""
        grant = self.get_object()
        membership = _membership(request)
        officer = is_officer(request.user)
        if not officer and grant.buyer_id == membership.organisation_id:  # who may, before what is asked
            raise PermissionDeniedError("Only the dataset's provider may ask for a grant to be revoked.")
        serializer = GrantRevokeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if officer:
            decided = grant_revoke_by_officer(
                grant_id=grant.id, officer=membership, refund=data.get("refund"), reason=data["reason"]
            )
            return Response(RevocationRequestSerializer(GrantRevocationRequest.objects.get(pk=decided.pk)).data)
        filed = grant_revocation_request(grant_id=grant.id, membership=membership, reason=data["reason"])
        return Response(
            RevocationRequestSerializer(GrantRevocationRequest.objects.get(pk=filed.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(methods=["GET"], responses=ComputeQuerySerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=QuerySubmitSerializer,
        responses={202: QUERY_ACCEPTED, 400: _ERROR, 403: _ERROR, 409: _ERROR},
        parameters=[IDEMPOTENCY],
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None)
    @idempotent
    def queries(self, request: Request, pk: str | None = None) -> Response:
        """Compute grants. GET: the grant's queries (the buying organisation and officers; the provider
        sees none). POST (the buying organisation): `{"sql": "..."}`, one aggregate SELECT over the
        grant's `tables`; 202 with the query's id once accepted (poll GET /queries/{id}/), 400
        `query_refused` naming the reason (`fields.reason`), 409 `not_a_compute_grant`,
        `privacy_budget_exhausted`, `compute_quota_exhausted`; 403 `grant_inactive` / `grant_suspended`."""
        grant = self.get_object()
        if (
            request.method == "GET"
            and grant.buyer_id != _membership(request).organisation_id
            and not is_officer(request.user)
        ):
            raise PermissionDeniedError("Only the buying organisation and officers see a grant's queries.")
        return grant_queries(self, request, grant)

    @extend_schema(request=ReasonSerializer, responses={200: GrantSerializer, 403: _ERROR, 409: _ERROR})
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsOfficer])
    def reinstate(self, request: Request, pk: str | None = None) -> Response:
        """Officers only: lift a suspension (downloads work again at once) with a reason; the grant's
        open re-screening flags are closed with it. 409 `grant_not_suspended` / `grant_already_revoked`."""
        grant = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        grant_reinstate(grant_id=grant.id, officer=_membership(request), reason=serializer.validated_data["reason"])
        return Response(GrantSerializer(self.get_queryset().get(pk=grant.pk)).data)

    @extend_schema(
        parameters=[
            DownloadQuerySerializer,
            OpenApiParameter(
                "Range", str, OpenApiParameter.HEADER, description="One range: bytes=a-b, bytes=a- or bytes=-n."
            ),
            OpenApiParameter(
                "If-Range", str, OpenApiParameter.HEADER, description="The ETag (sha256) the client holds part of."
            ),
        ],
        responses={
            (200, "application/octet-stream"): _BINARY,
            (206, "application/octet-stream"): _BINARY,
            403: _ERROR,
            404: _ERROR,
            416: _ERROR,
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Stream a file version the grant covers, while it is active; each download is recorded.

        Supports one HTTP range (206 with Content-Range; 416 outside the file). The ETag is the SHA-256.
        The buying organisation only. 403 codes: `grant_suspended` (re-screening found the trade would now
        be denied; waiting for an officer), `grant_inactive` (revoked, expired, not started), `version_not_covered`.
        """
        grant = self.get_object()  # 404 if the caller cannot see it
        query = DownloadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        head = request.method == "HEAD"  # headers only: nothing is downloaded, nothing recorded
        try:
            plan = grant_download_open(
                grant_id=grant.id,
                membership=_membership(request),
                version=query.validated_data.get("version"),
                range_header=request.headers.get("Range", ""),
                if_range=request.headers.get("If-Range", ""),
                record=not head,
            )
        except RangeNotSatisfiableError as exc:
            return Response(
                error_body(exc.code, exc.message, exc.fields),
                status=exc.status_code,
                headers={"Content-Range": f"bytes */{exc.size}"},
            )
        response: HttpResponseBase = (
            HttpResponse(content_type=plan.file.content_type)
            if head
            else StreamingHttpResponse(DownloadStream(plan), content_type=plan.file.content_type)
        )
        _download_headers(response, plan)
        return response


def _download_headers(response: HttpResponseBase, plan: DownloadPlan) -> None:
    dataset_file = plan.file
    if plan.partial:
        response.status_code = status.HTTP_206_PARTIAL_CONTENT
        response["Content-Range"] = f"bytes {plan.first_byte}-{plan.last_byte}/{dataset_file.size}"
    response["Content-Length"] = str(plan.length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag_of(dataset_file)
    response["Content-Disposition"] = (
        content_disposition_header(True, dataset_file.original_name) or "attachment"
    )  # never None as an attachment
    response["Cache-Control"] = "private, no-store"  # paid data: no shared cache keeps a copy
    response["X-Dataset-Version"] = str(dataset_file.version)
