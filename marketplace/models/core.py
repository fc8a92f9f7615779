"""Organisations and memberships, datasets (listings with the facts the law needs), trades, their events and
evidence."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

__all__ = [
    "Dataset",
    "EvidenceStatus",
    "Membership",
    "Organisation",
    "OrganisationMechanism",
    "Settlement",
    "Trade",
    "TradeDocument",
    "TradeEvent",
]


class Organisation(models.Model):
    """A company or public body on the marketplace; the facts the law asks about the parties live here."""

    class Kind(models.TextChoices):
        COMPANY = "company"
        PUBLIC_BODY = "public_body"
        COURT_OR_LAW_ENFORCEMENT = "court_or_law_enforcement"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    jurisdiction = models.CharField(max_length=8, help_text="Where it is established and receives data (ISO 3166).")
    headquarters = models.CharField(
        max_length=8, blank=True, help_text="Principal place of business; defaults to the jurisdiction."
    )
    owner_jurisdictions = models.JSONField(
        default=list, blank=True, help_text="Jurisdictions of owners of 50 % or more."
    )
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.COMPANY)
    certifications = models.JSONField(default=list, blank=True)
    exporter_flags = models.JSONField(default=list, blank=True, help_text="cn_ciio, cn_ftz, cn_gba, data_broker")
    is_operator = models.BooleanField(default=False, help_text="The platform operator (officers and admins).")
    # Onboarding: an organisation that applied over the API is `applied` until an officer verifies
    # its legal facts; only a `verified` one trades. Rows created otherwise (the operator's admin,
    # seed data, earlier rows) are verified by default.
    status = models.CharField(
        max_length=10,
        choices=[("applied", "applied"), ("verified", "verified"), ("rejected", "rejected")],
        default="verified",
        db_index=True,
    )
    registration_number = models.CharField(max_length=80, blank=True)
    register = models.CharField(max_length=200, blank=True, help_text="The register that issued the number.")
    aliases = models.JSONField(default=list, blank=True, help_text="Other names it trades under (screened too).")
    owners = models.JSONField(
        default=list, blank=True,
        help_text="Beneficial owners and controlling parties: [{name, jurisdiction, share, kind: owner|controller}].",
    )
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    facts_version = models.PositiveIntegerField(
        default=0, help_text="The verified version of its legal facts in force (0: set before versions were kept).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.status == "verified"


class Membership(models.Model):
    """A user's place in one organisation and the role it plays there."""

    class Role(models.TextChoices):
        PROVIDER = "provider"
        BUYER = "buyer"
        OFFICER = "officer"
        ADMIN = "admin"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    def __str__(self) -> str:
        return f"{self.user} ({self.role} at {self.organisation})"


