"""Wallets and the double-entry ledger: every movement of money is a balanced transaction."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from marketplace.models.core import Organisation, Trade

__all__ = ["Deposit", "LedgerEntry", "LedgerTransaction", "Wallet"]


class Wallet(models.Model):
    """An organisation's money in one currency: `available` to spend, `held` in escrow for its open
    purchases. Locked per organisation (no row is shared by every trade); never negative."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="wallets")
    currency = models.CharField(max_length=3)
    available = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    held = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "currency"], name="wallet_org_currency_unique"),
            models.CheckConstraint(condition=models.Q(available__gte=0), name="wallet_available_not_negative"),
            models.CheckConstraint(condition=models.Q(held__gte=0), name="wallet_held_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.currency}"


class Deposit(models.Model):
    """A top-up: requested by a member (pending until an officer approves it), or a direct credit an
    officer asks for (`direct`, pending until a second officer approves it), or recorded by the
    system; credited through the payment-provider seam (marketplace/payments.py). Whoever requested
    a deposit never approves it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CREDITED = "credited"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="deposits")
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=40)
    provider_reference = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    direct = models.BooleanField(
        default=False, help_text="An officer's direct credit to an organisation: needs a second officer."
    )
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="deposit_amount_positive")]

    def __str__(self) -> str:
        return f"deposit {self.amount} {self.currency} ({self.status})"


class LedgerTransaction(models.Model):
    """One balanced movement. A trade has at most one of each kind (the guard against paying twice)."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        HOLD = "hold"          # buyer available → buyer held, at purchase
        SETTLE = "settle"      # buyer held → provider available + platform revenue
        RELEASE = "release"    # buyer held → buyer available, on rejection or cancellation
        REFUND = "refund"      # provider available + platform revenue → buyer available

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    trade = models.ForeignKey(
        Trade, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    deposit = models.OneToOneField(
        Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transaction"
    )
    memo = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["trade", "kind"], condition=models.Q(trade__isnull=False), name="ledger_one_kind_per_trade"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.currency}"


class LedgerEntry(models.Model):
    """One leg: an amount (signed) on an account. Accounts are a wallet's `available` or `held`
    bucket, or a platform account (`revenue`, `deposits`) whose balance is the sum of its entries,
    so fee credits and top-ups append rows instead of updating one shared balance."""

    class Account(models.TextChoices):
        AVAILABLE = "available"
        HELD = "held"
        REVENUE = "revenue"      # platform fees
        DEPOSITS = "deposits"    # money that came in from outside (payment provider clearing)

    id = models.BigAutoField(primary_key=True)
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    wallet = models.ForeignKey(Wallet, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    account = models.CharField(max_length=10, choices=Account.choices)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["wallet", "id"], name="ledger_entry_wallet_idx"),
            models.Index(fields=["account", "currency"], name="ledger_entry_account_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(wallet__isnull=False, account__in=["available", "held"])
                           | models.Q(wallet__isnull=True, account__in=["revenue", "deposits"])),
                name="ledger_entry_account_matches_wallet",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.amount} {self.currency}"
