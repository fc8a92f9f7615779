"""Continuous re-screening: a record of each re-screening run, and the grants it flags for officers."""

import uuid

from django.conf import settings
from django.db import models

from compliance.models import RulePack
from marketplace.models.access import AccessGrant

__all__ = ["GrantFlag", "Rescreening"]


class Rescreening(models.Model):
    """One re-screening after a rule-pack version came into force: open trades sent back to
    `checking`, live grants re-evaluated. One per version; `finished_at` empty means it has not
    run to the end (the due-sweep re-drives it; every step is idempotent)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rulepack = models.OneToOneField(RulePack, on_delete=models.PROTECT, related_name="+")
    rulepack_ref = models.CharField(max_length=80, help_text="Copied, e.g. eu@2026.12.01.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    trades_rechecked = models.PositiveIntegerField(default=0)
    grants_screened = models.PositiveIntegerField(default=0)
    grants_flagged = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"re-screening for {self.rulepack_ref}"


class GrantFlag(models.Model):
    """A live grant whose trade would now be decided differently (denied, or needing something
    its decision did not): an officer decides whether to revoke it."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    grant = models.ForeignKey(AccessGrant, on_delete=models.PROTECT, related_name="flags")
    rulepack = models.ForeignKey(RulePack, null=True, on_delete=models.SET_NULL, related_name="+")
    rulepack_ref = models.CharField(max_length=80, help_text="The version whose activation raised the flag; copied.")
    decision = models.JSONField(help_text="The decision the grant's trade would get now (contract shape).")
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_label = models.CharField(
        max_length=150, blank=True, help_text="Copied: the record outlives the account."
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    revoked = models.BooleanField(default=False, help_text="The resolution revoked the grant.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["grant", "rulepack_ref"], name="grant_flag_once_per_version")]
        indexes = [models.Index(fields=["status", "created_at"], name="grant_flag_queue_idx")]

    def __str__(self) -> str:
        return f"{self.status} flag on grant {self.grant_id} ({self.rulepack_ref})"
