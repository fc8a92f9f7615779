"""Reading money: balances, ledger lines, the platform's revenue, providers' payouts."""

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import QuerySet, Sum

from marketplace.models import Deposit, LedgerEntry, Settlement, Wallet
from marketplace.money import quantum


def wallet_balances(*, organisation_id: UUID) -> list[dict[str, Any]]:
    return [
        {"currency": w.currency, "available": w.available, "held": w.held}
        for w in Wallet.objects.filter(organisation_id=organisation_id).order_by("currency")
    ]


def ledger_entries_for(*, organisation_id: UUID) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(wallet__organisation_id=organisation_id)
        .select_related("transaction")
        .order_by("-id")
    )


def platform_balances() -> list[dict[str, Any]]:
    """Revenue (fees) and money taken in, per currency: sums of append-only entries."""
    rows = (
        LedgerEntry.objects.filter(wallet__isnull=True)
        .values("account", "currency")
        .annotate(total=Sum("amount"))
        .order_by("currency")
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(
            r["currency"], {"currency": r["currency"], "revenue": Decimal(0), "deposits": Decimal(0)}
        )
        # deposits are credited from the outside account, which therefore runs negative: report it as money received
        total = Decimal(r["total"]).quantize(quantum(r["currency"]))  # SQLite sums decimals as floats
        entry[r["account"]] = total if r["account"] == "revenue" else -total
    return list(out.values())


def deposits_for(*, organisation_id: UUID | None) -> QuerySet[Deposit]:
    qs = Deposit.objects.select_related("organisation").order_by("-created_at")
    return qs if organisation_id is None else qs.filter(organisation_id=organisation_id)


def payouts_for(*, provider_id: UUID) -> QuerySet[Settlement]:
    return (
        Settlement.objects.filter(trade__provider_id=provider_id)
        .select_related("trade", "trade__dataset", "trade__buyer")
        .order_by("created_at")
    )


def ledger_verify() -> list[str]:
    """The money invariants, stated once (tests, the fault runs and `manage.py verify_ledger` use this).

    Every transaction balances; every wallet's `available` and `held` equal the sums of their entries
    and are never negative; a trade has at most one transaction of each kind; a settled priced trade
    has exactly one hold, one settlement transaction and one `Settlement`, and a trade never both
    settles and releases. Returns the problems found, empty when the ledger is sound."""
    from marketplace.models import LedgerTransaction, Trade

    problems: list[str] = []
    for row in (LedgerEntry.objects.values("transaction_id", "transaction__kind")
                .annotate(total=Sum("amount")).exclude(total=0)):
        if Decimal(str(row["total"])).quantize(Decimal("0.01")) != 0:  # SQLite sums decimals as floats
            problems.append(f"transaction {row['transaction_id']} ({row['transaction__kind']}) sums to {row['total']}")
    sums: dict[tuple[object, str], Decimal] = {}
    for row in (
        LedgerEntry.objects.filter(wallet__isnull=False).values("wallet_id", "account").annotate(total=Sum("amount"))
    ):
        sums[(row["wallet_id"], row["account"])] = Decimal(str(row["total"])).quantize(Decimal("0.01"))
    for wallet in Wallet.objects.all():
        for account, balance in (("available", wallet.available), ("held", wallet.held)):
            expected = sums.get((wallet.pk, account), Decimal("0.00"))
            if balance != expected:
                problems.append(
                    f"wallet {wallet.pk} {wallet.currency} {account} is {balance}, its entries sum to {expected}"
                )
            if balance < 0:
                problems.append(f"wallet {wallet.pk} {wallet.currency} {account} is negative: {balance}")
    kinds: dict[UUID, list[str]] = {}
    for trade_id, kind in LedgerTransaction.objects.filter(trade__isnull=False).values_list("trade_id", "kind"):
        kinds.setdefault(trade_id, []).append(kind)
    settlements = set(Settlement.objects.values_list("trade_id", flat=True))
    for trade_id, trade_kinds in kinds.items():
        if len(trade_kinds) != len(set(trade_kinds)):
            problems.append(f"trade {trade_id} has repeated ledger transactions: {sorted(trade_kinds)}")
        if "settle" in trade_kinds and "release" in trade_kinds:
            problems.append(f"trade {trade_id} was both settled and released")
        if "settle" in trade_kinds and "hold" not in trade_kinds:
            problems.append(f"trade {trade_id} settled without a hold")
    for trade in Trade.objects.filter(status__in=[Trade.Status.SETTLED, Trade.Status.REFUNDED], price__gt=0).only(
        "id", "status"
    ):
        trade_kinds = kinds.get(trade.pk, [])
        if trade_kinds.count("hold") != 1 or trade_kinds.count("settle") != 1:
            problems.append(f"{trade.status} trade {trade.pk} has ledger transactions {sorted(trade_kinds)}, "
                            "not one hold and one settle")
        if trade.pk not in settlements:
            problems.append(f"{trade.status} trade {trade.pk} has no Settlement")
    return problems
