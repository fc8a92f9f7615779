"""Dataset files and versions, access grants and downloads."""

import os
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketplace.models.core import Dataset, Organisation, Trade

__all__ = ["AccessGrant", "DatasetFile", "DatasetSample", "GrantDownload", "GrantRevocationRequest"]


def _dataset_file_path(instance: "DatasetFile", filename: str) -> str:
    # One folder per version: the storage name never collides with, or overwrites, another version.
    return f"datasets/{instance.dataset_id}/v{instance.version}/{instance.id}-{os.path.basename(filename)[-80:]}"


class DatasetFile(models.Model):
    """One uploaded version of a dataset's content. Immutable: a new upload is a new version, and a
    row is never updated or deleted while grants and downloads point at it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="files")
    version = models.PositiveIntegerField(help_text="1, 2, 3 … per dataset, in upload order.")
    file = models.FileField(upload_to=_dataset_file_path, max_length=300)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_by_label = models.CharField(max_length=150, help_text="Username, copied so it outlives the account.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="dataset_file_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="dataset_file_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("A dataset file version is immutable; upload a new version instead.")
        super().save(*args, **kwargs)


def _dataset_sample_path(instance: "DatasetSample", filename: str) -> str:
    # A fresh name per upload: a replacement never overwrites the sample a download may be reading.
    return f"samples/{instance.dataset_id}/{uuid.uuid4()}-{os.path.basename(filename)[-80:]}"


class DatasetSample(models.Model):
    """A small free sample of a dataset: anyone who can see the listing may download it. At most one
    per dataset (a new upload replaces it). The provider declared it holds no personal data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="sample")
    file = models.FileField(upload_to=_dataset_sample_path, max_length=300)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    contains_personal_data = models.BooleanField(
        default=False, help_text="The provider's declaration; always false (personal samples are refused)."
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_by_label = models.CharField(max_length=150, help_text="Username, copied so it outlives the account.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(contains_personal_data=False), name="dataset_sample_not_personal"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} sample"


class AccessGrant(models.Model):
    """What a settled trade lets the buyer download, until when, and for which destination.

    Versions covered: `max_version` None means every version (subscriptions: whatever the provider
    publishes, downloadable while the grant is valid); a number means versions 1…max_version (a
    one-time purchase: the latest version at settlement, or version 1 if nothing was uploaded yet).
    Active = not revoked, not suspended and valid_from <= now < valid_until (valid_until None: no expiry).
    Suspended = re-screening found that the trade would now be denied: no download until an
    officer reinstates or revokes the grant (suspended_at is cleared on reinstatement; the audit
    trail keeps every suspension and its resolution).
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # a renewal waiting for the term it renews to end
        ACTIVE = "active"
        EXPIRED = "expired"
        REVOKED = "revoked"
        SUSPENDED = "suspended"  # re-screening would now deny the trade: waiting for an officer

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trade = models.OneToOneField(Trade, on_delete=models.PROTECT, related_name="grant")
    buyer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="grants")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="grants")
    max_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Highest version covered; empty = every version."
    )
    destination = models.CharField(
        max_length=8, help_text="Where the buyer may take the data (the trade's destination)."
    )
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Empty: no expiry.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_by_label = models.CharField(max_length=150, blank=True, help_text="Username or 'system:<process>', copied.")
    queries_left = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Compute grants priced per query: queries still to run; empty: unlimited in the term.",
    )
    suspended_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while the grant is suspended; cleared on reinstatement."
    )
    suspended_reason = models.TextField(blank=True)
    suspended_by_label = models.CharField(
        max_length=150, blank=True, help_text="Who suspended it, e.g. 'system:rescreening'; copied."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expiry_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the parties were told it expires soon."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["buyer", "-created_at"], name="grant_buyer_idx"),
            models.Index(fields=["dataset", "-created_at"], name="grant_dataset_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="grant_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"grant {self.id} on {self.dataset_id}"

    @classmethod
    def active_q(cls, now: datetime | None = None) -> Q:
        """The filter for grants that allow a download at `now`."""
        now = now or timezone.now()
        return Q(revoked_at__isnull=True, suspended_at__isnull=True, valid_from__lte=now) & (
            Q(valid_until__isnull=True) | Q(valid_until__gt=now)
        )

    def status_at(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.suspended_at is not None:
            return self.Status.SUSPENDED
        if now < self.valid_from:
            return self.Status.PENDING
        if self.valid_until is not None and now >= self.valid_until:
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    def covers(self, version: int) -> bool:
        return self.max_version is None or version <= self.max_version


class GrantDownload(models.Model):
    """One download under a grant: who, which version, which bytes. Written when the response starts;
    `bytes_sent` and `completed_at` are filled in when the stream ends (a client that disconnects
    leaves bytes_sent below the length and completed_at empty)."""

    id = models.BigAutoField(primary_key=True)
    grant = models.ForeignKey(AccessGrant, on_delete=models.PROTECT, related_name="downloads")
    file = models.ForeignKey(DatasetFile, on_delete=models.PROTECT, related_name="downloads")
    version = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, help_text="Copied so the record outlives the account.")
    range_header = models.CharField(max_length=200, blank=True, help_text="The Range header as sent, if any.")
    first_byte = models.PositiveBigIntegerField()
    last_byte = models.PositiveBigIntegerField(help_text="Inclusive.")
    length = models.PositiveBigIntegerField(help_text="Bytes the response carries.")
    bytes_sent = models.PositiveBigIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["grant", "-at"], name="grant_download_idx")]

    def __str__(self) -> str:
        return f"{self.username} v{self.version} of grant {self.grant_id}"


class GrantRevocationRequest(models.Model):
    """A request to revoke a grant, decided by an officer. A provider cannot take paid access away
    alone: its revoke call files a request (access stays as it is meanwhile); an officer revokes,
    with a refund decision, or declines. An officer's own revocation is recorded as a request
    decided at once, so every revocation with its refund decision is in one place."""

    class Status(models.TextChoices):
        PENDING = "pending"
        REVOKED = "revoked"    # decided: the grant was revoked
        DECLINED = "declined"  # decided: access stays

    class Refund(models.TextChoices):
        FULL = "full"          # the whole price back; the trade becomes `refunded`
        PRO_RATA = "pro_rata"  # the unused fraction of the grant's term; the trade stays `settled`
        NONE = "none"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    grant = models.ForeignKey(AccessGrant, on_delete=models.PROTECT, related_name="revocation_requests")
    reason = models.TextField(help_text="Why the requester wants access revoked.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_label = models.CharField(max_length=150, help_text="Username, copied.")
    requested_by_organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    refund = models.CharField(
        max_length=10, choices=Refund.choices, blank=True, help_text="Set when the grant was revoked."
    )
    refund_amount = models.DecimalField(
        max_digits=16, decimal_places=2, null=True, blank=True, help_text="What the buyer got back."
    )
    refund_currency = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open request per grant: a second one would only race the first.
            models.UniqueConstraint(
                fields=["grant"], condition=Q(status="pending"), name="grant_revocation_one_pending"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="grant_revocation_queue_idx")]

    def __str__(self) -> str:
        return f"{self.status} revocation request on grant {self.grant_id}"
