"""Marketplace models, one module per sub-domain; import them from here."""

from marketplace.models.core import (
    Dataset,
    Membership,
    Organisation,
    OrganisationMechanism,
    Settlement,
    Trade,
    TradeDocument,
    TradeEvent,
)

__all__ = [
    "Dataset",
    "Membership",
    "Organisation",
    "OrganisationMechanism",
    "Settlement",
    "Trade",
    "TradeDocument",
    "TradeEvent",
]
