"""A listing's licence as an ODRL 2.2 policy (JSON-LD): the provider's Offer, and the Agreement a settled
trade made between the provider and the buyer.

The JSON-LD carries its own @context (ODRL's term names, as in the W3C ODRL context, plus the few
Dublin Core and XSD terms used), so it parses without fetching anything.

Mapping from the licence ({"term_days", "resale", "terms"}) and the listing:
- permission `use`; also `distribute` when `licence.resale` is true;
- constraint `purpose`: the Offer names the purposes a buyer may declare (`isAnyOf`), the Agreement the
  one the buyer declared (`eq`);
- constraint on the term: the Offer's is a duration (`elapsedTime lteq P<term_days>D` from the grant),
  the Agreement's the grant's dates (`dateTime gteq` start, `lteq` end);
- constraint `spatial`: the Agreement's destination, which the compliance decision allowed (an Offer
  has none: where data may go is decided per trade);
- duty `compensate` on `use`, with `payAmount` = price in the currency (a subscription: per `timeInterval`).
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from compliance.engine import vocabulary as vocab
from marketplace.dcat import vocab as v
from marketplace.dcat.graph import Links
from marketplace.models import AccessGrant, Dataset, Trade

CONTEXT: dict[str, Any] = {
    "@vocab": str(v.ODRL),
    "odrl": str(v.ODRL),
    "dct": str(v.DCT),
    "foaf": str(v.FOAF),
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "uid": "@id",
    "type": "@type",
    "action": {"@id": "odrl:action", "@type": "@vocab"},
    "leftOperand": {"@id": "odrl:leftOperand", "@type": "@vocab"},
    "operator": {"@id": "odrl:operator", "@type": "@vocab"},
    "assigner": {"@id": "odrl:assigner", "@type": "@id"},
    "assignee": {"@id": "odrl:assignee", "@type": "@id"},
    "target": {"@id": "odrl:target", "@type": "@id"},
    "unit": {"@id": "odrl:unit", "@type": "@id"},
    "permission": {"@id": "odrl:permission", "@container": "@set"},
    "duty": {"@id": "odrl:duty", "@container": "@set"},
    "constraint": {"@id": "odrl:constraint", "@container": "@set"},
    "refinement": {"@id": "odrl:refinement", "@container": "@set"},
    "dct:issued": {"@type": "xsd:dateTime"},
}


def _constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def _when(value: datetime) -> dict[str, str]:
    return {"@value": value.isoformat(), "@type": "xsd:dateTime"}


def _compensation(*, price: Decimal, currency: str, pricing: str, term_days: int | None) -> dict[str, Any]:
    refinement = [
        {**_constraint("payAmount", "eq", {"@value": str(price), "@type": "xsd:decimal"}),
         "unit": str(v.currency_iri(currency))}
    ]
    if pricing == "subscription" and term_days:
        refinement.append(_constraint("timeInterval", "eq", {"@value": f"P{term_days}D", "@type": "xsd:duration"}))
    return {"action": [{"rdf:value": {"@id": "odrl:compensate"}, "refinement": refinement}]}


def _term_days(licence: Any) -> int | None:
    term = licence.get("term_days") if isinstance(licence, dict) else None
    return term if isinstance(term, int) and not isinstance(term, bool) and term > 0 else None


def _permissions(licence: Any, constraints: list[dict[str, Any]], duty: dict[str, Any]) -> list[dict[str, Any]]:
    """`use` with the price as its duty (paid once, for the whole licence); `distribute` under the same
    constraints when the licence allows resale."""
    permissions = [{"action": "use", "constraint": constraints, "duty": [duty]}]
    if isinstance(licence, dict) and licence.get("resale"):
        permissions.append({"action": "distribute", "constraint": constraints})
    return permissions


def _terms(policy: dict[str, Any], licence: Any) -> None:
    terms = licence.get("terms") if isinstance(licence, dict) else None
    if terms:
        policy["dct:description"] = terms


def dataset_offer(dataset: Dataset, links: Links) -> dict[str, Any]:
    """The provider's standing offer for a listing."""
    licence = dataset.licence or {}
    term = _term_days(licence)
    constraints = [_constraint("purpose", "isAnyOf", list(vocab.PURPOSES))]
    if term:
        constraints.append(_constraint("elapsedTime", "lteq", {"@value": f"P{term}D", "@type": "xsd:duration"}))
    duty = _compensation(price=dataset.price, currency=dataset.currency, pricing=dataset.pricing, term_days=term)
    policy: dict[str, Any] = {
        "@context": CONTEXT,
        "type": "Offer",
        "uid": links.policy(dataset.id),
        "dct:title": f"Licence of {dataset.title}",
        "assigner": links.organisation(dataset.provider_id),
        "target": links.dataset(dataset.id),
        "permission": _permissions(licence, constraints, duty),
    }
    _terms(policy, licence)
    return policy


def trade_agreement(trade: Trade, grant: AccessGrant, links: Links) -> dict[str, Any]:
    """What a settled trade granted: between the provider and the buyer, for the declared purpose, the
    destination the compliance decision allowed, and the grant's term (ended early if it was revoked)."""
    licence = trade.licence or {}
    constraints = [_constraint("purpose", "eq", trade.purpose)]
    country = v.country_iri(grant.destination)
    constraints.append(_constraint("spatial", "eq", {"@id": str(country)} if country else grant.destination))
    constraints.append(_constraint("dateTime", "gteq", _when(grant.valid_from)))
    end = grant.revoked_at or grant.valid_until
    if end is not None:
        constraints.append(_constraint("dateTime", "lteq", _when(end)))
    duty = _compensation(price=trade.price, currency=trade.currency, pricing=trade.pricing,
                         term_days=_term_days(licence))
    policy: dict[str, Any] = {
        "@context": CONTEXT,
        "type": "Agreement",
        "uid": links.agreement(trade.id),
        "dct:title": f"Agreement for {trade.dataset.title}",
        "dct:issued": (trade.settled_at or grant.valid_from).isoformat(),
        "dct:source": {"@id": links.policy(trade.dataset_id)},
        "assigner": links.organisation(trade.provider_id),
        "assignee": links.organisation(trade.buyer_id),
        "target": links.dataset(trade.dataset_id),
        "permission": _permissions(licence, constraints, duty),
    }
    if trade.delivery == "compute":
        policy["dct:description"] = (
            "Compute-to-data: queries run where the data is stored and only released aggregate results leave; "
            "the file itself is never delivered."
            + (f" Licence terms: {licence['terms']}" if isinstance(licence, dict) and licence.get("terms") else "")
        )
    else:
        _terms(policy, licence)
    return policy
