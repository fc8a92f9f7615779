"""The payment-provider seam: how a deposit becomes money in a wallet.

A provider is named by ELEMENTA_PAYMENT_PROVIDER (a dotted path). The shipped one is manual: a
member's request waits for an operator to confirm the money arrived. A card or bank provider
would start a payment in `initiate` and confirm it from its webhook by calling `deposit_approve`.
"""

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from marketplace.models import Deposit


class PaymentProvider(Protocol):
    name: str

    def initiate(self, deposit: Deposit) -> str:
        """Start collecting the money; return the provider's reference for it."""
        ...


class ManualApproval:
    """Bank transfer confirmed by an operator (officer or admin) in the API or the admin."""

    name = "manual"

    def initiate(self, deposit: Deposit) -> str:
        return f"manual-{str(deposit.id)[:8]}"


def payment_provider() -> PaymentProvider:
    provider: PaymentProvider = import_string(settings.ELEMENTA_PAYMENT_PROVIDER)()
    return provider
