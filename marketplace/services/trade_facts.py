"""The transfer facts of a trade, built from the dataset, the organisations' verified records, the
evidence an officer accepted and the exporter's ledger of earlier transfers, never from the
buyer's say-so: what a buyer declares (mechanisms it intends to sign, a destination) is recorded,
and can only add law to the decision, never satisfy or remove any."""

from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from django.db.models import IntegerField, Value

from compliance.models import SanctionsList
from compliance.services.exports import export_prior
from marketplace.models import Dataset, EvidenceStatus, Organisation, OrganisationMechanism, Trade, TradeDocument


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
    """Safeguards the parties keep on file for all their trades, as far as an officer accepted them."""
    rows = OrganisationMechanism.objects.filter(
        organisation_id__in=list(organisation_ids), status=EvidenceStatus.ACCEPTED,
    ).values_list("code", "reference", "approved_on", "valid_until")
    return [_mechanism(*row) for row in rows]


def trade_mechanisms_on_file(*, trade: Trade) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the trade's accepted documents, the parties' accepted standing mechanisms) in one query."""
    columns = ("code", "reference", "approved_on", "valid_until")
    documents = (
        TradeDocument.objects.filter(trade_id=trade.id, status=EvidenceStatus.ACCEPTED)
        .annotate(src=Value(0, output_field=IntegerField())).order_by().values_list("src", *columns)
    )
    standing = (
        OrganisationMechanism.objects.filter(
            organisation_id__in=[trade.buyer_id, trade.provider_id], status=EvidenceStatus.ACCEPTED
        ).annotate(src=Value(1, output_field=IntegerField())).order_by().values_list("src", *columns)
    )
    found: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for src, *row in documents.union(standing, all=True).order_by("src"):
        found[src].append(_mechanism(*row))
    return found


def _record(organisation: Organisation) -> str:
    return f"org:{organisation.id}@v{organisation.facts_version}"


def party_facts(
    *, buyer: Organisation, provider: Organisation, snapshots: list[SanctionsList] | None = None
) -> dict[str, Any]:
    """The parties screened against the current sanctions lists (less reviewed false positives),
    which list snapshots that was, and which verified version of each party's legal facts.
    `snapshots`: the current lists, if the caller read them already."""
    from compliance.services.sanctions_lists import sanctions_lists_current
    from marketplace.services.organisations import organisation_screen

    if snapshots is None:
        snapshots = sanctions_lists_current()  # read once for both parties
    buyer_matches, lists = organisation_screen(organisation=buyer, party="buyer", snapshots=snapshots)
    provider_matches, _ = organisation_screen(organisation=provider, party="exporter", snapshots=snapshots)
    return {
        "list_matches": [m.as_fact() for m in [*buyer_matches, *provider_matches]][:200],
        "lists": lists,
        "records": {"buyer": _record(buyer), "exporter": _record(provider)},
    }


def transfer_facts(
    *, dataset: Dataset, buyer: Organisation, purpose: str, mechanisms: list[dict[str, Any]], trade_date: date,
    destination: str | None = None, exclude_trade: UUID | None = None, delivery: str = "download",
    with_prior: bool = True, standing: list[dict[str, Any]] | None = None,
    snapshots: list[SanctionsList] | None = None,
) -> dict[str, Any]:
    """Engine facts for a purchase of `dataset` by `buyer`. The buyer's jurisdiction is where the
    organisation is established; a `destination` elsewhere is evaluated as a further transfer
    (the stricter decision wins). `mechanisms` are evidence already accepted for this trade (or,
    in a preview, what the buyer asks "what if"); the parties' accepted standing ones are added.
    `delivery` "compute": the data stays in its storage jurisdiction and only aggregates released
    under the offer's release policy cross the border (the rule packs read it as `delivery`).
    `with_prior=False` leaves `prior_exports` empty for a caller that fills it in itself, later,
    under the exporter's lock (the worker's check: the lock is held as briefly as possible).
    `standing`: the parties' standing mechanisms, and `snapshots` the current sanctions lists, if
    the caller read them already."""
    provider = dataset.provider
    if standing is None:
        standing = standing_mechanisms(organisation_ids=(buyer.id, provider.id))
    on_file = [*mechanisms, *standing]
    buyer_facts: dict[str, Any] = {
        "jurisdiction": buyer.jurisdiction,
        "headquarters": buyer.headquarters or buyer.jurisdiction,
        "owner_jurisdictions": list(buyer.owner_jurisdictions),
        "kind": buyer.kind,
        "certifications": list(buyer.certifications),
    }
    if destination and destination != buyer.jurisdiction:
        buyer_facts["declared_destinations"] = [destination]
    facts: dict[str, Any] = {
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
        "exporter": {
            "jurisdiction": provider.jurisdiction,
            "flags": list(dict.fromkeys([*provider.exporter_flags, *dataset.exporter_flags])),
        },
        "buyer": buyer_facts,
        "purpose": purpose,
        "mechanisms": on_file,
        "prior_exports": export_prior(
            exporter_id=provider.id, buyer_id=buyer.id, trade_date=trade_date, exclude_subject_id=exclude_trade
        )
        if with_prior
        else [],
        "parties": party_facts(buyer=buyer, provider=provider, snapshots=snapshots),
    }
    if delivery != "download":
        facts["delivery"] = delivery
    return facts


def trade_transfer_facts(
    *, trade: Trade, trade_date: date, with_prior: bool = True, snapshots: list[SanctionsList] | None = None
) -> dict[str, Any]:
    """Facts for a trade: the mechanisms the buyer named at purchase are intentions and are left
    out; only accepted evidence counts. `snapshots`: the current sanctions lists, if read already."""
    documents, standing = trade_mechanisms_on_file(trade=trade)
    return transfer_facts(
        dataset=trade.dataset, buyer=trade.buyer, destination=trade.destination, purpose=trade.purpose,
        mechanisms=documents, trade_date=trade_date, exclude_trade=trade.id,
        delivery=trade.delivery, with_prior=with_prior, standing=standing, snapshots=snapshots,
    )
