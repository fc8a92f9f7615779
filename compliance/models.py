"""Rule-pack versions, compliance checks (decisions) and officer reviews.

Compliance never imports marketplace: a check names what it checked by subject type and id.
"""

import uuid

from django.conf import settings
from django.db import models


class RulePack(models.Model):
    """One version of one regime's rules. Shipped files load as `active`; officers' versions start
    as editable `draft`s and become `active` (immutable from then on) when activated, which needs a
    fresh backtest of exactly that content and the approval of an officer who neither created nor
    edited it. The engine uses active versions only, each from its `effective_from`."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"  # in force from effective_from (until effective_to or a later version); never changes

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    regime = models.CharField(max_length=32)
    version = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)
    effective_from = models.DateField(null=True, blank=True, help_text="Empty only for a draft that does not say yet.")
    effective_to = models.DateField(null=True, blank=True)
    content = models.JSONField(help_text="The pack's data exactly as validated and loaded.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of `content`.")
    source = models.CharField(max_length=200, blank=True)
    loaded_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT, db_index=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(
        max_length=150, blank=True, help_text="Copied: the record outlives the account."
    )
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty for versions loaded from the shipped files."
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_by_label = models.CharField(max_length=150, blank=True)
    # Segregation of duties: who wrote the draft's content, and the second officer who approved it.
    editors = models.JSONField(
        default=list, blank=True, help_text='Everyone who wrote its content: [{"id": user id, "username": …}].'
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by_label = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_checksum = models.CharField(
        max_length=64, blank=True, help_text="The content approved; an edit since voids the approval."
    )

    class Meta:
        constraints = [
            # Drafts are work in progress and may collide (validation says so); published versions never do.
            models.UniqueConstraint(
                fields=["regime", "version"], condition=~models.Q(status="draft"), name="rulepack_regime_version_unique"
            ),
        ]
        ordering = ["regime", "-effective_from"]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        return f"{self.regime.lower()}@{self.version}"


class RulePackBacktest(models.Model):
    """A stored backtest report: what a draft would change, kept so it can be shown later."""

    class Scope(models.TextChoices):
        PERIOD = "period"
        OPEN = "open"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rulepack = models.ForeignKey(RulePack, on_delete=models.PROTECT, related_name="backtests")
    rulepack_checksum = models.CharField(
        max_length=64, help_text="The content the report is about (a draft may change later)."
    )
    scope = models.CharField(max_length=8, choices=Scope.choices)
    params = models.JSONField(default=dict)
    report = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.scope} backtest of {self.rulepack_id}"


class ComplianceCheck(models.Model):
    """One engine decision on one subject (a trade), with the exact facts it saw."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subject_type = models.CharField(max_length=32)
    subject_id = models.UUIDField(db_index=True)
    facts = models.JSONField()
    outcome = models.CharField(max_length=20)
    decision = models.JSONField()
    rulepacks = models.JSONField(default=list)
    # "|EU|SANCTIONS|": the regimes with a finding that is not `allow` (what a reviewer must look at)
    flagged_regimes = models.CharField(max_length=255, blank=True, default="")
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
    conditions = models.JSONField(default=dict, blank=True, help_text="e.g. {\"grant_valid_days\": 90}")
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
        constraints = [
            models.UniqueConstraint(fields=["subject_type", "subject_id"], name="export_record_subject_unique")
        ]
        indexes = [models.Index(fields=["exporter_id", "state", "date"], name="export_record_window_idx")]

    def __str__(self) -> str:
        return f"{self.state} {self.subjects} {self.classification} by {self.exporter_id}"


class ExportTally(models.Model):
    """Running sums of the counted (reserved or committed) ExportRecords, one row per exporter,
    day, buyer, classification and category set, so a check reads the exporter's windows in a few
    hundred rows at most (days × buyers × kinds of data in 13 months) however many transfers
    there were. Kept by database triggers on ExportRecord (migration 0011), in the same statement
    as every insert, update and delete of a record, whatever path writes it; never written here."""

    exporter_id = models.UUIDField()
    day = models.DateField()
    buyer_id = models.UUIDField()
    classification = models.CharField(max_length=24)
    categories = models.JSONField(default=list)
    subjects = models.BigIntegerField(default=0)
    transfers = models.IntegerField(default=0, help_text="Counted records on this row; 0 means none (kept).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["exporter_id", "day", "buyer_id", "classification", "categories"], name="export_tally_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subjects} {self.classification} by {self.exporter_id} on {self.day}"