class Dataset(models.Model):
    """A provider's listing: what the data is (the facts transfer law turns on), its price and licence."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        WITHDRAWN = "withdrawn"

    class Pricing(models.TextChoices):
        ONE_TIME = "one_time"
        SUBSCRIPTION = "subscription"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="datasets")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=20_000, help_text="At most 20,000 characters.")
    subject_jurisdictions = models.JSONField(default=list)
    storage_jurisdiction = models.CharField(max_length=8)
    classification = models.CharField(max_length=24)
    categories = models.JSONField(default=list, blank=True)
    subjects = models.PositiveBigIntegerField(default=0)
    de_identified = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    exporter_flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Added to the provider organisation's own flags for this dataset (e.g. exported via an FTZ entity).",
    )
    pi_duties_attested = models.BooleanField(
        default=False,
        help_text="The provider attests notice, separate consent and the impact assessment (PIPL Arts. 23, 39, 55) "
        "for the Chinese personal information in this dataset; required to publish such a listing.",
    )
    price = models.DecimalField(max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="USD")
    pricing = models.CharField(max_length=16, choices=Pricing.choices, default=Pricing.ONE_TIME)
    licence = models.JSONField(default=dict, blank=True)
    licence_version = models.PositiveIntegerField(
        default=1,
        help_text="Counts the provider's changes of the terms a buyer agrees to (price, currency, pricing, licence, "
        "compute offer); a buyer pins the version it saw with `expected_licence_version`.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # "|CN|DE|": lets the catalogue filter by jurisdiction with one indexed-friendly LIKE on
    # SQLite and PostgreSQL alike (JSON containment is not portable).
    jurisdiction_index = models.CharField(max_length=400, default="", editable=False)
    category_index = models.CharField(max_length=400, default="", editable=False)
    published_at = models.DateTimeField(null=True, blank=True)
    # A summary of the uploaded file versions, kept by the upload service (services/dataset_files.py)
    # so the catalogue list shows what data exists without reading the versions.
    file_count = models.PositiveIntegerField(default=0, editable=False)
    file_total_bytes = models.PositiveBigIntegerField(default=0, editable=False)
    file_formats = models.JSONField(default=list, blank=True, editable=False, help_text="Media types, first seen first")
    latest_file_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    latest_file_uploaded_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(price__gte=0), name="dataset_price_not_negative")]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="dataset_status_idx"),
            # The public catalogue reads only published listings: one partial index per ordering it offers
            # (btree scans backwards too, so each serves `key` and `-key`; `id` is the tie-breaker). The
            # full-text and trigram indexes are PostgreSQL-only (migration 0022, marketplace/selectors/catalogue.py).
            *[
                models.Index(fields=[*keys, "id"], condition=models.Q(status="published"), name=name)
                for keys, name in (
                    (["published_at"], "dataset_pub_published_idx"),
                    (["created_at"], "dataset_pub_created_idx"),
                    (["price"], "dataset_pub_price_idx"),
                    (["currency", "price"], "dataset_pub_cur_price_idx"),
                    (["title"], "dataset_pub_title_idx"),
                )
            ],
        ]

    def __str__(self) -> str:
        return self.title


class Trade(models.Model):
    """A buyer organisation's purchase of a dataset, from compliance check to settlement.

    `status` changes only through marketplace.services.trade_transitions.trade_transition.
    """

    class Status(models.TextChoices):
        CHECKING = "checking"
        NEEDS_DOCUMENTS = "needs_documents"
        IN_REVIEW = "in_review"
        APPROVED = "approved"
        SETTLED = "settled"
        REJECTED = "rejected"
        CANCELLED = "cancelled"
        REFUNDED = "refunded"

    # Statuses in which a trade waits for the engine, the buyer or an officer (`waiting_since`).
    WAITING = frozenset({"checking", "needs_documents", "in_review"})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="trades")
    provider = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="sales")
    buyer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="purchases")
    buyer_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    destination = models.CharField(max_length=8)
    purpose = models.CharField(max_length=32, default="resale")
    mechanisms = models.JSONField(default=list, blank=True)
    # Pinned at purchase: later edits to the dataset change no open trade.
    price = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    pricing = models.CharField(max_length=16)
    licence = models.JSONField(default=dict, blank=True)
    licence_version = models.PositiveIntegerField(default=1, help_text="The dataset's licence_version bought.")
    delivery = models.CharField(
        max_length=8,
        choices=[("download", "download"), ("compute", "compute")],
        default="download",
        help_text="download: the file is transferred; compute: queries run where the data is stored, only released "
                  "results leave.",
    )
    compute_queries = models.PositiveIntegerField(
        null=True, blank=True, help_text="Queries bought (compute offers priced per query)."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CHECKING, db_index=True)
    status_changed_at = models.DateTimeField()
    waiting_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the trade entered checking / needs_documents / in_review; kept across re-checks, cleared once "
                  "it leaves them.",
    )
    redrives = models.PositiveSmallIntegerField(
        default=0, help_text="Times the sweeper re-enqueued this trade in its current status."
    )
    decision = models.ForeignKey(
        "compliance.ComplianceCheck", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    renews = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewals",
        help_text="The subscription trade this one renews; it goes through compliance again.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "status_changed_at"], name="trade_status_age_idx"),
            models.Index(fields=["status", "waiting_since", "id"], name="trade_status_waiting_idx"),
            models.Index(fields=["buyer", "-created_at"], name="trade_buyer_idx"),
            models.Index(fields=["provider", "-created_at"], name="trade_provider_idx"),
        ]
        constraints = [
            # one live renewal per subscription period; a rejected, cancelled or refunded one leaves room for another
            models.UniqueConstraint(
                fields=["renews"], name="trade_one_live_renewal",
                condition=models.Q(renews__isnull=False) & ~models.Q(status__in=["rejected", "cancelled", "refunded"]),
            ),
        ]

    def __str__(self) -> str:
        return f"trade {self.id} ({self.status})"


class TradeEvent(models.Model):
    """One status change: who, from, to, why, when. Written only by the transition service."""

    id = models.BigAutoField(primary_key=True)
    trade = models.ForeignKey(Trade, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(
        max_length=150, help_text="Username or 'system:<process>'; copied so it outlives the account."
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class Settlement(models.Model):
    """The record that a trade settled, at most one per trade (the unique constraint is the guard).

    The seam for escrow and the ledger: marketplace.services.settlement.trade_settle writes it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trade = models.OneToOneField(Trade, on_delete=models.PROTECT, related_name="settlement")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    platform_fee = models.DecimalField(max_digits=14, decimal_places=2)
    provider_amount = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"settlement of {self.trade_id}"


def _document_path(instance: "TradeDocument", filename: str) -> str:
    return f"documents/{instance.trade_id}/{instance.id}-{filename[-80:]}"


def _mechanism_path(instance: "OrganisationMechanism", filename: str) -> str:
    return f"mechanisms/{instance.organisation_id}/{instance.id}-{filename[-80:]}"


class EvidenceStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class EvidenceReview(models.Model):
    """What an officer decided about a piece of evidence. Only accepted evidence satisfies a
    requirement; the uploader never reviews their own, and a regulator's approval needs two
    officers (the first acceptance is recorded, the second one accepts)."""

    status = models.CharField(
        max_length=10, choices=EvidenceStatus.choices, default=EvidenceStatus.PENDING, db_index=True
    )
    first_accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_accepted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by_label = models.CharField(
        max_length=150, blank=True, help_text="Copied: the record outlives the account."
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)

    class Meta:
        abstract = True


class TradeDocument(EvidenceReview):
    """Evidence that a mechanism a trade needs is in place (a signed SCC, a CAC approval, a filing)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trade = models.ForeignKey(Trade, on_delete=models.CASCADE, related_name="documents")
    code = models.CharField(max_length=40)
    reference = models.CharField(max_length=200, blank=True)
    approved_on = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    file = models.FileField(upload_to=_document_path, null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.code} for {self.trade_id}"


class OrganisationMechanism(EvidenceReview):
    """A safeguard an organisation keeps on file for all its trades (a buyer's signed SCC, an
    exporter's CAC security-assessment approval); it counts once an officer has accepted it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="mechanisms")
    code = models.CharField(max_length=40)
    reference = models.CharField(max_length=200, blank=True)
    approved_on = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    file = models.FileField(upload_to=_mechanism_path, null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "created_at"]

    def __str__(self) -> str:
        return f"{self.code} of {self.organisation_id}"
