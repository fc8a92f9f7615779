"""The transfer facts of a trade, built from the dataset, the organisations, the evidence on file
and the exporter's ledger of earlier transfers, never from the buyer's say-so (design §3)."""

from collections.abc import Iterable
from datetime import date
from typing import Any

from compliance.services.exports import export_prior
from marketplace.models import Dataset, Organisation, OrganisationMechanism, Trade, TradeDocument


def _mechanism(code: str, reference: str, approved_on: date | None, valid_until: date | None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code}
    if reference:
        out["reference"] = reference
    if approved_on:
        out["approved_on"] = approved_on.isoformat()
    if valid_until:
        out["valid_until"] = valid_until.isoformat()
    return out


def standing_mechanisms(*, organisation_ids: Iterable[object]) -> list[dict[str, Any]]:
    """Safeguards the parties keep on file for all their trades."""
    rows = OrganisationMechanism.objects.filter(organisation_id__in=list(organisation_ids)).values_list(
        "code", "reference", "approved_on", "valid_until"
    )
    return [_mechanism(*row) for row in rows]


def trade_document_mechanisms(*, trade_id: object) -> list[dict[str, Any]]:
    rows = TradeDocument.objects.filter(trade_id=trade_id).values_list("code", "reference", "approved_on", "valid_until")
    return [_mechanism(*row) for row in rows]


def transfer_facts(
    *, dataset: Dataset, buyer: Organisation, destination: str, purpose: str, mechanisms: list[dict[str, Any]],
    trade_date: date, exclude_trade: object | None = None,
) -> dict[str, Any]:
    """Contract-shaped facts (shared/compliance/contract.md) for a purchase of `dataset` by `buyer`.
    `mechanisms` are the trade's own (declared at purchase, documents); the parties' standing ones
    are added here."""
    provider = dataset.provider
    on_file = [*mechanisms, *standing_mechanisms(organisation_ids=(buyer.id, provider.id))]
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
        "exporter": {"jurisdiction": provider.jurisdiction, "flags": list(dict.fromkeys([*provider.exporter_flags, *dataset.exporter_flags]))},
        "buyer": {
            "jurisdiction": destination,
            "headquarters": buyer.headquarters or buyer.jurisdiction,
            "owner_jurisdictions": list(buyer.owner_jurisdictions),
            "kind": buyer.kind,
            "certifications": list(buyer.certifications),
        },
        "purpose": purpose,
        "mechanisms": on_file,
        "prior_exports": export_prior(exporter_id=provider.id, buyer_id=buyer.id, trade_date=trade_date, exclude_subject_id=exclude_trade),
    }


def trade_transfer_facts(*, trade: Trade, trade_date: date) -> dict[str, Any]:
    return transfer_facts(
        dataset=trade.dataset, buyer=trade.buyer, destination=trade.destination, purpose=trade.purpose,
        mechanisms=[*trade.mechanisms, *trade_document_mechanisms(trade_id=trade.id)],
        trade_date=trade_date, exclude_trade=trade.id,
    )
