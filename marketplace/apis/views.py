"""Marketplace HTTP API: thin views over services and selectors."""

import uuid
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.apis.serializers import DecisionSerializer
from compliance.engine import vocabulary as vocab
from compliance.services.checks import compliance_evaluate
from config.errors import PermissionDeniedError
from config.logging import trade_id
from config.parsers import BoundedJSONParser
from config.permissions import IsBuyer, IsOfficer, IsProvider
from config.users import request_user
from marketplace.apis import serializers as s
from marketplace.apis.common import request_membership as _membership
from marketplace.apis.filters import DatasetFilter, ReviewQueueFilter, TradeFilter
from marketplace.idempotency import idempotent
from marketplace.models import Dataset, EvidenceStatus, OrganisationMechanism, Trade, TradeDocument
from marketplace.selectors.datasets import dataset_list_visible
from marketplace.selectors.members import is_officer, membership_of
from marketplace.selectors.trades import review_queue, trade_detail_queryset, trade_list_for
from marketplace.services import datasets as dataset_services
from marketplace.services import trades as trade_services
from marketplace.services.evidence import trade_evidence_pack
from marketplace.services.evidence_review import EvidenceDecision, mechanism_review, trade_document_review
from marketplace.services.mechanisms import mechanism_add, mechanism_remove
from marketplace.services.refunds import trade_refund_request
from marketplace.services.trade_documents import trade_document_add
from marketplace.services.trade_facts import transfer_facts

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Retrying with the same key and body returns the first response instead of acting twice (kept ≥ 24 h).",
)


