"""Rule-pack versions, compliance checks (decisions) and officer reviews.

Compliance never imports marketplace: a check names what it checked by subject type and id.
"""

import uuid

from django.conf import settings
from django.db import models


class RulePack(models.Model):
    """One immutable version of one regime's rules, loaded from a reviewed file."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    regime = models.CharField(max_length=32)
    version = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    content = models.JSONField(help_text="The pack's data exactly as validated and loaded.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of `content`.")
    source = models.CharField(max_length=200, blank=True)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["regime", "version"], name="rulepack_regime_version_unique")]
        ordering = ["regime", "-effective_from"]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        return f"{self.regime.lower()}@{self.version}"


class ComplianceCheck(models.Model):
    """One engine decision on one subject (a trade), with the exact facts it saw."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_type = models.CharField(max_length=32)
    subject_id = models.UUIDField(db_index=True)
    facts = models.JSONField()
    outcome = models.CharField(max_length=20)
    decision = models.JSONField()
    rulepacks = models.JSONField(default=list)
    engine_version = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subject_type", "subject_id", "-created_at"], name="check_subject_idx")]

    def __str__(self) -> str:
        return f"{self.outcome} for {self.subject_type} {self.subject_id}"


class Review(models.Model):
    """An officer's verdict on a subject the engine sent to review; append-only."""

    class Verdict(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_type = models.CharField(max_length=32)
    subject_id = models.UUIDField(db_index=True)
    compliance_check = models.ForeignKey(ComplianceCheck, null=True, on_delete=models.PROTECT, related_name="reviews")
    officer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    officer_username = models.CharField(max_length=150, help_text="Copied: the record outlives the account.")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.verdict} by {self.officer_username}"