class AuditEvent(models.Model):
    """One append-only, hash-chained record of something that happened: each event's hash covers
    its own content and the previous event's hash, so editing or deleting any row breaks the chain
    from that row on (`python manage.py verify_audit`, `GET /api/v1/audit/verify/`).

    Actions append events without touching the chain (no shared lock on the request path); the
    chainer (`audit_chain`, every 2 s and before every verification) links committed events in
    the order it finds them, setting seq, prev_hash and hash."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    kind = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(
        max_length=150, help_text="Username or system:<process>; copied, and part of the hash."
    )
    subject_type = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    seq = models.BigIntegerField(null=True, unique=True, help_text="Position in the chain; empty until chained.")
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, null=True, unique=True)  # noqa: DJ001  (NULL until chained: "" would collide under unique)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["subject_type", "subject_id", "id"], name="audit_subject_idx")]

    def __str__(self) -> str:
        return f"#{self.id} {self.kind} {self.subject_type}:{self.subject_id}"


class AuditChainHead(models.Model):
    """The chain's last link, locked only by the chainer; its hash and count also reveal a chain
    cut short (the newest events deleted)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit head #{self.last_id}"


class SanctionsList(models.Model):
    """One imported snapshot of a published sanctions list (OFAC SDN, EU consolidated financial
    sanctions). Snapshots are never edited: a new file is a new version, and the newest version of
    each source is the one parties are screened against."""

    class Source(models.TextChoices):
        OFAC_SDN = "ofac_sdn", "OFAC Specially Designated Nationals"
        EU_FSF = "eu_fsf", "EU consolidated financial sanctions"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    published_on = models.DateField(help_text="The file's own generation date, else the day it was imported.")
    imported_at = models.DateTimeField(auto_now_add=True)
    checksum = models.CharField(max_length=64, help_text="SHA-256 over the imported files, in a fixed order.")
    files = models.JSONField(default=list, help_text="Each file imported: name, bytes, sha256.")
    origin = models.CharField(max_length=500, blank=True, help_text="Where the files came from (path or URL).")
    entries_count = models.PositiveIntegerField(default=0)
    imported_by_label = models.CharField(max_length=150, blank=True)
    rescreened_at = models.DateTimeField(
        null=True, blank=True, help_text="When everyone was screened again against it."
    )

    class Meta:
        ordering = ["-imported_at"]
        constraints = [models.UniqueConstraint(fields=["source", "checksum"], name="sanctions_list_once_per_content")]
        indexes = [models.Index(fields=["source", "-imported_at"], name="sanctions_list_current_idx")]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        return f"{self.source}@{str(self.published_on)[:10]}#{self.checksum[:8]}"


class SanctionsEntry(models.Model):
    """One listed party of a snapshot: its names (primary and aliases), programmes and countries."""

    id = models.BigAutoField(primary_key=True)
    sanctions_list = models.ForeignKey(SanctionsList, on_delete=models.CASCADE, related_name="entries")
    entry_id = models.CharField(max_length=40, help_text="The list's own key: OFAC ent_num, EU logical id.")
    reference = models.CharField(max_length=60, blank=True, help_text="EU reference number, UN id…")
    party_type = models.CharField(max_length=16, blank=True, help_text="entity, individual, vessel, aircraft")
    name = models.CharField(max_length=400)
    aliases = models.JSONField(default=list)
    programmes = models.JSONField(default=list)
    countries = models.JSONField(default=list)
    remarks = models.TextField(blank=True)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of what screening reads; a change reopens false positives."
    )

    class Meta:
        ordering = ["sanctions_list", "entry_id"]
        constraints = [models.UniqueConstraint(fields=["sanctions_list", "entry_id"], name="sanctions_entry_unique")]

    def __str__(self) -> str:
        return f"{self.entry_id} {self.name}"
