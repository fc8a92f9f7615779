"""Compute-to-data: a dataset offered for computation, the runs of buyers' queries, and the
differential-privacy budget each compute grant spends."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from marketplace.models.access import AccessGrant
from marketplace.models.core import Dataset, Organisation

__all__ = ["ComputeOffer", "ComputeQuery", "PrivacyBudget"]

MIN_K = 5  # the release policy's floor: no offer may release groups of fewer people


class ComputeOffer(models.Model):
    """A provider's offer to run buyers' aggregate queries on a dataset where it is stored, instead
    of (or besides) selling the file. Queries see one table, `table_name`, holding the declared
    `columns` of the dataset's current file version; each column has a role."""

    class Role(models.TextChoices):
        IDENTIFIER = "identifier"  # names a person: only ever counted, never output, grouped or filtered on
        QUASI_IDENTIFIER = "quasi_identifier"  # identifies in combination (city, age band): grouping allowed, k applies
        SENSITIVE = "sensitive"  # special-category values: queries reading it may be held for an officer's review
        PLAIN = "plain"

    class Pricing(models.TextChoices):
        PER_PERIOD = "per_period"  # the price buys `term_days` of queries
        PER_QUERY = "per_query"  # the price is per query; a trade buys a number of queries

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="compute_offer")
    enabled = models.BooleanField(default=True)
    table_name = models.CharField(max_length=63, default="data")
    columns = models.JSONField(help_text="{column: role}; undeclared columns of the file are never loaded.")
    min_group_size = models.PositiveIntegerField(
        default=10, help_text=f"k: groups of fewer contributors are suppressed (at least {MIN_K})."
    )
    max_result_rows = models.PositiveIntegerField(default=1000)
    price = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    pricing = models.CharField(max_length=16, choices=Pricing.choices, default=Pricing.PER_PERIOD)
    term_days = models.PositiveIntegerField(default=30, help_text="Length of one period of access.")
    dp_epsilon_per_period = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="ε each buyer may spend per period; empty: no differential privacy.",
    )
    dp_epsilon_per_query = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    bounds = models.JSONField(
        default=dict, blank=True, help_text="{column: [low, high]}: clamp bounds for DP sums and averages."
    )
    contributions_per_person = models.PositiveIntegerField(
        default=1, help_text="Rows one person contributes at most (DP sensitivity)."
    )
    review_sensitive_queries = models.BooleanField(
        default=False,
        help_text="Set by officers: results of queries reading a sensitive column wait for an officer's release.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(min_group_size__gte=MIN_K), name="compute_offer_k_floor"),
            models.CheckConstraint(condition=Q(price__gte=0), name="compute_offer_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"compute offer on {self.dataset_id}"

    @property
    def dp(self) -> bool:
        return self.dp_epsilon_per_query is not None and self.dp_epsilon_per_period is not None

    def catalogue(self) -> dict[str, dict[str, str]]:
        return {self.table_name: dict(self.columns)}

    def identifier(self) -> str | None:
        return next((c for c, role in self.columns.items() if role == self.Role.IDENTIFIER), None)


class PrivacyBudget(models.Model):
    """ε of one compute grant (one buyer, one period), kept like money: a query reserves its ε when
    accepted, commits it when released, and gives it back if nothing was released. Reservation is a
    conditional UPDATE; the CHECK constraints make overspending impossible even if code is wrong."""

    grant = models.OneToOneField(AccessGrant, on_delete=models.CASCADE, related_name="privacy_budget")
    total = models.DecimalField(max_digits=10, decimal_places=4)
    reserved = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    spent = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(reserved__gte=0) & Q(spent__gte=0), name="privacy_budget_not_negative"),
            models.CheckConstraint(
                condition=Q(total__gte=F("reserved") + F("spent")), name="privacy_budget_within_total"
            ),
        ]

    def __str__(self) -> str:
        return f"ε {self.spent}+{self.reserved}/{self.total} for {self.grant_id}"


class ComputeQuery(models.Model):
    """One run of a buyer's query under a compute grant, and what it released."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        HELD = "held"  # ran; the result waits for an officer (a sensitive column was read)
        RELEASED = "released"
        REFUSED = "refused"  # an officer refused to release it
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    grant = models.ForeignKey(AccessGrant, on_delete=models.PROTECT, related_name="compute_queries")
    buyer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="compute_queries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    sql = models.TextField()
    sql_sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    queue = models.CharField(
        max_length=40, help_text="The Celery queue of the data's storage jurisdiction, e.g. compute.cn."
    )
    tables = models.JSONField(default=list, help_text="[{name, dataset_file, version, sha256}] the query ran on.")
    columns_read = models.JSONField(default=list)
    touches_sensitive = models.BooleanField(default=False)
    review_required = models.BooleanField(default=False)
    k = models.PositiveIntegerField()
    epsilon = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"),
                                  help_text="ε reserved at submission; spent if released, returned otherwise.")
    epsilon_spent = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    rows_read = models.PositiveBigIntegerField(null=True, blank=True)
    groups_total = models.PositiveIntegerField(null=True, blank=True)
    groups_suppressed = models.PositiveIntegerField(null=True, blank=True)
    rows_capped = models.PositiveIntegerField(null=True, blank=True)
    mechanism = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="{columns, rows}: shown only once released.")
    result_sha256 = models.CharField(max_length=64, blank=True)
    engine_ms = models.FloatField(null=True, blank=True)
    reviewed_by_label = models.CharField(max_length=150, blank=True)
    review_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["grant", "-created_at"], name="compute_query_grant_idx")]

    def __str__(self) -> str:
        return f"query {self.id} ({self.status})"
