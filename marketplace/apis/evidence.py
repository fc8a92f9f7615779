"""Evidence: standing mechanisms an organisation keeps on file, and documents uploaded for a trade; officers accept
or reject them."""

import uuid
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import PermissionDeniedError
from config.permissions import IsOfficer
from config.users import request_user
from marketplace.apis import serializers as s
from marketplace.apis.common import IDEMPOTENCY_PARAMETER
from marketplace.apis.common import request_membership as _membership
from marketplace.idempotency import idempotent
from marketplace.models import EvidenceStatus, OrganisationMechanism, TradeDocument
from marketplace.selectors.members import is_officer, membership_of
from marketplace.services.evidence_review import EvidenceDecision, mechanism_review, trade_document_review
from marketplace.services.mechanisms import mechanism_add, mechanism_remove


def _evidence_response(decision: EvidenceDecision, serializer: type[serializers.Serializer]) -> Response:
    return Response({**serializer(decision.evidence).data, "awaiting": decision.awaiting})


class MechanismViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Safeguards your organisation keeps on file for all its trades (a signed SCC, a CAC approval).
    Members add them with the document (multipart) and see their own; each counts once an officer
    accepts it. Officers see every organisation's (filter `?status=pending`) and accept or reject them."""

    serializer_class = s.StandingMechanismSerializer

    def get_parsers(self) -> list[BaseParser]:
        """Adding a mechanism is a file upload, documented as multipart only (JSON is still read, so a claim
        sent without its file is told what is missing: 400 `evidence_incomplete`); the rest take JSON."""
        action = getattr(self, "action", None) or self.action_map.get((self.request.method or "").lower())
        return [MultiPartParser(), *super().get_parsers()] if action == "create" else super().get_parsers()

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

    @extend_schema(
        request={"multipart/form-data": s.StandingMechanismSerializer},
        responses={201: s.StandingMechanismSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    @idempotent
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        mechanism = mechanism_add(
            membership=_membership(request),
            code=data["code"],
            reference=data["reference"],
            approved_on=data["approved_on"],
            valid_until=data["valid_until"],
            upload=data.get("file"),
        )
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
        return _evidence_response(
            mechanism_review(
                mechanism_id=self.get_object().id, officer=request_user(request), accept=True, reason=data
            ),
            s.StandingMechanismSerializer,
        )

    @extend_schema(request=s.EvidenceDecisionSerializer, responses=s.StandingMechanismSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Officers only, never the submitter. The reason is shown to the organisation."""
        data = _reason(request)
        return _evidence_response(
            mechanism_review(
                mechanism_id=self.get_object().id, officer=request_user(request), accept=False, reason=data
            ),
            s.StandingMechanismSerializer,
        )


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
        return _evidence_response(
            trade_document_review(
                document_id=self.get_object().id, officer=request_user(request), accept=True, reason=reason
            ),
            s.TradeDocumentSerializer,
        )

    @extend_schema(request=s.EvidenceDecisionSerializer, responses=s.TradeDocumentSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Reject a trade document; the parties see the reason on the trade's documents and in its events."""
        reason = _reason(request)
        return _evidence_response(
            trade_document_review(
                document_id=self.get_object().id, officer=request_user(request), accept=False, reason=reason
            ),
            s.TradeDocumentSerializer,
        )
