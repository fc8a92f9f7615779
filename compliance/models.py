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


class ExporterLock(models.Model):
    """One row per exporter, locked while a check reads and reserves that exporter's volumes, so
    two concurrent checks cannot both slip under a cumulative threshold they cross together."""

    exporter_id = models.UUIDField(primary_key=True)

    def __str__(self) -> str:
        return f"exporter {self.exporter_id}"


class ExportRecord(models.Model):
    """A transfer counted toward an exporter's cumulative tallies (China's calendar year, the US
    rule's 12 months with the same buyer). Reserved when a check lets a trade go on, committed when
    it settles, released when it is rejected or cancelled; released rows stay as history."""

    class State(models.TextChoices):
        RESERVED = "reserved"
        COMMITTED = "committed"
        RELEASED = "released"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    exporter_id = models.UUIDField()
    buyer_id = models.UUIDField()
    subject_type = models.CharField(max_length=32)
    subject_id = models.UUIDField()
    date = models.DateField(help_text="The check's trade date while reserved; the settlement date once committed.")
    classification = models.CharField(max_length=24)
    categories = models.JSONField(default=list)
    subjects = models.PositiveBigIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.RESERVED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject_type", "subject_id"], name="export_record_subject_unique")]
        indexes = [models.Index(fields=["exporter_id", "state", "date"], name="export_record_window_idx")]

    def __str__(self) -> str:
        return f"{self.state} {self.subjects} {self.classification} by {self.exporter_id}"
