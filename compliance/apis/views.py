"""Compliance HTTP API: the dry-run evaluation and the rule-pack lifecycle."""

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.apis.serializers import (
    BacktestSerializer,
    BacktestSummarySerializer,
    DecisionSerializer,
    RulePackActivateSerializer,
    RulePackDraftSerializer,
    RulePackEditSerializer,
    RulePackSerializer,
    RulePackValidationSerializer,
    TransferFactsSerializer,
)
from compliance.models import RulePack
from compliance.selectors.rulepacks import rulepack_backtest_list, rulepack_list
from compliance.services.checks import compliance_dry_run
from compliance.services.rulepacks import (
    rulepack_activate,
    rulepack_approve,
    rulepack_draft_create,
    rulepack_draft_update,
    rulepack_export_yaml,
    rulepack_validate,
    rulepack_warnings,
)
from config.permissions import IsOfficer
from config.serializers import reject_body
from config.users import request_user


class EvaluateApi(APIView):
    """Dry run (any signed-in user): transfer facts in, a decision out. Changes nothing.

    400 `invalid_facts` names each bad field; 400 `trade_date_out_of_range` when `trade_date` is
    before the earliest rule pack's effective_from or too far ahead. A date inside that range that
    an applicable regime's versions do not cover is decided `review` (finding BASE-NO-PACK)."""

    @extend_schema(request=TransferFactsSerializer, responses=DecisionSerializer)
    def post(self, request: Request) -> Response:
        data: Any = request.data
        return Response(compliance_dry_run(raw_facts=data).as_dict())


class RulePackFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RulePack.Status.choices)
    regime = django_filters.CharFilter(method="filter_regime", help_text="e.g. EU (case-insensitive)")

    class Meta:
        model = RulePack
        fields: list[str] = []

    def filter_regime(self, queryset: QuerySet[RulePack], name: str, value: str) -> QuerySet[RulePack]:
        return queryset.filter(regime=value.strip().upper())


class RulePackViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rule-pack versions and their lifecycle (officers): draft → validate → backtest → approve (a
    second officer) → activate.
    `POST /rulepacks/{id}/backtest/` is served by marketplace (the open scope needs trade ids)."""

    serializer_class = RulePackSerializer
    permission_classes = [IsAuthenticated, IsOfficer]
    filterset_class = RulePackFilter

    def get_queryset(self) -> QuerySet[RulePack]:
        return rulepack_list()

    @extend_schema(request=RulePackDraftSerializer, responses={201: RulePackSerializer})
    def create(self, request: Request) -> Response:
        data = _valid(RulePackDraftSerializer, request)
        pack = rulepack_draft_create(
            actor=request_user(request),
            content=data.get("content"),
            yaml_text=data.get("yaml"),
            based_on=data.get("based_on"),
            version=data.get("version"),
            notes=data.get("notes", ""),
        )
        return Response(RulePackSerializer(pack).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RulePackEditSerializer, responses=RulePackSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = _valid(RulePackEditSerializer, request)
        pack = rulepack_draft_update(
            pack_id=self.get_object().id,
            actor=request_user(request),
            content=data.get("content"),
            yaml_text=data.get("yaml"),
            notes=data.get("notes"),
        )
        return Response(RulePackSerializer(pack).data)

    @extend_schema(request=None, responses=RulePackValidationSerializer)
    @action(detail=True, methods=["post"])
    def validate(self, request: Request, pk: str | None = None) -> Response:
        pack = self.get_object()
        reject_body(request)
        problems = rulepack_validate(pack_id=pack.id)
        warnings = rulepack_warnings(pack=pack)
        return Response(
            {
                "ok": not problems,
                "problems": [p.as_dict() for p in problems],
                "warnings": [w.as_dict() for w in warnings],
            }
        )

    @extend_schema(request=None, responses=RulePackSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Officers who neither created nor edited the draft: approve its current content so it may be
        activated (by anyone, with `activate/`). Needs a backtest of exactly this content from the last
        ELEMENTA_BACKTEST_MAX_AGE_HOURS (409 `backtest_required`); 409 `author_cannot_approve` for its
        creator or an editor; 409 `rulepack_not_draft` once active. Editing the content voids the approval."""
        pack = self.get_object()
        reject_body(request)
        pack = rulepack_approve(pack_id=pack.id, actor=request_user(request))
        return Response(RulePackSerializer(pack).data)

    @extend_schema(request=RulePackActivateSerializer, responses=RulePackSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Officers: make a draft an active, immutable version from `effective_from` (today or later).
        Needs a backtest of exactly the current content from the last ELEMENTA_BACKTEST_MAX_AGE_HOURS
        (409 `backtest_required`, saying whether there is none, it is of older content, or too old) and a
        second officer: a current approval (`approve/`) or a caller who neither created nor edited the
        draft, whose activation is then the approval. Otherwise 409 `second_officer_required`."""
        data = _valid(RulePackActivateSerializer, request)
        pack = rulepack_activate(
            pack_id=self.get_object().id, effective_from=data["effective_from"], actor=request_user(request)
        )
        return Response(RulePackSerializer(pack).data)

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str | None = None) -> HttpResponse:
        pack = self.get_object()
        response = HttpResponse(rulepack_export_yaml(pack=pack), content_type="application/yaml; charset=utf-8")
        name = f"{pack.regime.lower() or 'rulepack'}-{pack.version or pack.id}.yaml"
        response["Content-Disposition"] = (
            content_disposition_header(False, name) or "inline"
        )  # never None with a file name
        return response

    @extend_schema(responses=BacktestSummarySerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=BacktestSummarySerializer, filterset_class=None)
    def backtests(self, request: Request, pk: str | None = None) -> Response:
        pack = self.get_object()
        qs = rulepack_backtest_list(pack_id=pack.id).select_related("rulepack")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(BacktestSummarySerializer(page, many=True).data)

    @extend_schema(responses=BacktestSerializer)
    @action(
        detail=True,
        methods=["get"],
        url_path=r"backtests/(?P<backtest_id>[0-9a-f-]{36})",
        serializer_class=BacktestSerializer,
        filterset_class=None,
    )
    def backtest_detail(self, request: Request, pk: str | None = None, backtest_id: str | None = None) -> Response:
        pack = self.get_object()
        backtest = get_object_or_404(rulepack_backtest_list(pack_id=pack.id).select_related("rulepack"), pk=backtest_id)
        return Response(BacktestSerializer(backtest).data)


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
