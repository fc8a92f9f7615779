"""The catalogue as linked data (docs/dcat.md): DCAT-AP 3 export, each listing's ODRL offer, and a settled
trade's ODRL agreement. JSON-LD or Turtle by the Accept header (or ?format=jsonld / ?format=ttl); errors
are ordinary JSON error bodies whatever was asked for."""

from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import InvalidInputError, NotFoundError
from config.permissions import IsAuthenticatedOrPublicCatalogue
from config.throttling import PublicCatalogueRateThrottle, WriteRateThrottle
from marketplace.dcat import graph as dcat
from marketplace.dcat import odrl
from marketplace.dcat.renderers import JsonLdRenderer, TurtleRenderer
from marketplace.models import Trade
from marketplace.selectors.catalogue_export import (
    catalogue_dates,
    published_dataset,
    published_datasets_page,
    trade_agreement_parts,
)
from marketplace.selectors.datasets import dataset_list_visible


def _links(request: Request) -> dcat.Links:
    return dcat.Links(base=request.build_absolute_uri("/").rstrip("/"))


_LINKED_DATA = {
    (200, "application/ld+json"): OpenApiResponse(OpenApiTypes.OBJECT, description="JSON-LD"),
    (200, "text/turtle"): OpenApiResponse(OpenApiTypes.STR, description="Turtle"),
}


class _LinkedDataApi(APIView):
    renderer_classes = [JsonLdRenderer, TurtleRenderer]
    permission_classes = [IsAuthenticatedOrPublicCatalogue]
    throttle_classes = [WriteRateThrottle, PublicCatalogueRateThrottle]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(response, "status_code", 200) >= 400:
            # An error body is {"code", "message", "fields"}, not linked data: plain JSON, as everywhere.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class CataloguePageSerializer(serializers.Serializer):  # a query string: other parameters (format) pass
    after = serializers.UUIDField(required=False, help_text="Continue after this dataset id (the hydra:next link).")
    page_size = serializers.IntegerField(required=False, min_value=1)

    def validate_page_size(self, value: int) -> int:
        if value > settings.ELEMENTA_CATALOGUE_MAX_PAGE_SIZE:
            raise serializers.ValidationError(f"at most {settings.ELEMENTA_CATALOGUE_MAX_PAGE_SIZE}")
        return value


class CatalogueApi(_LinkedDataApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("after", OpenApiTypes.UUID, description="Continue after this dataset id (hydra:next)."),
            OpenApiParameter("page_size", int, description="Datasets per page (default 100, at most 500)."),
        ],
        responses=_LINKED_DATA,
    )
    def get(self, request: Request) -> Response:
        """The published catalogue as a DCAT-AP 3 dcat:Catalog, one page at a time in dataset id order.
        Each page links the next (hydra:next, and a `Link: rel="next"` header); the last has none.
        Drafts and withdrawn listings are never in it."""
        params = CataloguePageSerializer(data=request.query_params)
        if not params.is_valid():
            raise InvalidInputError(fields=params.errors)
        page_size = params.validated_data.get("page_size") or settings.ELEMENTA_CATALOGUE_PAGE_SIZE
        after = params.validated_data.get("after")
        rows, next_after = published_datasets_page(after=after, page_size=page_size)
        issued, modified = catalogue_dates()
        page = dcat.CataloguePage(
            datasets=rows, next_after=next_after, after=after, page_size=page_size, issued=issued, modified=modified
        )
        links = _links(request)
        graph = dcat.catalogue_graph(
            page, links, title=settings.ELEMENTA_CATALOGUE_TITLE,
            description=settings.ELEMENTA_CATALOGUE_DESCRIPTION, publisher=settings.ELEMENTA_CATALOGUE_PUBLISHER,
        )
        response = Response(graph)
        if next_after is not None:
            response["Link"] = f'<{links.catalogue(after=next_after, page_size=page_size)}>; rel="next"'
        return response


class CatalogueDatasetApi(_LinkedDataApi):
    @extend_schema(responses=_LINKED_DATA)
    def get(self, request: Request, dataset_id: UUID) -> Response:
        """One published dataset as a DCAT-AP 3 dcat:Dataset with its distribution, publisher and licence
        (404 for drafts and withdrawn listings, the provider's own included)."""
        dataset = published_dataset(dataset_id=dataset_id)
        if dataset is None:
            raise NotFoundError("No such published dataset.")
        return Response(dcat.dataset_graph(dataset, _links(request)))


class DatasetPolicyApi(_LinkedDataApi):
    @extend_schema(responses=_LINKED_DATA)
    def get(self, request: Request, dataset_id: UUID) -> Response:
        """The listing's licence as an ODRL 2.2 odrl:Offer from its provider: `use` (and `distribute` when
        the licence allows resale), the purposes a buyer may declare, the term, and the price as a
        `compensate` duty. Anyone who may see the listing may read it."""
        dataset = dataset_list_visible(user=request.user).filter(id=dataset_id).first()
        if dataset is None:
            raise NotFoundError("No such dataset.")
        return Response(odrl.dataset_offer(dataset, _links(request)))


class TradeAgreementApi(_LinkedDataApi):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=_LINKED_DATA)
    def get(self, request: Request, trade_id: UUID) -> Response:
        """What the settled trade granted, as an ODRL 2.2 odrl:Agreement between the provider (assigner)
        and the buyer (assignee): the declared purpose, the destination the compliance decision allowed,
        the grant's term and the price paid. The trade's parties only (and officers); anyone else gets a
        404. 409 `agreement_not_available` before the trade is settled."""
        try:
            trade, grant = trade_agreement_parts(user=request.user, trade_id=trade_id)
        except Trade.DoesNotExist:
            raise NotFoundError("No such trade.") from None
        return Response(odrl.trade_agreement(trade, grant, _links(request)))
