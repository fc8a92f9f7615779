"""A refund above the four-eyes threshold: asked for by one officer, carried out by another."""

import uuid

from django.conf import settings
from django.db import models

from marketplace.models.core import Trade

__all__ = ["RefundRequest"]


class RefundRequest(models.Model):
    """The first officer's refund of a trade whose price is over ELEMENTA_REFUND_FOUR_EYES_OVER.
    Nothing moves until a different officer refunds the same trade; then the request is `executed`
    and names both officers. At most one pending request per trade."""

    class Status(models.TextChoices):
        PENDING = "pending"
        EXECUTED = "executed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trade = models.ForeignKey(Trade, on_delete=models.PROTECT, related_name="refund_requests")
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_label = models.CharField(max_length=150, help_text="Copied: the record outlives the account.")
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_by_label = models.CharField(max_length=150, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["trade"], condition=models.Q(status="pending"), name="refund_request_one_pending_per_trade"
            ),
        ]

    def __str__(self) -> str:
        return f"refund of {self.trade_id} ({self.status})"
