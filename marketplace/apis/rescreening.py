"""Re-screening over HTTP (officers): backtesting a rule-pack version, and the flagged-grants queue.

The backtest endpoint lives here, at /rulepacks/{id}/backtest/, because its "open" scope needs the
open trades and live grants, which compliance cannot see.
"""

from typing import Any

import django_filters
from django.db.models import Case, IntegerField, QuerySet, Value, When
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.apis.serializers import BacktestRequestSerializer, BacktestSerializer, DecisionSerializer
from compliance.models import RulePack, RulePackBacktest
from compliance.services.backtests import rulepack_backtest
from config.errors import NotFoundError, PermissionDeniedError
from config.permissions import IsOfficer
from config.serializers import StrictModelSerializer, StrictSerializer
from config.users import request_user
from marketplace.models import GrantFlag, Membership
from marketplace.selectors.members import membership_of
from marketplace.services.rescreening import grant_flag_resolve, rulepack_backtest_open


class RulePackBacktestApi(APIView):
    """Replay trades against a rule-pack version and report each decision that would change.

    `{"scope": "period", "from": "2026-10-01", "to": "2026-10-31"}`: the latest check of each trade
    checked in the period, each on its own trade date. `{"scope": "open"}`: every open trade and
    every trade with a live grant, as of the day the version takes effect (or today). The version
    takes the place of every version of its regime. The report is stored (GET /rulepacks/{id}/backtests/)."""

    permission_classes = [IsAuthenticated, IsOfficer]

    @extend_schema(
        request=BacktestRequestSerializer, responses={201: BacktestSerializer}, operation_id="rulepacks_backtest_create"
    )
    def post(self, request: Request, pk: Any) -> Response:
        if not RulePack.objects.filter(pk=pk).exists():
            raise NotFoundError("No such rule pack.")
        serializer = BacktestRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["scope"] == RulePackBacktest.Scope.OPEN:
            backtest = rulepack_backtest_open(pack_id=pk, actor=request_user(request))
        else:
            backtest = rulepack_backtest(
                pack_id=pk,
                scope=data["scope"],
                period_from=data.get("from"),
                period_to=data.get("to"),
                actor=request_user(request),
            )
        backtest = RulePackBacktest.objects.select_related("rulepack").get(pk=backtest.pk)
        return Response(BacktestSerializer(backtest).data, status=status.HTTP_201_CREATED)


class GrantFlagSerializer(StrictModelSerializer):
    grant = serializers.UUIDField(source="grant_id")
    trade = serializers.UUIDField(source="grant.trade_id")
    dataset = serializers.UUIDField(source="grant.dataset_id")
    dataset_title = serializers.CharField(source="grant.dataset.title")
    buyer = serializers.UUIDField(source="grant.buyer_id")
    buyer_name = serializers.CharField(source="grant.buyer.name")
    destination = serializers.CharField(source="grant.destination")
    grant_status = serializers.SerializerMethodField()
    rulepack = serializers.CharField(source="rulepack_ref")
    decision = DecisionSerializer()
    resolved_by = serializers.CharField(source="resolved_by_label")

    class Meta:
        model = GrantFlag
        fields = [
            "id",
            "grant",
            "trade",
            "dataset",
            "dataset_title",
            "buyer",
            "buyer_name",
            "destination",
            "grant_status",
            "rulepack",
            "decision",
            "reason",
            "status",
            "created_at",
            "resolved_by",
            "resolved_at",
            "resolution_note",
            "revoked",
        ]
        read_only_fields = fields

    # A plain string here: the enum is documented once, on Grant.status.
    @extend_schema_field(
        serializers.CharField(help_text="The grant's status now: pending, active, suspended, expired or revoked.")
    )
    def get_grant_status(self, flag: GrantFlag) -> str:
        return flag.grant.status_at()


class GrantFlagResolveSerializer(StrictSerializer):
    note = serializers.CharField(max_length=4000, help_text="Why: what was checked, what was decided.")
    revoke = serializers.BooleanField(default=False, help_text="Also revoke the grant (downloads stop at once).")


class GrantFlagFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=GrantFlag.Status.choices)
    rulepack = django_filters.CharFilter(field_name="rulepack_ref")

    class Meta:
        model = GrantFlag
        fields: list[str] = []


class GrantFlagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Live grants that re-screening flagged: open ones first, oldest first."""

    serializer_class = GrantFlagSerializer
    permission_classes = [IsAuthenticated, IsOfficer]
    filterset_class = GrantFlagFilter
    queryset = GrantFlag.objects.none()  # for the schema; get_queryset is what runs

    def get_queryset(self) -> QuerySet[GrantFlag]:
        open_first = Case(
            When(status=GrantFlag.Status.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return GrantFlag.objects.select_related("grant__dataset", "grant__buyer").order_by(
            open_first, "created_at", "id"
        )

    @extend_schema(request=GrantFlagResolveSerializer, responses=GrantFlagSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Officers only: close a flag with a `note` (and `revoke` to revoke the grant without a refund);
        returns the flag. 409 `grant_flag_resolved` when already closed, `grant_flag_suspended` when its
        grant is suspended (reinstate or revoke the grant instead, which closes its flags)."""
        membership: Membership | None = membership_of(request.user)
        if membership is None:
            raise PermissionDeniedError("Your account belongs to no organisation.")
        serializer = GrantFlagResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flag = grant_flag_resolve(
            flag_id=self.get_object().id,
            membership=membership,
            note=serializer.validated_data["note"],
            revoke=serializer.validated_data["revoke"],
        )
        return Response(GrantFlagSerializer(self.get_queryset().get(pk=flag.pk)).data)
