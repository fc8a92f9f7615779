"""Admin: read-mostly views of marketplace data; status never changes here except through services.

The officer's workspace lives here too: the review queue, the trade page (facts, findings, evidence,
approve / reject through marketplace.services.trades.trade_review) and, on the rule-pack pages that
compliance.admin provides, the backtest against open trades."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from rest_framework_api_key.models import APIKey as LibraryApiKey

from compliance.admin import OfficerViewMixin, ReadOnlyAdmin, RulePackAdmin
from compliance.engine import vocabulary as vocab
from compliance.models import RulePack, RulePackBacktest
from compliance.selectors.rulepacks import rulepack_list
from config.users import request_user
from marketplace import admin_views
from marketplace.models import (
    AccessGrant,
    ApiKey,
    Dataset,
    DatasetFile,
    GrantDownload,
    Membership,
    Organisation,
    OrganisationMechanism,
    ReviewItem,
    Settlement,
    Trade,
    TradeDocument,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from marketplace.selectors.trades import review_queue
from marketplace.services.datasets import dataset_withdraw
from marketplace.services.rescreening import rulepack_backtest_open

admin.site.site_header = "Elementa"
admin.site.site_title = "Elementa admin"
admin.site.index_title = "Officer's workspace and records"


# The API-key library's own model is unused (ours belongs to an organisation and carries scopes).
if admin.site.is_registered(LibraryApiKey):
    admin.site.unregister(LibraryApiKey)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Organisations' machine keys, to look at: members create and revoke them through /api/v1/api-keys/ (audited)."""

    list_display = ["prefix", "name", "organisation", "scopes", "created", "expiry_date", "revoked"]
    list_filter = ["revoked"]
    list_select_related = ["organisation"]
    search_fields = ["prefix", "name", "organisation__name"]
    exclude = ["hashed_key", "id"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    """Once an organisation's legal facts are versioned (it applied), they change only through a
    request an officer verifies (POST /api/v1/organisations/{id}/facts/), never by editing here."""

    list_display = ["name", "status", "jurisdiction", "kind", "facts_version", "is_operator"]
    list_filter = ["status"]
    search_fields = ["name"]
    LEGAL_FACTS = ("name", "status", "registration_number", "register", "jurisdiction", "headquarters", "owners",
                   "owner_jurisdictions", "kind", "certifications", "aliases", "facts_version")

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        if obj is not None and obj.facts_version > 0:
            return self.LEGAL_FACTS
        return ("status", "facts_version")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role"]
    list_select_related = ["user", "organisation"]


@admin.register(Dataset)
class DatasetAdmin(OfficerViewMixin, ReadOnlyAdmin):
    """Listings are records here: providers create, edit and publish them through the API, where
    every change is audited with its author. Officers may withdraw a listing (audited too)."""

    list_display = ["title", "provider", "classification", "status", "price", "currency"]
    list_filter = ["status", "classification"]
    list_select_related = ["provider"]
    search_fields = ["title"]
    actions = ["withdraw_listings"]

    @admin.action(description="Withdraw selected listings from the catalogue", permissions=["officer"])
    def withdraw_listings(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        withdrawn = [
            dataset_withdraw(dataset_id=d.pk, actor=request.user)
            for d in queryset.exclude(status=Dataset.Status.WITHDRAWN)
        ]
        messages.success(
            request, f"Withdrew {len(withdrawn)} listing{'s' if len(withdrawn) != 1 else ''}; open trades go on."
        )


@admin.register(Trade)
class TradeAdmin(OfficerViewMixin, admin.ModelAdmin):
    """Every trade; its page is the officer's trade page (facts, findings with citations, evidence,
    reviews, events, and the approve / reject form while it waits for a person)."""

    list_display = ["id", "dataset", "buyer", "destination", "status", "price", "currency", "created_at"]
    list_filter = ["status"]
    list_select_related = ["dataset", "buyer"]
    change_form_template = "admin/marketplace/trade/workspace.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Trade._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # status changes only through the review form (trade_review) and the worker

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view  # staff login, CSRF protection, no caching
        return [
            path("<uuid:trade_id>/review/", view(admin_views.trade_review_view), name="marketplace_trade_review"),
            path(
                "<uuid:trade_id>/evidence.json",
                view(admin_views.trade_evidence_view),
                name="marketplace_trade_evidence",
            ),
            path(
                "<uuid:trade_id>/documents/<uuid:document_id>/file/",
                view(admin_views.trade_document_file_view),
                name="marketplace_trade_document_file",
            ),
            path(
                "<uuid:trade_id>/documents/<uuid:document_id>/decide/",
                view(admin_views.trade_document_decide_view),
                name="marketplace_trade_document_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        trade = self.get_object(request, object_id)
        if trade is not None and self.has_view_permission(request, trade):
            extra_context = {**(extra_context or {}), **admin_views.trade_page_context(request=request, trade=trade)}
        return super().change_view(request, object_id, form_url, extra_context)


# --- the review queue -----------------------------------------------------------------------


class QueueFilter(admin.SimpleListFilter):
    """In review by default; trades waiting for documents on request (officers may decide those too)."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("in_review", "In review"), ("needs_documents", "Waiting for documents"), ("all", "Both")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trade]) -> QuerySet[Trade]:
        value = self.value() or "in_review"
        return queryset if value == "all" else queryset.filter(status=value)

    def choices(self, changelist: Any) -> Any:
        current = self.value() or "in_review"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class RegimeFilter(admin.SimpleListFilter):
    """A regime with a finding that is not `allow` (same test as GET /reviews/?regime=)."""

    title = "regime"
    parameter_name = "regime"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        regimes = (
            rulepack_list(status=RulePack.Status.ACTIVE).order_by("regime").values_list("regime", flat=True).distinct()
        )
        return [(r.lower(), r) for r in regimes]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trade]) -> QuerySet[Trade]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(decision__flagged_regimes__contains=f"|{value.strip().upper()}|")


class OutcomeFilter(admin.SimpleListFilter):
    title = "engine outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Only the outcomes that leave a trade waiting for a person or a document.
        waiting = [
            o for o in vocab.Outcome if o not in (vocab.Outcome.ALLOW, vocab.Outcome.ALLOW_FLAGGED, vocab.Outcome.DENY)
        ]
        return [(o.value, o.value.replace("_", " ")) for o in reversed(waiting)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trade]) -> QuerySet[Trade]:
        return queryset.filter(decision__outcome=self.value()) if self.value() else queryset


class DestinationFilter(admin.SimpleListFilter):
    title = "destination"
    parameter_name = "destination"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        rows = (
            model_admin.get_queryset(request).order_by("destination").values_list("destination", flat=True).distinct()
        )
        return [(d, d) for d in rows]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trade]) -> QuerySet[Trade]:
        return queryset.filter(destination=self.value()) if self.value() else queryset


class AgeFilter(admin.SimpleListFilter):
    title = "waiting"
    parameter_name = "waiting"
    AGES = {"1d": ("more than a day", timedelta(days=1)), "7d": ("more than a week", timedelta(days=7)),
            "30d": ("more than 30 days", timedelta(days=30))}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.AGES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trade]) -> QuerySet[Trade]:
        value = self.value()
        if value is None or value not in self.AGES:
            return queryset
        return queryset.filter(waiting_since__lte=timezone.now() - self.AGES[value][1])


class AmountFilter(admin.SimpleListFilter):
    """Price bands in the trade's own currency."""

    title = "amount"
    parameter_name = "amount"
    BANDS = {"lt1k": ("under 1,000", None, Decimal(1000)), "1k-10k": ("1,000 to 10,000", Decimal(1000), Decimal(10000)),
             "10k": ("10,000 or more", Decimal(10000), None)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in self.BANDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Trade]) -> QuerySet[Trade]:
        value = self.value()
        if value is None or value not in self.BANDS:
            return queryset
        _, low, high = self.BANDS[value]
        if low is not None:
            queryset = queryset.filter(price__gte=low)
        return queryset.filter(price__lt=high) if high is not None else queryset


@admin.register(ReviewItem)
class ReviewQueueAdmin(OfficerViewMixin, admin.ModelAdmin):
    """Trades waiting for an officer, oldest first (marketplace.selectors.trades.review_queue).
    Each row opens the trade page, where the officer decides."""

    list_display = [
        "trade_link",
        "buyer_name",
        "destination",
        "status_badge",
        "outcome",
        "rules",
        "amount",
        "evidence",
        "waiting",
    ]
    list_display_links = None
    list_filter = [QueueFilter, RegimeFilter, OutcomeFilter, DestinationFilter, AgeFilter, AmountFilter]
    list_select_related = ["dataset", "buyer", "provider", "decision"]  # one query for the page, however many rows
    ordering = ["waiting_since", "id"]
    search_fields = ["dataset__title", "buyer__name"]
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Trade]:
        return review_queue(user=request.user, include_waiting=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return redirect("admin:marketplace_trade_change", object_id)  # one trade page, whatever its status

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(
            request, {"title": "Review queue: trades waiting for an officer, oldest first", **(extra_context or {})}
        )

    @admin.display(description="dataset", ordering="dataset__title")
    def trade_link(self, trade: Trade) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:marketplace_trade_change", args=[trade.pk]), trade.dataset.title
        )

    @admin.display(description="buyer", ordering="buyer__name")
    def buyer_name(self, trade: Trade) -> str:
        return f"{trade.buyer.name} ({trade.buyer.jurisdiction})"

    @admin.display(description="status", ordering="status")
    def status_badge(self, trade: Trade) -> str:
        return format_html('<span class="badge {}">{}</span>', trade.status, trade.get_status_display())

    @admin.display(description="outcome", ordering="decision__outcome")
    def outcome(self, trade: Trade) -> str:
        return trade.decision.outcome if trade.decision else "—"

    @admin.display(description="rules that held it")
    def rules(self, trade: Trade) -> str:
        if trade.decision is None:
            return "—"
        held = [
            f["rule"]
            for f in trade.decision.decision.get("findings", [])
            if f.get("outcome") not in ("allow", "allow_flagged")
        ]
        return ", ".join(held) or "—"

    @admin.display(description="price", ordering="price")
    def amount(self, trade: Trade) -> str:
        return f"{trade.price:,} {trade.currency}"

    @admin.display(description="documents")
    def evidence(self, trade: Trade) -> int:
        return len(trade.documents.all())  # prefetched by review_queue

    @admin.display(description="waiting", ordering="waiting_since")
    def waiting(self, trade: Trade) -> str:
        return timesince(trade.waiting_since or trade.status_changed_at)


@admin.register(Settlement)
class SettlementAdmin(admin.ModelAdmin):
    list_display = ["trade", "amount", "currency", "platform_fee", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TradeDocument)
class TradeDocumentAdmin(OfficerViewMixin, admin.ModelAdmin):
    list_display = ["trade", "code", "reference", "approved_on", "valid_until", "organisation", "created_at"]
    list_select_related = ["trade", "organisation"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OrganisationMechanism)
class OrganisationMechanismAdmin(admin.ModelAdmin):
    list_display = ["organisation", "code", "reference", "approved_on", "valid_until"]
    list_select_related = ["organisation"]


# Access records change only through marketplace.services.grants and dataset_files; webhook
# records only through marketplace.services.webhooks (the API): the admin shows them read-only.
@admin.register(DatasetFile)
class DatasetFileAdmin(ReadOnlyAdmin):
    list_display = [
        "dataset",
        "version",
        "original_name",
        "content_type",
        "size",
        "sha256",
        "uploaded_by_label",
        "created_at",
    ]
    list_select_related = ["dataset"]
    search_fields = ["sha256", "original_name"]


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "dataset",
        "buyer",
        "destination",
        "max_version",
        "valid_from",
        "valid_until",
        "revoked_at",
        "created_at",
    ]
    list_select_related = ["dataset", "buyer"]
    list_filter = ["destination"]


@admin.register(GrantDownload)
class GrantDownloadAdmin(ReadOnlyAdmin):
    list_display = ["grant", "version", "username", "range_header", "length", "bytes_sent", "at", "completed_at"]
    list_select_related = ["grant"]


# --- webhooks ---------------------------------------------------------------------------------


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = ("number", "at", "url", "status_code", "error", "duration_ms")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["url", "organisation", "active", "created_at"]
    list_filter = ["active"]
    list_select_related = ["organisation"]
    search_fields = ["url", "organisation__name"]
    # Never the secret: it is shown to the organisation once, on creation or rotation.
    fields = ["id", "organisation", "url", "events", "description", "active", "created_by", "created_at", "updated_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "event_id",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["endpoint"]
    search_fields = ["event_id"]
    inlines = [WebhookAttemptInline]


# --- rule packs: marketplace adds the backtest against open trades -------------------------------
# Compliance cannot tell which trades are open (compliance.services.backtests), so, as with the API's
# /rulepacks/{id}/backtest/ (marketplace.apis.rescreening), marketplace extends compliance's page.
admin.site.unregister(RulePack)


@admin.register(RulePack)
class RulePackWorkspaceAdmin(RulePackAdmin):
    actions = [*RulePackAdmin.actions, "backtest_open_trades"]
    backtest_scopes = {"open": "Backtest open trades", **RulePackAdmin.backtest_scopes}

    def run_backtest(self, request: HttpRequest, pack: RulePack, scope: str) -> RulePackBacktest:
        if scope == RulePackBacktest.Scope.OPEN:
            return rulepack_backtest_open(pack_id=pack.pk, actor=request_user(request))
        return super().run_backtest(request, pack, scope)

    @admin.action(description="Backtest selected rule packs on open trades and live grants", permissions=["officer"])
    def backtest_open_trades(self, request: HttpRequest, queryset: QuerySet[RulePack]) -> None:
        for pack in queryset:
            self._backtest_one(request, pack, RulePackBacktest.Scope.OPEN)
