"""Response shapes of the compliance API: a decision with its findings, requirements, obligations and rule packs."""

from rest_framework import serializers

from compliance.engine import vocabulary as vocab
from compliance.models import RulePack, RulePackBacktest
from config.serializers import StrictModelSerializer, StrictSerializer


class FindingSerializer(StrictSerializer):
    rule = serializers.CharField()
    regime = serializers.CharField()
    outcome = serializers.CharField()
    requirements = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    explanation = serializers.CharField()
    citation = serializers.CharField()
    rulepack = serializers.CharField()
    four_eyes = serializers.BooleanField(
        required=False,
        help_text="An officer's approval of a trade with this finding needs a second, different officer.",
    )


class DecisionSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(choices=[o.value for o in vocab.Outcome])
    requirements = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    findings = FindingSerializer(many=True)
    obligations = serializers.ListField(child=serializers.CharField())
    rulepacks = serializers.ListField(child=serializers.CharField())


class RulePackSerializer(StrictSerializer):
    id = serializers.UUIDField()
    ref = serializers.CharField()
    regime = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=RulePack.Status.choices)
    effective_from = serializers.DateField(allow_null=True)
    effective_to = serializers.DateField(allow_null=True)
    checksum = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field: the metaclass pops it, no Field.source clash
    notes = serializers.CharField()
    loaded_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by_label")
    updated_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    activated_by = serializers.CharField(source="activated_by_label")
    editors = serializers.SerializerMethodField(
        help_text="Who created or edited the content: none of them may approve it."
    )
    approved_by = serializers.CharField(
        source="approved_by_label", help_text="The second officer who approved this content (or empty)."
    )
    approved_at = serializers.DateTimeField(allow_null=True)
    approval_current = serializers.SerializerMethodField(
        help_text="An approval exists and the content has not changed since."
    )
    content = serializers.JSONField()

    def get_editors(self, pack: RulePack) -> list[str]:
        return [str(e.get("username", "")) for e in pack.editors or []]

    def get_approval_current(self, pack: RulePack) -> bool:
        return bool(pack.approved_checksum) and (
            pack.status != RulePack.Status.DRAFT or pack.approved_checksum == pack.checksum
        )


class RulePackDraftSerializer(StrictSerializer):
    """A new draft: exactly one of `content`, `yaml` or `based_on` (with a new `version`)."""

    content = serializers.JSONField(required=False, help_text="The pack's data as an object (docs/rulepacks.md).")
    yaml = serializers.CharField(required=False, trim_whitespace=False, help_text="The pack file's text.")
    based_on = serializers.UUIDField(
        required=False, help_text="Copy this version's content (its effective dates are cleared)."
    )
    version = serializers.CharField(
        required=False, max_length=32, help_text="The new version's name (required with based_on)."
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class RulePackEditSerializer(StrictSerializer):
    content = serializers.JSONField(required=False)
    yaml = serializers.CharField(required=False, trim_whitespace=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class RulePackProblemSerializer(StrictSerializer):
    path = serializers.CharField()
    message = serializers.CharField()


class RulePackValidationSerializer(StrictSerializer):
    ok = serializers.BooleanField()
    problems = RulePackProblemSerializer(many=True)
    warnings = RulePackProblemSerializer(many=True)


class RulePackActivateSerializer(StrictSerializer):
    effective_from = serializers.DateField(
        help_text="Today or later; trades dated from then on are decided by this version."
    )


class BacktestRequestSerializer(StrictSerializer):
    """{"scope": "period", "from": date, "to": date} or {"scope": "open"}."""

    scope = serializers.ChoiceField(choices=RulePackBacktest.Scope.choices, default=RulePackBacktest.Scope.PERIOD)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword, so these two are declared here rather than as attributes.
        fields["from"] = serializers.DateField(
            required=False, allow_null=True, help_text="First day of the period (checks made on or after it)."
        )
        fields["to"] = serializers.DateField(
            required=False, allow_null=True, help_text="Last day of the period, inclusive."
        )
        return fields


class ChangedFindingSerializer(StrictSerializer):
    rule = serializers.CharField()
    regime = serializers.CharField()
    old_outcome = serializers.CharField(allow_null=True)
    new_outcome = serializers.CharField(allow_null=True)
    explanation = serializers.CharField()
    citation = serializers.CharField()
    rulepack = serializers.CharField()


class OutcomeSummarySerializer(StrictSerializer):
    outcome = serializers.CharField()
    requirements = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))


