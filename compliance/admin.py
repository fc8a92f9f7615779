"""Admin: rule packs, checks and reviews are records; none is editable here. Officers (staff with an
officer or admin membership) see them without Django model permissions, and act on rule packs only
through the lifecycle services (validate, backtest)."""

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from compliance.models import ComplianceCheck, ExportRecord, Review, RulePack, RulePackBacktest, SanctionsList
from compliance.selectors.rulepacks import rulepack_backtest_list
from compliance.services.backtests import rulepack_backtest
from compliance.services.rulepacks import rulepack_export_yaml, rulepack_validate, rulepack_warnings
from config.errors import ApplicationError, InvalidInputError
from config.permissions import ADMIN, OFFICER, role_of
from config.users import request_user

# "Backtest the last N days" replays every trade checked in that window (at most 5,000, see
# compliance.services.backtests.MAX_BACKTEST_SUBJECTS).
BACKTEST_PERIOD_DAYS = 90


def is_workspace_officer(request: HttpRequest) -> bool:
    """Staff whose membership makes them a compliance officer (or the operator's admin)."""
    user = request.user
    return bool(user.is_active and user.is_staff and role_of(user) in (OFFICER, ADMIN))


class OfficerViewMixin:
    """Officers may view these models without being superusers or holding model permissions;
    other staff keep whatever Django permissions they were given."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_workspace_officer(request) or super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_workspace_officer(request) or super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_officer_permission(self, request: HttpRequest) -> bool:
        """For admin actions declared with permissions=["officer"]."""
        return is_workspace_officer(request)


def error_text(exc: ApplicationError) -> str:
    """An ApplicationError as one line for an admin message: the message, its fields, its code."""
    details = "; ".join(
        f"{field}: {' '.join(str(m) for m in msgs) if isinstance(msgs, list) else msgs}"
        for field, msgs in exc.fields.items()
    )
    return f"{exc.message}{f' ({details})' if details else ''} [{exc.code}]"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RulePack)
class RulePackAdmin(OfficerViewMixin, ReadOnlyAdmin):
    """Versions with their status, dates, checksum and content as YAML, and their backtest reports.
    Drafts are written and activated through the API (`/api/v1/rulepacks/`); here officers validate
    and backtest them."""

    list_display = [
        "regime",
        "version",
        "title",
        "status",
        "effective_from",
        "effective_to",
        "short_checksum",
        "kind",
        "loaded_at",
    ]
    list_filter = ["status", "regime", "kind"]
    search_fields = ["regime", "version", "title"]
    fields = [
        "regime",
        "version",
        "title",
        "kind",
        "status",
        "effective_from",
        "effective_to",
        "checksum",
        "source",
        "notes",
        "created_by_label",
        "editors_list",
        "approved_by_label",
        "approved_at",
        "loaded_at",
        "updated_at",
        "activated_at",
        "activated_by_label",
        "content_yaml",
    ]
    readonly_fields = ["content_yaml", "editors_list"]
    change_form_template = "admin/compliance/rulepack/change_form.html"
    actions = ["validate_packs", "backtest_period"]
    # Backtest scopes offered on the pack page: scope → button label. marketplace adds "open".
    backtest_scopes: dict[str, str] = {"period": f"Backtest the last {BACKTEST_PERIOD_DAYS} days"}

    @admin.display(description="checksum", ordering="checksum")
    def short_checksum(self, pack: RulePack) -> str:
        return format_html('<code title="{}">{}…</code>', pack.checksum, pack.checksum[:12])

    @admin.display(description="written by (may not approve)")
    def editors_list(self, pack: RulePack) -> str:
        return ", ".join(str(e.get("username", "")) for e in pack.editors or []) or "—"

    @admin.display(description="content (YAML)")
    def content_yaml(self, pack: RulePack) -> str:
        return format_html('<pre class="rulepack-yaml">{}</pre>', rulepack_export_yaml(pack=pack))

    # --- the lifecycle services, from the list (actions) and from the pack page (buttons) ---------

    def run_backtest(self, request: HttpRequest, pack: RulePack, scope: str) -> RulePackBacktest:
        if scope == RulePackBacktest.Scope.PERIOD:
            since = timezone.localdate() - timedelta(days=BACKTEST_PERIOD_DAYS)
            return rulepack_backtest(pack_id=pack.pk, scope=scope, period_from=since, actor=request_user(request))
        raise InvalidInputError(fields={"scope": [f"must be one of: {', '.join(self.backtest_scopes)}"]})

    def _validate_one(self, request: HttpRequest, pack: RulePack) -> None:
        problems = rulepack_validate(pack_id=pack.pk)
        for warning in rulepack_warnings(pack=pack):
            messages.warning(request, f"Warning for {pack.ref}: {warning.path} {warning.message}")
        if not problems:
            messages.success(
                request, f"Validation of {pack.ref}: no problem, nothing stands in the way of activating it."
            )
            return
        messages.error(
            request,
            f"Validation of {pack.ref}: {len(problems)} problem{'s' if len(problems) != 1 else ''}: "
            + "; ".join(f"{p.path}: {p.message}" for p in problems),
        )

    def _backtest_one(self, request: HttpRequest, pack: RulePack, scope: str) -> None:
        try:
            backtest = self.run_backtest(request, pack, scope)
        except ApplicationError as exc:
            messages.error(request, f"Backtest of {pack.ref}: {error_text(exc)}")
            return
        totals = backtest.report.get("totals", {})
        moves = ", ".join(f"{t['from']} → {t['to']} ×{t['count']}" for t in totals.get("transitions", []))
        page = reverse("admin:compliance_rulepack_change", args=[pack.pk])
        messages.success(
            request,
            format_html(
                '<a href="{}#backtests">Backtest of {}</a> ({}): {} evaluated, {} would change{}.',
                page,
                pack.ref,
                backtest.get_scope_display(),
                totals.get("evaluated", 0),
                totals.get("changed", 0),
                f" ({moves})" if moves else "",
            ),
        )
        widened = backtest.report.get("widened") or {}
        if widened.get("widens"):
            removed = ", ".join(widened.get("jurisdictions_removed") or []) or "none"
            rules = ", ".join(r["rule"] for r in widened.get("rules_toward_allow") or []) or "none"
            messages.warning(
                request,
                f"{pack.ref} widens outcomes toward allow compared with "
                f"{widened.get('compared_with') or 'nothing active'}: "
                f"jurisdictions removed from stricter lists: {removed}; rules moved toward allow: {rules}; "
                f"{widened.get('trades_less_restrictive', 0)} replayed trade(s) decided less restrictively.",
            )

    @admin.action(description="Validate selected rule packs", permissions=["officer"])
    def validate_packs(self, request: HttpRequest, queryset: QuerySet[RulePack]) -> None:
        for pack in queryset:
            self._validate_one(request, pack)

    @admin.action(
        description=f"Backtest selected rule packs on the last {BACKTEST_PERIOD_DAYS} days of trades",
        permissions=["officer"],
    )
    def backtest_period(self, request: HttpRequest, queryset: QuerySet[RulePack]) -> None:
        for pack in queryset:
            self._backtest_one(request, pack, RulePackBacktest.Scope.PERIOD)

    def _pack_action_view(self, request: HttpRequest, pack_id: Any, *, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not is_workspace_officer(request):
            raise PermissionDenied
        pack = RulePack.objects.filter(pk=pack_id).first()
        if pack is None:
            raise Http404("No such rule pack.")
        if action == "validate":
            self._validate_one(request, pack)
        else:
            self._backtest_one(request, pack, str(request.POST.get("scope", "")))
        return redirect("admin:compliance_rulepack_change", pack.pk)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:pack_id>/validate/",
                view(lambda request, pack_id: self._pack_action_view(request, pack_id, action="validate")),
                name="compliance_rulepack_validate",
            ),
            path(
                "<uuid:pack_id>/backtest/",
                view(lambda request, pack_id: self._pack_action_view(request, pack_id, action="backtest")),
                name="compliance_rulepack_backtest",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        pack = self.get_object(request, object_id)
        if pack is not None:
            extra_context = {
                **(extra_context or {}),
                "backtests": list(rulepack_backtest_list(pack_id=pack.pk).select_related("rulepack")[:10]),
                "backtest_scopes": self.backtest_scopes.items(),
                "can_act": is_workspace_officer(request),
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(RulePackBacktest)
class RulePackBacktestAdmin(OfficerViewMixin, ReadOnlyAdmin):
    list_display = ["rulepack", "scope", "evaluated", "changed", "created_by_label", "created_at"]
    list_filter = ["scope"]
    list_select_related = ["rulepack"]
    fields = ["rulepack", "rulepack_checksum", "scope", "params", "created_by_label", "created_at"]
    change_form_template = "admin/compliance/rulepackbacktest/change_form.html"

    @admin.display(description="evaluated")
    def evaluated(self, backtest: RulePackBacktest) -> int:
        return int(backtest.report.get("totals", {}).get("evaluated", 0))

    @admin.display(description="would change")
    def changed(self, backtest: RulePackBacktest) -> int:
        return int(backtest.report.get("totals", {}).get("changed", 0))


@admin.register(ComplianceCheck)
class ComplianceCheckAdmin(OfficerViewMixin, ReadOnlyAdmin):
    list_display = ["subject_type", "subject_id", "outcome", "created_at"]
    list_filter = ["outcome"]


@admin.register(Review)
class ReviewAdmin(OfficerViewMixin, ReadOnlyAdmin):
    list_display = ["subject_id", "verdict", "officer_username", "created_at"]


@admin.register(ExportRecord)
class ExportRecordAdmin(ReadOnlyAdmin):
    list_display = ["exporter_id", "subject_id", "state", "date", "classification", "subjects"]
    list_filter = ["state", "classification"]


@admin.register(SanctionsList)
class SanctionsListAdmin(admin.ModelAdmin):
    """Imported sanctions-list snapshots: records, never edited (import with manage.py import_sanctions_list)."""

    list_display = ["source", "published_on", "imported_at", "entries_count", "checksum", "rescreened_at"]
    list_filter = ["source"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
