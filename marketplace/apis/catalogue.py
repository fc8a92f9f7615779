"""The catalogue: listing, searching, and providers' own datasets (create, edit, publish, withdraw)."""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.utils.urls import remove_query_param, replace_query_param

from compliance.apis.serializers import PreviewDecisionSerializer
from compliance.engine import vocabulary as vocab
from compliance.services.checks import compliance_evaluate
from config.api import PageNumberPagination
from config.errors import PermissionDeniedError
from config.permissions import IsAuthenticatedOrPublicCatalogue, IsBuyer, IsProvider
from config.serializers import reject_body
from config.throttling import PublicCatalogueRateThrottle, WriteRateThrottle
from marketplace.apis import serializers as s
from marketplace.apis.common import request_membership as _membership
from marketplace.apis.filters import DatasetFilter, catalogue_params
from marketplace.models import Dataset
from marketplace.selectors.catalogue import catalogue_page, dataset_catalogue
from marketplace.selectors.datasets import dataset_list_visible
from marketplace.services import datasets as dataset_services
from marketplace.services.compute import compute_alternatives, compute_decision
from marketplace.services.trade_facts import transfer_facts


class CataloguePagination(PageNumberPagination):
    """Page numbers as elsewhere, with a capped count: `count` is exact up to 10,000 and `count_capped` says
    when there are more (docs/using-the-api.md). `next` is set whenever another page exists."""

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        shape = super().get_paginated_response_schema(schema)
        shape["properties"]["count_capped"] = {
            "type": "boolean",
            "description": "true when more than `count` (10,000) datasets match; narrow the filters to see them all",
        }
        shape["required"] = ["count", "count_capped", "results"]
        return shape

    def page_number(self, request: Request) -> int:
        raw = request.query_params.get(self.page_query_param) or "1"
        try:
            number = int(raw)
        except ValueError:
            number = 0
        if not 1 <= number <= 10_000_000:
            raise exceptions.NotFound(self.invalid_page_message.format(page_number=raw, message="no such page"))
        return number

    def link(self, request: Request, number: int) -> str:
        url = request.build_absolute_uri()
        return remove_query_param(url, self.page_query_param) if number == 1 else replace_query_param(
            url, self.page_query_param, number
        )


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalogue; providers create, edit, publish and withdraw their own listings."""

    serializer_class = s.DatasetSerializer
    filterset_class = DatasetFilter
    throttle_classes = [WriteRateThrottle, PublicCatalogueRateThrottle]  # the second: anonymous readers only
    pagination_class = CataloguePagination

    def get_queryset(self) -> QuerySet[Dataset]:
        return dataset_list_visible(user=self.request.user)

    def list(self, request: Request) -> Response:
        """The published catalogue (`mine=true`: your organisation's own listings, any status). Filters, `q`
        search, `ordering` and the capped count: docs/using-the-api.md. At most three SQL statements a page."""
        params, filterset = catalogue_params(request)
        base = dataset_catalogue(user=request.user, mine=bool(params.get("mine")), status=params.get("status") or None)
        paginator = CataloguePagination()
        number, size = paginator.page_number(request), paginator.get_page_size(request) or 20
        page = catalogue_page(
            filterset.filter_queryset(base) if filterset else base, columns=s.DATASET_LIST_COLUMNS, q=params.get("q"),
            ordering=params.get("ordering"), mine=bool(params.get("mine")), page=number, page_size=size,
        )
        public = s.PUBLIC_DATASET_FIELDS

        def present(item: dict[str, Any]) -> dict[str, Any]:  # anonymous readers: no provider-private fields
            return item if request.user.is_authenticated else {key: item[key] for key in public}

        if page is None:
            raise exceptions.NotFound(paginator.invalid_page_message.format(page_number=number, message="no such page"))
        return Response({
            "count": page.count,
            "count_capped": page.count_capped,
            "next": paginator.link(request, number + 1) if page.has_next else None,
            "previous": paginator.link(request, number - 1) if number > 1 else None,
            "results": [present(s.dataset_list_item(row)) for row in page.rows],
        })

    def get_permissions(self) -> Sequence[Any]:
        if self.action in ("create", "partial_update", "publish", "withdraw"):
            return [IsAuthenticated(), IsProvider()]
        if self.action in ("list", "retrieve"):
            return [IsAuthenticatedOrPublicCatalogue()]  # anonymous reads while ELEMENTA_PUBLIC_CATALOGUE is on
        return super().get_permissions()

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        request = getattr(self, "request", None)
        fake = getattr(self, "swagger_fake_view", False)  # drf-spectacular describes the members' shape
        if request is not None and not fake and not request.user.is_authenticated:
            return s.PublicDatasetSerializer  # published listings only, without provider-private fields
        # The list stays cheap (summary columns); one listing also lists its file versions.
        return s.DatasetSerializer if self.action == "list" else s.DatasetDetailSerializer

    def _own(self) -> Dataset:
        dataset = self.get_object()  # 404 when the caller cannot see it
        if dataset.provider_id != _membership(self.request).organisation_id:
            raise PermissionDeniedError("This dataset belongs to another organisation.")
        return dataset

    @extend_schema(request=s.DatasetSerializer, responses={201: s.DatasetDetailSerializer})
    def create(self, request: Request) -> Response:
        """Providers: a draft listing of your organisation. Audited (`dataset.created`, with its facts and terms)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_services.dataset_create(
            membership=_membership(request), values=serializer.validated_data, actor=request.user
        )
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetSerializer, responses={200: s.DatasetDetailSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Providers, own listings only (another organisation's: 403). Legal facts change only while a draft
        (409 `dataset_facts_locked`). Audited (`dataset.updated`, each changed field old → new)."""
        dataset = self._own()
        serializer = self.get_serializer(dataset, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_services.dataset_update(
            dataset_id=dataset.id, values=serializer.validated_data, actor=request.user
        )
        return Response(self.get_serializer(dataset).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Providers, own drafts only. Needs at least one uploaded file version (409 `dataset_has_no_file`).
        Chinese personal information needs `pi_duties_attested`. Audited
        (`dataset.published`, with the attestation and the facts buyers will trade on). Publishing twice
        is harmless; a withdrawn listing is 409 `dataset_transition_not_allowed`."""
        dataset = self._own()
        reject_body(request)
        dataset = dataset_services.dataset_publish(dataset_id=dataset.id, actor=request.user)
        return Response(self.get_serializer(dataset).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("destination", str, description="ISO code; defaults to your organisation's jurisdiction"),
            OpenApiParameter("purpose", str, enum=[*vocab.PURPOSES]),  # not list(): `list` is the action below
            OpenApiParameter(
                "mechanisms",
                str,
                description="comma-separated mechanism codes you would put on file, e.g. eu_scc,eu_tia",
            ),
        ],
        responses=PreviewDecisionSerializer,
    )
    @action(detail=True, methods=["get"], url_path="compliance-preview", permission_classes=[IsAuthenticated, IsBuyer])
    def compliance_preview(self, request: Request, pk: str | None = None) -> Response:
        """What buying this dataset would need, decided now from the same facts a trade uses. No side effects.

        Buyers only. Returns the decision (outcome, requirements, findings with explanations), never the
        facts: where a cumulative threshold applies, an explanation states the total the rule compared
        (e.g. "150,000 before + 1,000 in this trade = 151,000"), never the provider's individual
        earlier transfers, their dates or categories.

        Where the dataset is also offered for computation and no `delivery` is asked for, `by_delivery`
        holds the download and the compute decisions side by side, and `alternatives` is ["compute"]
        when a download would be denied or need a regulator's approval and compute would not."""
        dataset = self.get_object()
        params = s.PreviewQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        buyer = _membership(request).organisation
        delivery = params.validated_data.get("delivery") or "download"
        facts = transfer_facts(
            dataset=dataset, buyer=buyer, destination=params.validated_data.get("destination") or buyer.jurisdiction,
            purpose=params.validated_data["purpose"], mechanisms=params.validated_data.get("mechanism_list", []),
            trade_date=timezone.localdate(), delivery=delivery,
        )
        decision = compliance_evaluate(raw_facts=facts).as_dict()
        if params.validated_data.get("delivery"):
            return Response(decision)
        # Both ways to buy, side by side, where the dataset is also offered for computation.
        other = compute_decision(dataset=dataset, facts=facts)
        if other is not None:
            decision["alternatives"] = compute_alternatives(decision, dataset=dataset, facts=facts)
            decision["by_delivery"] = {
                "download": {k: v for k, v in decision.items() if k != "alternatives"},
                "compute": other,
            }
        return Response(decision)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        """Providers, own listings only; open trades go on. Audited (`dataset.withdrawn`)."""
        dataset = self._own()
        reject_body(request)
        dataset = dataset_services.dataset_withdraw(dataset_id=dataset.id, actor=request.user)
        return Response(self.get_serializer(dataset).data)
