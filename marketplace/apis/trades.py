"""Trades: buying, the buyer's and provider's views, cancellation, renewal, officers' decisions and refunds."""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import PermissionDeniedError
from config.logging import trade_id
from config.parsers import BoundedJSONParser
from config.permissions import IsBuyer, IsOfficer
from config.users import request_user
from marketplace.apis import serializers as s
from marketplace.apis.common import IDEMPOTENCY_PARAMETER
from marketplace.apis.common import request_membership as _membership
from marketplace.apis.filters import TradeFilter
from marketplace.idempotency import idempotent
from marketplace.models import Trade
from marketplace.selectors.trades import trade_detail_queryset, trade_list_for
from marketplace.services import trades as trade_services
from marketplace.services.evidence import trade_evidence_pack
from marketplace.services.refunds import trade_refund_request
from marketplace.services.trade_documents import trade_document_add


class TradeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Buying, following and cancelling trades; officers approve or reject those in review."""

    filterset_class = TradeFilter

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if kwargs.get("pk"):
            trade_id.set(str(kwargs["pk"]))  # every log line of this request names the trade (reset by the middleware)

    def get_queryset(self) -> QuerySet[Trade]:
        if self.action == "list":
            return trade_list_for(user=self.request.user)
        return trade_detail_queryset(user=self.request.user)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return s.TradeSerializer if self.action == "list" else s.TradeDetailSerializer

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "create":
            return [IsAuthenticated(), IsBuyer()]
        if self.action in ("approve", "reject"):
            return [IsAuthenticated(), IsOfficer()]
        return super().get_permissions()

    @extend_schema(responses=s.TradeDetailSerializer)
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One trade with its decision and events. Officers and the trade's two parties (anyone else: 404).
        The decision's findings state the totals a cumulative rule compared; the facts themselves, with
        the exporter's earlier transfers, are not part of this view (officers: the review queue and the
        evidence pack)."""
        return super().retrieve(request, pk=pk)

    def _detail(self, trade: Trade) -> Response:
        return Response(s.TradeDetailSerializer(trade_detail_queryset(user=self.request.user).get(pk=trade.pk)).data)

    @extend_schema(
        request=s.TradeCreateSerializer, responses={201: s.TradeSerializer}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    @idempotent
    def create(self, request: Request) -> Response:
        serializer = s.TradeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        trade = trade_services.trade_create(
            membership=_membership(request),
            dataset_id=data["dataset"],
            destination=data.get("destination"),
            purpose=data["purpose"],
            mechanisms=data.get("mechanisms", []),
            delivery=data["delivery"],
            queries=data.get("queries"),
            expected_price=data.get("expected_price"),
            expected_currency=data.get("expected_currency"),
            expected_licence_version=data.get("expected_licence_version"),
            repeat=data["repeat"],
        )
        # Rendered from the objects the service already holds: no second read of the new trade.
        return Response(s.TradeSerializer(trade).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=s.TradeDocumentSerializer(many=True))
    @extend_schema(methods=["POST"], request={"multipart/form-data": s.TradeDocumentSerializer},
                   responses={201: s.TradeDocumentSerializer})
    # An upload: documented as multipart only. JSON is still read, so a claim sent without its file is told
    # what is missing (400 `evidence_incomplete`) rather than 415. GET: the whole list, a bare array.
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, BoundedJSONParser],
            pagination_class=None, filterset_class=None)
    @idempotent
    def documents(self, request: Request, pk: str | None = None) -> Response:
        """Evidence for the trade's requirements, uploaded by the buyer or the provider (multipart:
        `code`, `reference`, `approved_on`, optional `valid_until`, and the `file`; anything less is
        400 `evidence_incomplete`). It is `pending` until an officer accepts it
        (`POST /documents/{id}/accept/`), which re-checks the trade; a rejection and its reason
        show here. The trade's parties and officers see the list."""
        trade = self.get_object()
        if request.method == "GET":
            return Response(s.TradeDocumentSerializer(trade.documents.select_related("uploaded_by"), many=True).data)
        membership = _membership(request)
        if membership.organisation_id not in (trade.buyer_id, trade.provider_id):
            raise PermissionDeniedError("Only the buyer or the provider may add evidence.")
        serializer = s.TradeDocumentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        document = trade_document_add(
            trade_id=trade.id, membership=membership, code=data["code"], reference=data["reference"],
            approved_on=data["approved_on"], valid_until=data["valid_until"], upload=data.get("file"),
        )
        return Response(s.TradeDocumentSerializer(document).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CancelSerializer, responses=s.TradeDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        trade = self.get_object()
        if trade.buyer_id != _membership(request).organisation_id:
            raise PermissionDeniedError("Only the buyer may cancel a trade.")
        serializer = s.CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        trade = trade_services.trade_cancel(
            trade_id=trade.id, actor=request_user(request), reason=serializer.validated_data.get("reason", "")
        )
        return self._detail(trade)

    @extend_schema(
        request=s.ReasonSerializer,
        responses={200: s.TradeDetailSerializer, 202: s.RefundAwaitingSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsOfficer])
    @idempotent
    def refund(self, request: Request, pk: str | None = None) -> Response:
        """Officers: reverse a settled trade; the buyer gets the price back, the access grant is revoked (200, the
        trade).
        Over ELEMENTA_REFUND_FOUR_EYES_OVER (trade currency, default 1000) it takes two officers: the first
        call records a request and answers 202 with `"awaiting": "second_officer"` (nothing moves); a
        different officer's call carries it out (200). The same officer again: 409 `second_officer_required`."""
        trade = self.get_object()
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = trade_refund_request(
            trade_id=trade.id, officer=request_user(request), reason=serializer.validated_data["reason"]
        )
        if not outcome.executed:
            assert outcome.request is not None
            return Response(
                {
                    "awaiting": "second_officer",
                    "refund_request": s.RefundRequestSerializer(outcome.request).data,
                    "trade": s.TradeDetailSerializer(trade_detail_queryset(user=request.user).get(pk=trade.pk)).data,
                },
                status=status.HTTP_202_ACCEPTED,
            )
        return self._detail(outcome.trade)

    @extend_schema(methods=["GET"], responses=s.RenewalTermsSerializer)
    @extend_schema(methods=["POST"], request=s.RenewSerializer, responses={201: s.TradeSerializer})
    @action(detail=True, methods=["get", "post"], permission_classes=[IsAuthenticated, IsBuyer])
    def renew(self, request: Request, pk: str | None = None) -> Response:
        """The buyer's members only. GET: the next period's terms (`next`: price, currency, licence and
        `licence_version`), the current period's, and `changed`. POST: buy the next period of a settled
        subscription, a new trade at today's terms, checked again (201 with the new trade). The buyer
        confirms the terms with `expected_price`, `expected_currency`, `expected_licence_version`; any it
        leaves out must be the current period's, so a renewal on changed terms without confirming them is
        409 `price_changed` (with `current`, the terms it would get). 409 `trade_transition_not_allowed`
        unless the trade is a settled subscription; 409 `already_renewed` when the period already
        has a live renewal (concurrent requests included: exactly one of them succeeds)."""
        trade = self.get_object()
        membership = _membership(request)
        if trade.buyer_id != membership.organisation_id:
            raise PermissionDeniedError("Only the buyer may renew a subscription.")
        if request.method == "GET":
            return Response(trade_services.trade_renewal_terms(trade_id=trade.id, membership=membership))
        serializer = s.RenewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        renewal = trade_services.trade_renew(
            trade_id=trade.id, membership=membership, expected_price=data.get("expected_price"),
            expected_currency=data.get("expected_currency"),
            expected_licence_version=data.get("expected_licence_version"),
        )
        return Response(s.TradeSerializer(renewal).data, status=status.HTTP_201_CREATED)

    def _review(self, request: Request, *, approve: bool) -> Response:
        trade = self.get_object()
        serializer = s.ReviewDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        trade = trade_services.trade_review(
            trade_id=trade.id,
            officer=request_user(request),
            approve=approve,
            reason=serializer.validated_data["reason"],
            conditions=serializer.validated_data.get("conditions"),
        )
        body = s.TradeDetailSerializer(trade_detail_queryset(user=request.user).get(pk=trade.pk)).data
        return Response({**body, "awaiting": trade_services.trade_review_awaiting(trade=trade)})

    @extend_schema(request=s.ReviewDecisionSerializer, responses=s.ReviewResultSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Officers only, never of the buyer's or provider's organisation (403 `own_organisation`).
        Approve a trade in review, with a reason and optional conditions. Refused
        with 409 `requirements_outstanding` (naming them) while any requirement lacks accepted
        evidence, and for a trade waiting for documents. If any finding needs a regulator's approval
        or asks for four eyes, two different officers approve: the first answers with
        `"awaiting": "second_officer"` and the trade stays in review; the same officer again gets
        409 `second_officer_required`."""
        return self._review(request, approve=True)

    @extend_schema(request=s.ReviewDecisionSerializer, responses=s.ReviewResultSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Officers only, never of the buyer's or provider's organisation (403 `own_organisation`).
        Reject a trade in review or waiting for documents, with a reason both parties see."""
        return self._review(request, approve=False)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def evidence(self, request: Request, pk: str | None = None) -> Response:
        """One document for a regulator: the facts, the decision and its rule-pack versions, findings,
        evidence, reviews, money, and the trade's audit events with their hashes.

        Officers and the trade's two parties (anyone else: 404). Officers get the facts exactly as the
        engine saw them, including `prior_exports`, the exporter's itemised earlier transfers. The buyer
        and the provider get `prior_export_totals` instead: only the sums the cumulative rules used
        (people exported since 1 January; people sold to this buyer in the last 12 months, per category),
        no single earlier transfer, its date or its categories."""
        return Response(trade_evidence_pack(trade=self.get_object(), viewer=request.user))
