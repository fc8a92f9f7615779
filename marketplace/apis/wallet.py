"""Money over HTTP: balances, ledger lines, deposits, the providers' payout report."""

import csv
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import PermissionDeniedError
from config.permissions import IsOfficer
from config.serializers import StrictModelSerializer, StrictSerializer
from config.users import request_user
from marketplace.apis.filters import CurrencyFilter
from marketplace.apis.serializers import CurrencyField
from marketplace.idempotency import idempotent
from marketplace.models import Deposit, LedgerEntry, Organisation
from marketplace.money import AMOUNT_MAX, MoneyError, money
from marketplace.selectors.ledger import (
    deposits_for,
    ledger_entries_for,
    payouts_for,
    platform_balances,
    wallet_balances,
)
from marketplace.selectors.members import is_officer, membership_of
from marketplace.services.deposits import deposit_approve, deposit_credit_request, deposit_reject, deposit_request


def _org_id(request: Request) -> uuid.UUID:
    membership = membership_of(request.user)
    if membership is None:
        raise PermissionDeniedError("Your account belongs to no organisation.")
    return membership.organisation_id


class BalanceSerializer(StrictSerializer):
    currency = serializers.CharField()
    available = serializers.DecimalField(max_digits=16, decimal_places=2)
    held = serializers.DecimalField(max_digits=16, decimal_places=2)


class WalletApi(APIView):
    """Your organisation's balances per currency: available to spend, and held in escrow."""

    @extend_schema(
        responses=inline_serializer(
            "Wallet", {"organisation": serializers.UUIDField(), "balances": BalanceSerializer(many=True)}
        )
    )
    def get(self, request: Request) -> Response:
        org = _org_id(request)
        return Response(
            {"organisation": org, "balances": BalanceSerializer(wallet_balances(organisation_id=org), many=True).data}
        )


class PlatformWalletApi(APIView):
    """The platform's fee revenue and the money taken in through deposits, per currency (officers)."""

    permission_classes = [IsAuthenticated, IsOfficer]

    @extend_schema(responses=inline_serializer("PlatformBalance", {
        "currency": serializers.CharField(), "revenue": serializers.DecimalField(max_digits=16, decimal_places=2),
        "deposits": serializers.DecimalField(max_digits=16, decimal_places=2)}, many=True))
    def get(self, request: Request) -> Response:
        rows = platform_balances()
        return Response([{**r, "revenue": f"{r['revenue']:.2f}", "deposits": f"{r['deposits']:.2f}"} for r in rows])


class LedgerEntryFilter(django_filters.FilterSet):
    currency = CurrencyFilter()

    class Meta:
        model = LedgerEntry
        fields = {"account": ["exact"], "transaction__kind": ["exact"], "transaction__trade": ["exact"]}


class DepositFilter(django_filters.FilterSet):
    currency = CurrencyFilter()

    class Meta:
        model = Deposit
        fields = ["status"]


class LedgerEntrySerializer(StrictModelSerializer):
    kind = serializers.CharField(source="transaction.kind")
    trade = serializers.UUIDField(source="transaction.trade_id", allow_null=True)
    deposit = serializers.UUIDField(source="transaction.deposit_id", allow_null=True)
    memo = serializers.CharField(source="transaction.memo")
    transaction = serializers.UUIDField(source="transaction_id")

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "transaction",
            "kind",
            "account",
            "currency",
            "amount",
            "trade",
            "deposit",
            "memo",
        ]