class MeApi(APIView):
    """Who am I: user, organisation and role."""

    @extend_schema(responses=inline_serializer("Me", {
        "username": serializers.CharField(), "role": serializers.CharField(allow_null=True),
        "organisation": s.OrganisationSerializer(allow_null=True),
    }))
    def get(self, request: Request) -> Response:
        membership = membership_of(request.user)
        return Response({
            "username": request.user.get_username(),
            "role": membership.role if membership else None,
            "organisation": s.OrganisationSerializer(membership.organisation).data if membership else None,
        })


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalogue; providers create, edit, publish and withdraw their own listings."""

    serializer_class = s.DatasetSerializer
    filterset_class = DatasetFilter

    def get_queryset(self) -> QuerySet[Dataset]:
        return dataset_list_visible(user=self.request.user)

    def get_permissions(self) -> Sequence[Any]:
        if self.action in ("create", "partial_update", "publish", "withdraw"):
            return [IsAuthenticated(), IsProvider()]
        return super().get_permissions()

    def _own(self) -> Dataset:
        dataset = self.get_object()  # 404 when the caller cannot see it
        if dataset.provider_id != _membership(self.request).organisation_id:
            raise PermissionDeniedError("This dataset belongs to another organisation.")
        return dataset

    def create(self, request: Request) -> Response:
        """Providers: a draft listing of your organisation. Audited (`dataset.created`, with its facts and terms)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_services.dataset_create(membership=_membership(request), values=serializer.validated_data, actor=request.user)
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Providers, own listings only (another organisation's: 403). Legal facts change only while a draft
        (409 `dataset_facts_locked`). Audited (`dataset.updated`, each changed field old → new)."""
        dataset = self._own()
        serializer = self.get_serializer(dataset, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_services.dataset_update(dataset_id=dataset.id, values=serializer.validated_data, actor=request.user)
        return Response(self.get_serializer(dataset).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Providers, own drafts only. Chinese personal information needs `pi_duties_attested`. Audited
        (`dataset.published`, with the attestation and the facts buyers will trade on). Publishing twice
        is harmless; a withdrawn listing is 409 `dataset_transition_not_allowed`."""
        dataset = dataset_services.dataset_publish(dataset_id=self._own().id, actor=request.user)
        return Response(self.get_serializer(dataset).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("destination", str, description="ISO code; defaults to your organisation's jurisdiction"),
            OpenApiParameter("purpose", str, enum=list(vocab.PURPOSES)),
            OpenApiParameter("mechanisms", str, description="comma-separated mechanism codes you would put on file, e.g. eu_scc,eu_tia"),
        ],
        responses=DecisionSerializer,
    )
    @action(detail=True, methods=["get"], url_path="compliance-preview", permission_classes=[IsAuthenticated, IsBuyer])
    def compliance_preview(self, request: Request, pk: str | None = None) -> Response:
        """What buying this dataset would need, decided now from the same facts a trade uses. No side effects.

        Buyers only. Returns the decision (outcome, requirements, findings with explanations), never the
        facts: where a cumulative threshold applies, an explanation states the total the rule compared
        (e.g. "150,000 before + 1,000 in this trade = 151,000"), never the provider's individual
        earlier transfers, their dates or categories."""
        dataset = self.get_object()
        params = s.PreviewQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        buyer = _membership(request).organisation
        facts = transfer_facts(
            dataset=dataset, buyer=buyer, destination=params.validated_data.get("destination") or buyer.jurisdiction,
            purpose=params.validated_data["purpose"], mechanisms=params.validated_data.get("mechanism_list", []),
            trade_date=timezone.localdate(),
        )
        return Response(compliance_evaluate(raw_facts=facts).as_dict())

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        """Providers, own listings only; open trades go on. Audited (`dataset.withdrawn`)."""
        dataset = dataset_services.dataset_withdraw(dataset_id=self._own().id, actor=request.user)
        return Response(self.get_serializer(dataset).data)


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

    @extend_schema(request=s.TradeCreateSerializer, responses={201: s.TradeSerializer}, parameters=[IDEMPOTENCY_PARAMETER])
    @idempotent
    def create(self, request: Request) -> Response:
        serializer = s.TradeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        trade = trade_services.trade_create(
            membership=_membership(request), dataset_id=data["dataset"], destination=data.get("destination"),
            purpose=data["purpose"], mechanisms=data.get("mechanisms", []),
        )
        # Rendered from the objects the service already holds: no second read of the new trade.
        return Response(s.TradeSerializer(trade).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=s.TradeDocumentSerializer(many=True))
    @extend_schema(methods=["POST"], request={"multipart/form-data": s.TradeDocumentSerializer},
                   responses={201: s.TradeDocumentSerializer})
    @action(detail=True, methods=["get", "post"], parser_classes=[BoundedJSONParser, MultiPartParser, FormParser])
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
        trade = trade_services.trade_cancel(trade_id=trade.id, actor=request_user(request), reason=serializer.validated_data.get("reason", ""))
        return self._detail(trade)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.TradeDetailSerializer, 202: s.RefundAwaitingSerializer},
                   parameters=[IDEMPOTENCY_PARAMETER])
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsOfficer])
    @idempotent
    def refund(self, request: Request, pk: str | None = None) -> Response:
        """Officers: reverse a settled trade; the buyer gets the price back, the access grant is revoked (200, the trade).
        Over ELEMENTA_REFUND_FOUR_EYES_OVER (trade currency, default 1000) it takes two officers: the first
        call records a request and answers 202 with `"awaiting": "second_officer"` (nothing moves); a
        different officer's call carries it out (200). The same officer again: 409 `second_officer_required`."""
        trade = self.get_object()
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = trade_refund_request(trade_id=trade.id, officer=request_user(request), reason=serializer.validated_data["reason"])
        if not outcome.executed:
            assert outcome.request is not None
            return Response({"awaiting": "second_officer", "refund_request": s.RefundRequestSerializer(outcome.request).data,
                             "trade": s.TradeDetailSerializer(trade_detail_queryset(user=request.user).get(pk=trade.pk)).data},
                            status=status.HTTP_202_ACCEPTED)
        return self._detail(outcome.trade)

    @extend_schema(request=None, responses={201: s.TradeSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsBuyer])
    def renew(self, request: Request, pk: str | None = None) -> Response:
        """The buyer's members only: buy the next period of a settled subscription, a new trade at
        today's price, checked again (201 with the new trade). 409 `trade_transition_not_allowed`
        unless the trade is a settled subscription; 409 `already_renewed` when the period already
        has a live renewal (concurrent requests included: exactly one of them succeeds)."""
        trade = self.get_object()
        if trade.buyer_id != _membership(request).organisation_id:
            raise PermissionDeniedError("Only the buyer may renew a subscription.")
        renewal = trade_services.trade_renew(trade_id=trade.id, membership=_membership(request))
        return Response(s.TradeSerializer(renewal).data, status=status.HTTP_201_CREATED)

    def _review(self, request: Request, *, approve: bool) -> Response:
        trade = self.get_object()
        serializer = s.ReviewDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        trade = trade_services.trade_review(trade_id=trade.id, officer=request_user(request), approve=approve,
                                            reason=serializer.validated_data["reason"], conditions=serializer.validated_data.get("conditions"))
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


def _evidence_response(decision: EvidenceDecision, serializer: type[serializers.Serializer]) -> Response:
    return Response({**serializer(decision.evidence).data, "awaiting": decision.awaiting})


class MechanismViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
                       viewsets.GenericViewSet):
    """Safeguards your organisation keeps on file for all its trades (a signed SCC, a CAC approval).
    Members add them with the document (multipart) and see their own; each counts once an officer
    accepts it. Officers see every organisation's (filter `?status=pending`) and accept or reject them."""

    serializer_class = s.StandingMechanismSerializer
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    def get_permissions(self) -> Sequence[Any]:
        if self.action in ("accept", "reject"):
            return [IsAuthenticated(), IsOfficer()]
        return super().get_permissions()

    def get_queryset(self) -> QuerySet[OrganisationMechanism]:
        qs = OrganisationMechanism.objects.select_related("created_by")
        if not is_officer(self.request.user):
            membership = membership_of(self.request.user)
            if membership is None:
                return qs.none()
            qs = qs.filter(organisation_id=membership.organisation_id)
        wanted = self.request.query_params.get("status")
        if wanted in EvidenceStatus.values:
            qs = qs.filter(status=wanted)
        return qs

    @extend_schema(request={"multipart/form-data": s.StandingMechanismSerializer}, responses={201: s.StandingMechanismSerializer},
                   parameters=[IDEMPOTENCY_PARAMETER])
    @idempotent
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        mechanism = mechanism_add(membership=_membership(request), code=data["code"], reference=data["reference"],
                                  approved_on=data["approved_on"], valid_until=data["valid_until"], upload=data.get("file"))
        return Response(self.get_serializer(mechanism).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Members of the organisation that keeps it on file (others: 403 or 404). Audited
        (`mechanism.removed`). Removing an accepted mechanism re-checks the organisation's trades still
        waiting for a decision, so none is approved on a decision that counted it."""
        mechanism = self.get_object()
        if mechanism.organisation_id != _membership(request).organisation_id:
            raise PermissionDeniedError("Only the organisation that keeps a mechanism on file may remove it.")
        mechanism_remove(mechanism_id=mechanism.id, actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.EvidenceDecisionSerializer, responses=s.StandingMechanismSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        """Officers only, never the submitter (403 `own_evidence`) nor an officer of the organisation
        that keeps it on file (403 `own_organisation`). A regulator's approval
        (cn_security_assessment, cn_certification, eu_bcr) needs two officers: the first answers
        `"awaiting": "second_officer"`. Acceptance re-checks the organisation's waiting trades."""
        data = _reason(request)
        return _evidence_response(mechanism_review(mechanism_id=self.get_object().id, officer=request_user(request), accept=True, reason=data),
                                  s.StandingMechanismSerializer)

    @extend_schema(request=s.EvidenceDecisionSerializer, responses=s.StandingMechanismSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Officers only, never the submitter. The reason is shown to the organisation."""
        data = _reason(request)
        return _evidence_response(mechanism_review(mechanism_id=self.get_object().id, officer=request_user(request), accept=False, reason=data),
                                  s.StandingMechanismSerializer)


def _reason(request: Request) -> str:
    serializer = s.EvidenceDecisionSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["reason"]


class TradeDocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Officers only: every trade's evidence (filter `?status=pending`, `?trade=<id>`), oldest first,
    to accept or reject. Parties see their trade's documents at `/trades/{id}/documents/`."""

    serializer_class = s.TradeDocumentSerializer
    permission_classes = [IsAuthenticated, IsOfficer]

    def get_queryset(self) -> QuerySet[TradeDocument]:
        qs = TradeDocument.objects.select_related("uploaded_by").order_by("created_at", "id")
        params = self.request.query_params
        if params.get("status") in EvidenceStatus.values:
            qs = qs.filter(status=params["status"])
        if params.get("trade"):
            try:
                qs = qs.filter(trade_id=uuid.UUID(params["trade"]))
            except ValueError:
                return qs.none()
        return qs

    @extend_schema(request=s.EvidenceDecisionSerializer, responses=s.TradeDocumentSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        """Accept a trade document (never your own: 403 `own_evidence`; never for a trade your
        organisation is party to: 403 `own_organisation`); the trade is re-checked.
        A regulator's approval needs two officers: the first answers `"awaiting": "second_officer"`,
        the same officer again gets 409 `second_officer_required`. Decided evidence: 409 `evidence_not_pending`."""
        reason = _reason(request)
        return _evidence_response(trade_document_review(document_id=self.get_object().id, officer=request_user(request), accept=True, reason=reason),
                                  s.TradeDocumentSerializer)

    @extend_schema(request=s.EvidenceDecisionSerializer, responses=s.TradeDocumentSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Reject a trade document; the parties see the reason on the trade's documents and in its events."""
        reason = _reason(request)
        return _evidence_response(trade_document_review(document_id=self.get_object().id, officer=request_user(request), accept=False, reason=reason),
                                  s.TradeDocumentSerializer)


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

