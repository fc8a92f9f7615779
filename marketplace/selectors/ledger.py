"""Reading money: balances, ledger lines, the platform's revenue, providers' payouts."""

from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from marketplace.models import Deposit, LedgerEntry, Settlement, Wallet
from marketplace.money import quantum


def wallet_balances(*, organisation_id: object) -> list[dict[str, Any]]:
    return [
        {"currency": w.currency, "available": w.available, "held": w.held}
        for w in Wallet.objects.filter(organisation_id=organisation_id).order_by("currency")
    ]


def ledger_entries_for(*, organisation_id: object) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(wallet__organisation_id=organisation_id)
        .select_related("transaction")
        .order_by("-id")
    )


def platform_balances() -> list[dict[str, Any]]:
    """Revenue (fees) and money taken in, per currency: sums of append-only entries."""
    rows = LedgerEntry.objects.filter(wallet__isnull=True).values("account", "currency").annotate(total=Sum("amount")).order_by("currency")
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(r["currency"], {"currency": r["currency"], "revenue": Decimal(0), "deposits": Decimal(0)})
        # deposits are credited from the outside account, which therefore runs negative: report it as money received
        total = Decimal(r["total"]).quantize(quantum(r["currency"]))  # SQLite sums decimals as floats
        entry[r["account"]] = total if r["account"] == "revenue" else -total
    return list(out.values())


def deposits_for(*, organisation_id: object | None) -> QuerySet[Deposit]:
    qs = Deposit.objects.select_related("organisation").order_by("-created_at")
    return qs if organisation_id is None else qs.filter(organisation_id=organisation_id)


def payouts_for(*, provider_id: object) -> QuerySet[Settlement]:
    return (
        Settlement.objects.filter(trade__provider_id=provider_id)
        .select_related("trade", "trade__dataset", "trade__buyer")
        .order_by("created_at")
    )
