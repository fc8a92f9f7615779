"""Webhooks: organisations' HTTPS endpoints, one delivery per (endpoint, event), every attempt recorded."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from marketplace.models.core import Organisation

__all__ = ["WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]


class WebhookEndpoint(models.Model):
    """Where an organisation wants to be told about events, and which kinds it chose.

    `secret` signs every request (HMAC-SHA256); it is stored in clear because signing needs it, and
    the API shows it only in the responses that create or rotate it. During a rotation the previous
    secret keeps signing too (a second `v1=` signature) until `previous_secret_expires_at`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    events = models.JSONField(
        default=list, help_text='Event kinds this endpoint receives, e.g. ["trade.status_changed"].'
    )
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["organisation", "active"], name="webhook_endpoint_org_idx")]

    def __str__(self) -> str:
        return f"{self.url} ({self.organisation_id})"


class WebhookDelivery(models.Model):
    """One event for one endpoint. Unique per (endpoint, event_id), so fanning an event out twice
    delivers it once; a manual redelivery is a new row pointing at the one it repeats.

    `next_attempt_at` is when the next attempt is due: set to now on creation, to now + a lease
    while an attempt is in flight (a second worker holding the same message then finds it not due),
    and to now + the backoff after a failure. The sweeper re-drives any pending row past it.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_ep_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"],
                condition=Q(redelivery_of__isnull=True),
                name="webhook_delivery_once_per_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery and what came back. `number` is unique per delivery, which
    makes recording an attempt idempotent when two workers ran the same message."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    url = models.URLField(max_length=500, help_text="The URL requested, copied: the endpoint's may change later.")
    status_code = models.PositiveIntegerField(null=True, blank=True, help_text="Empty when no HTTP response came back.")
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error[:40]}"