class LedgerEntryApi(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Your organisation's ledger lines, newest first, each with the trade or deposit it belongs to."""

    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerEntryFilter

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organisation
            return LedgerEntry.objects.none()
        return ledger_entries_for(organisation_id=_org_id(self.request))


class DepositSerializer(StrictModelSerializer):
    amount = serializers.DecimalField(max_digits=16, decimal_places=2, max_value=AMOUNT_MAX,
                                      help_text="In the currency's minor units at most (whole yen for JPY).")
    currency = CurrencyField()
    organisation = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.all(), required=False,
                                                      help_text="Officers only: credit this organisation directly "
                                                                "(pending until a second officer approves it).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
    awaiting = serializers.SerializerMethodField(
        help_text="While pending: `operator` (a member's request, any officer approves) or "
        "`second_officer` (an officer's direct credit, a different officer approves)."
    )

    class Meta:
        model = Deposit
        fields = [
            "id",
            "organisation",
            "amount",
            "currency",
            "status",
            "direct",
            "awaiting",
            "provider",
            "provider_reference",
            "note",
            "created_at",
            "decided_at",
        ]
        read_only_fields = ["id", "status", "direct", "provider", "provider_reference", "created_at", "decided_at"]

    def get_awaiting(self, deposit: Deposit) -> str | None:
        if deposit.status != Deposit.Status.PENDING:
            return None
        return "second_officer" if deposit.direct else "operator"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["amount"] = money(attrs["amount"], attrs["currency"])
        except MoneyError as exc:
            raise serializers.ValidationError({"amount": [str(exc)]}) from None
        if attrs["amount"] <= 0:
            raise serializers.ValidationError({"amount": ["must be positive"]})
        return attrs


class DecisionNoteSerializer(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class DepositViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Top-ups. A member's request waits for an officer; an officer's direct credit (with
    `organisation`) waits for a second, different officer. Officers see every organisation's
    deposits and approve or reject them; nobody approves a deposit they requested
    (409 `same_person_not_allowed`)."""

    serializer_class = DepositSerializer
    filterset_class = DepositFilter

    def get_queryset(self) -> QuerySet[Deposit]:
        if getattr(self, "swagger_fake_view", False):
            return Deposit.objects.none()
        return deposits_for(organisation_id=None if is_officer(self.request.user) else _org_id(self.request))

    def get_permissions(self) -> Sequence[Any]:
        if self.action in ("approve", "reject"):
            return [IsAuthenticated(), IsOfficer()]
        return super().get_permissions()

    @idempotent
    def create(self, request: Request) -> Response:
        """A member asks for a top-up of their organisation's wallet (201, `pending`, awaiting an officer).
        An officer may name another `organisation` to credit it directly: 201, still `pending`,
        `awaiting: second_officer` until a different officer approves it. Members naming an
        organisation get 403."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("organisation") is not None:
            if not is_officer(request.user):
                raise PermissionDeniedError("Only an operator may credit another organisation's wallet.")
            deposit = deposit_credit_request(
                organisation=data["organisation"],
                amount=data["amount"],
                currency=data["currency"],
                operator=request_user(request),
                note=data.get("note", ""),
            )
        else:
            membership = membership_of(request.user)
            if membership is None:
                raise PermissionDeniedError("Your account belongs to no organisation.")
            deposit = deposit_request(membership=membership, amount=data["amount"], currency=data["currency"])
        return Response(self.get_serializer(deposit).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DecisionNoteSerializer, responses=DepositSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Officers: credit a pending deposit. 409 `same_person_not_allowed` when you requested it
        (a member's own request or your own direct credit): a different officer must approve;
        409 `deposit_not_pending` once decided."""
        note = DecisionNoteSerializer(data=request.data)
        note.is_valid(raise_exception=True)
        deposit = deposit_approve(
            deposit_id=self.get_object().id, operator=request_user(request), note=note.validated_data["note"]
        )
        return Response(self.get_serializer(deposit).data)

    @extend_schema(request=DecisionNoteSerializer, responses=DepositSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Officers: refuse a pending deposit (recorded in the audit trail with who refused); nothing is credited."""
        note = DecisionNoteSerializer(data=request.data)
        note.is_valid(raise_exception=True)
        deposit = deposit_reject(
            deposit_id=self.get_object().id, operator=request_user(request), note=note.validated_data["note"]
        )
        return Response(self.get_serializer(deposit).data)


class _Echo:
    def write(self, value: str) -> str:
        return value


class PayoutReportApi(APIView):
    """CSV of your organisation's settled sales: gross, platform fee, net, and refunds."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request) -> StreamingHttpResponse:
        rows = payouts_for(provider_id=_org_id(request))
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(
                ["settled_at", "trade", "dataset", "buyer", "currency", "gross", "platform_fee", "net", "status"]
            )
            for s in rows.iterator(chunk_size=500):
                t = s.trade
                yield writer.writerow(
                    [
                        s.created_at.isoformat(),
                        t.id,
                        t.dataset.title,
                        t.buyer.name,
                        s.currency,
                        s.amount,
                        s.platform_fee,
                        s.provider_amount,
                        t.status,
                    ]
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="payouts.csv"'
        return response