class BacktestItemSerializer(StrictSerializer):
    subject_type = serializers.CharField()
    subject_id = serializers.UUIDField()
    check_id = serializers.UUIDField()
    checked_at = serializers.DateTimeField()
    as_of = serializers.DateField(help_text="The date both decisions were evaluated on.")
    old = OutcomeSummarySerializer(help_text="With the active versions.")
    new = OutcomeSummarySerializer(help_text="With the version under test in place of its regime's versions.")
    recorded = OutcomeSummarySerializer(required=False, help_text="The recorded decision, when it differs from `old`.")
    changed_findings = ChangedFindingSerializer(many=True)


class TransitionSerializer(StrictSerializer):
    to = serializers.CharField()
    count = serializers.IntegerField()

    def get_fields(self) -> dict[str, serializers.Field]:
        return {"from": serializers.CharField(), **super().get_fields()}


class BacktestTotalsSerializer(StrictSerializer):
    evaluated = serializers.IntegerField()
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]  # a declared field: the metaclass pops it, no .errors clash
    transitions = TransitionSerializer(many=True)


class WidenedRuleSerializer(StrictSerializer):
    rule = serializers.CharField()
    old_outcome = serializers.CharField(allow_null=True)
    new_outcome = serializers.CharField(allow_null=True)
    removed = serializers.BooleanField()


class WidenedSerializer(StrictSerializer):
    """What moves outcomes toward allow, compared with the active version the pack replaces."""

    widens = serializers.BooleanField(help_text="True when anything below is non-empty: an approver must look.")
    compared_with = serializers.CharField(allow_null=True, help_text="The active version compared with.")
    kind = serializers.CharField()
    jurisdictions_removed = serializers.ListField(
        child=serializers.CharField(),
        help_text="Taken off a list a stricter-than-allow rule reads (e.g. an embargo list).",
    )
    lists = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="The same, per parameter."
    )
    rules_toward_allow = WidenedRuleSerializer(
        many=True, help_text="Rules whose outcome became less restrictive, or were removed."
    )
    trades_less_restrictive = serializers.IntegerField(
        help_text="Replayed trades that would be decided less restrictively."
    )


class BacktestSummarySerializer(StrictModelSerializer):
    rulepack = serializers.UUIDField(source="rulepack_id")
    totals = serializers.JSONField(source="report.totals")
    widened = WidenedSerializer(source="report.widened", default=None, allow_null=True)
    truncated = serializers.BooleanField(source="report.truncated", default=False)
    stale = serializers.SerializerMethodField(help_text="The version's content changed since (a draft was edited).")
    created_by = serializers.CharField(source="created_by_label")

    class Meta:
        model = RulePackBacktest
        fields = [
            "id",
            "rulepack",
            "rulepack_checksum",
            "scope",
            "params",
            "totals",
            "widened",
            "truncated",
            "stale",
            "created_by",
            "created_at",
        ]

    def get_stale(self, backtest: RulePackBacktest) -> bool:
        return backtest.rulepack_checksum != backtest.rulepack.checksum


class BacktestSerializer(BacktestSummarySerializer):
    # Declared fields (the metaclass pops them): redeclaring `totals` and naming one `errors` shadow nothing.
    totals = BacktestTotalsSerializer(source="report.totals")  # type: ignore[assignment]
    items = BacktestItemSerializer(many=True, source="report.items")
    errors = serializers.JSONField(source="report.errors", default=list)  # type: ignore[assignment,arg-type]  # a list: stubs want a Mapping

    class Meta(BacktestSummarySerializer.Meta):
        fields = [*BacktestSummarySerializer.Meta.fields, "items", "errors"]
