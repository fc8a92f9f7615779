"""Onboarding and legal facts with history; invitations; reviewed false positives of party
screening; notification preferences."""

import uuid

from django.conf import settings
from django.db import models

from marketplace.models.core import Organisation

__all__ = ["Invitation", "Notification", "NotificationPreference", "OrganisationFacts", "ScreeningFalsePositive"]


class OrganisationFacts(models.Model):
    """One version of an organisation's legal facts: its application, or a later change it asked
    for. An officer verifies it (a second, different officer when screening found a possible list
    match or an owner is linked to a sanctioned jurisdiction); the verified version is copied onto
    the organisation and is in force from `valid_from` until the next one's (`valid_to`)."""

    class Kind(models.TextChoices):
        APPLICATION = "application"
        CHANGE = "change"

    class Status(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="fact_versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    facts = models.JSONField(
        help_text="Legal name, registration, jurisdiction, headquarters, owners, kind, certifications…"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    screening = models.JSONField(
        default=list, help_text="List matches found when it was requested (and re-checked at verification)."
    )
    second_officer_reasons = models.JSONField(
        default=list, help_text="Why verifying it needs two officers; empty if one suffices."
    )
    first_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_accepted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(
        max_length=150, blank=True, help_text="Copied: the record outlives the account."
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organisation", "number"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="organisation_facts_number_unique"),
            models.UniqueConstraint(
                fields=["organisation"], condition=models.Q(status="pending"), name="organisation_facts_one_pending"
            ),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="organisation_facts_queue_idx")]

    def __str__(self) -> str:
        return f"{self.ref} ({self.status})"

    @property
    def ref(self) -> str:
        return f"org:{self.organisation_id}@v{self.number}"


class ScreeningFalsePositive(models.Model):
    """An officer's finding that a list entry is not this organisation (nor its owner): the match is
    not raised again while both sides stay as they were (same entry content, same screened names)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="screening_false_positives")
    source = models.CharField(max_length=16)
    entry_id = models.CharField(max_length=40)
    entry_name = models.CharField(max_length=400)
    entry_fingerprint = models.CharField(max_length=64)
    organisation_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the organisation's screened names."
    )
    reason = models.TextField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organisation", "source", "entry_id"], name="screening_fp_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.organisation_id} is not {self.source}:{self.entry_id}"


class Invitation(models.Model):
    """An e-mailed invitation to join an organisation in a role; the link carries a signed token
    that expires (ELEMENTA_INVITATION_MAX_AGE_HOURS) and is used once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.organisation_id} as {self.role}"


class NotificationPreference(models.Model):
    """Which e-mail notifications a user does not want (every kind is on by default)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    muted = models.JSONField(default=list, help_text="Notification kinds the user turned off.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notifications of {self.user_id}"


class Notification(models.Model):
    """An e-mail to send (the outbox): written with the action that causes it, sent after commit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    email = models.EmailField(blank=True, help_text="For someone without an account yet (an invitation).")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    skipped = models.BooleanField(default=False, help_text="Nothing was sent: the user has no e-mail address.")

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["sent_at", "created_at"], name="notification_outbox_idx")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.user_id or self.email}"
