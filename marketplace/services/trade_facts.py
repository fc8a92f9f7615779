"""The transfer facts of a trade, built from the dataset, the organisations and earlier trades,
never from the buyer's say-so (design §3)."""

from datetime import date, timedelta
from typing import Any

from django.db.models import BooleanField, Case, Max, Sum, Value, When

from marketplace.models import Dataset, Organisation, Trade


def _prior_exports(*, provider: Organisation, buyer: Organisation, trade_date: date, exclude: object | None) -> list[dict[str, Any]]:
    """The exporter's earlier settled transfers, summed per window bucket, so a check costs the
    same after ten trades or ten thousand.

    Every window a rule uses ends on the trade date: China counts since 1 January of the trade
    year, the US rule the 12 months before it. So two buckets suffice: since 1 January (inside
    both windows) and the rest of the last 12 months (inside the US window only). Each bucket is
    summed per classification, category set and same-buyer flag, and dated by its latest transfer."""
    year_start = date(trade_date.year, 1, 1)
    since = min(year_start, trade_date - timedelta(days=366))
    base = Trade.objects.filter(provider=provider, status=Trade.Status.SETTLED, settled_at__date__gte=since).exclude(pk=exclude)
    entries: list[dict[str, Any]] = []
    for bucket in (base.filter(settled_at__date__gte=year_start), base.filter(settled_at__date__lt=year_start)):
        rows = (
            bucket.annotate(same_buyer=Case(When(buyer_id=buyer.id, then=Value(True)), default=Value(False), output_field=BooleanField()))
            .values("dataset__classification", "dataset__categories", "same_buyer")
            .annotate(subjects=Sum("dataset__subjects"), last=Max("settled_at"))
            .order_by()
        )
        entries.extend(
            {
                "date": r["last"].date().isoformat(),
                "classification": r["dataset__classification"],
                "categories": r["dataset__categories"],
                "subjects": r["subjects"],
                "same_buyer": r["same_buyer"],
            }
            for r in rows
        )
    return entries


def transfer_facts(
    *, dataset: Dataset, buyer: Organisation, destination: str, purpose: str, mechanisms: list[dict[str, Any]],
    trade_date: date, exclude_trade: object | None = None,
) -> dict[str, Any]:
    """Contract-shaped facts (shared/compliance/contract.md) for a purchase of `dataset` by `buyer`."""
    provider = dataset.provider
    return {
        "trade_date": trade_date.isoformat(),
        "data": {
            "subject_jurisdictions": list(dataset.subject_jurisdictions),
            "storage_jurisdiction": dataset.storage_jurisdiction,
            "classification": dataset.classification,
            "categories": list(dataset.categories),
            "subjects": dataset.subjects,
            "de_identified": dataset.de_identified,
            "flags": list(dataset.flags),
        },
        "exporter": {"jurisdiction": provider.jurisdiction, "flags": list(provider.exporter_flags)},
        "buyer": {
            "jurisdiction": destination,
            "headquarters": buyer.headquarters or buyer.jurisdiction,
            "owner_jurisdictions": list(buyer.owner_jurisdictions),
            "kind": buyer.kind,
            "certifications": list(buyer.certifications),
        },
        "purpose": purpose,
        "mechanisms": [dict(m) for m in mechanisms],
        "prior_exports": _prior_exports(provider=provider, buyer=buyer, trade_date=trade_date, exclude=exclude_trade),
    }


def trade_transfer_facts(*, trade: Trade, trade_date: date) -> dict[str, Any]:
    return transfer_facts(
        dataset=trade.dataset, buyer=trade.buyer, destination=trade.destination, purpose=trade.purpose,
        mechanisms=trade.mechanisms, trade_date=trade_date, exclude_trade=trade.id,
    )
