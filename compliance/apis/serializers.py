"""Response shapes of the compliance API: a decision with its findings, requirements, obligations and rule packs."""

from collections.abc import Sequence
from typing import Any

from rest_framework import serializers

from compliance.engine import facts
from compliance.engine import vocabulary as vocab
from compliance.models import RulePack, RulePackBacktest
from config.serializers import StrictModelSerializer, StrictSerializer

OUTCOMES = [o.value for o in vocab.Outcome]  # one enum in the schema: OutcomeEnum


class FindingSerializer(StrictSerializer):
    rule = serializers.CharField()
    regime = serializers.CharField()
    outcome = serializers.ChoiceField(choices=OUTCOMES)
    requirements = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    explanation = serializers.CharField()
    citation = serializers.CharField()
    rulepack = serializers.CharField()
    four_eyes = serializers.BooleanField(
        required=False,
        help_text="An officer's approval of a trade with this finding needs a second, different officer.",
    )


class DecisionSerializer(StrictSerializer):
    outcome = serializers.ChoiceField(choices=OUTCOMES)
    requirements = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="What the trade needs, as groups: each inner list is alternatives, any one of which satisfies it.",
    )
    findings = FindingSerializer(many=True)
    obligations = serializers.ListField(child=serializers.CharField())
    rulepacks = serializers.ListField(child=serializers.CharField())


class TradeDecisionSerializer(DecisionSerializer):
    """A trade's recorded decision: the engine's answer, when it was made, and the check that made it."""

    checked_at = serializers.DateTimeField(help_text="When the compliance check that made this decision ran.")
    check = serializers.UUIDField(help_text="The compliance check's id (audit events and backtests name it).")


class DeliveryDecisionsSerializer(StrictSerializer):
    download = DecisionSerializer()
    compute = DecisionSerializer()


class PreviewDecisionSerializer(DecisionSerializer):
    """A decision preview; where the dataset is also offered for computation, both ways side by side."""

    alternatives = serializers.ListField(
        child=serializers.ChoiceField(choices=vocab.DELIVERIES), required=False,
        help_text='["compute"] when a download would be denied or need a regulator\'s approval and compute would not.',
    )
    by_delivery = DeliveryDecisionsSerializer(required=False)


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
    old_outcome = serializers.ChoiceField(choices=OUTCOMES, allow_null=True)
    new_outcome = serializers.ChoiceField(choices=OUTCOMES, allow_null=True)
    explanation = serializers.CharField()
    citation = serializers.CharField()
    rulepack = serializers.CharField()


class OutcomeSummarySerializer(StrictSerializer):
    outcome = serializers.ChoiceField(choices=OUTCOMES)
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
    old_outcome = serializers.ChoiceField(choices=OUTCOMES, allow_null=True)
    new_outcome = serializers.ChoiceField(choices=OUTCOMES, allow_null=True)
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


# --- The facts of POST /compliance/evaluate/ (docs/facts.md) -----------------------------------------
# Documentation only: the engine's parse_facts validates the body (400 `invalid_facts`). Built from the
# same vocabularies and field lists (compliance/engine/facts.py); tests/compliance/test_openapi_facts.py
# checks the two agree.

JURISDICTION_HELP = "ISO 3166-1 alpha-2 country (DE) or ISO 3166-2 subdivision (UA-43)."


def _jurisdiction(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=8, help_text=JURISDICTION_HELP, **kwargs)


def _codes(choices: Sequence[str], help_text: str = "") -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=list(choices)), required=False, max_length=facts.MAX_CODES,
        help_text=help_text,
    )


class FactsDataSerializer(StrictSerializer):
    subject_jurisdictions = serializers.ListField(
        child=_jurisdiction(), min_length=1, max_length=facts.MAX_CODES,
        help_text="Where the people the data is about are (" + JURISDICTION_HELP + ")",
    )
    storage_jurisdiction = _jurisdiction(required=False)
    classification = serializers.ChoiceField(choices=list(vocab.CLASSIFICATIONS))
    categories = _codes(vocab.CATEGORIES)
    subjects = serializers.IntegerField(min_value=0, required=False, help_text="How many people; default 0.")
    de_identified = serializers.BooleanField(required=False)
    flags = _codes(vocab.DATA_FLAGS)


class FactsExporterSerializer(StrictSerializer):
    jurisdiction = _jurisdiction(required=False)
    flags = _codes(vocab.EXPORTER_FLAGS)


class FactsBuyerSerializer(StrictSerializer):
    jurisdiction = _jurisdiction()
    headquarters = _jurisdiction(required=False)
    owner_jurisdictions = serializers.ListField(child=_jurisdiction(), required=False, max_length=facts.MAX_CODES)
    kind = serializers.ChoiceField(choices=list(vocab.BUYER_KINDS), required=False)
    certifications = _codes(vocab.CERTIFICATIONS)
    declared_destinations = serializers.ListField(
        child=_jurisdiction(), required=False, max_length=facts.MAX_CODES,
        help_text="Places the data will also go; each is evaluated as a transfer of its own.",
    )


class FactsMechanismSerializer(StrictSerializer):
    code = serializers.ChoiceField(choices=list(vocab.MECHANISMS))
    approved_on = serializers.DateField(required=False)
    valid_until = serializers.DateField(required=False)
    reference = serializers.CharField(required=False)


class FactsPriorExportSerializer(StrictSerializer):
    date = serializers.DateField()
    classification = serializers.ChoiceField(choices=list(vocab.CLASSIFICATIONS))
    categories = _codes(vocab.CATEGORIES)
    subjects = serializers.IntegerField(min_value=0, required=False)
    same_buyer = serializers.BooleanField(required=False)


class FactsListMatchSerializer(StrictSerializer):
    party = serializers.ChoiceField(choices=list(facts.PARTIES))
    subject = serializers.ChoiceField(choices=list(facts.MATCH_SUBJECTS), required=False)
    name = serializers.CharField(max_length=facts.MAX_TEXT)
    share = serializers.FloatField(min_value=0, max_value=100, required=False)
    list = serializers.CharField(max_length=facts.MAX_TEXT)
    entry = serializers.CharField(max_length=facts.MAX_TEXT)
    entry_name = serializers.CharField(max_length=facts.MAX_TEXT, required=False)
    programme = serializers.CharField(max_length=facts.MAX_TEXT, required=False)
    score = serializers.FloatField(min_value=0, max_value=100)


class FactsPartiesSerializer(StrictSerializer):
    list_matches = FactsListMatchSerializer(many=True, required=False, max_length=facts.MAX_LIST_MATCHES)  # type: ignore[call-arg]
    lists = serializers.ListField(child=serializers.CharField(max_length=facts.MAX_TEXT), required=False, max_length=20)
    records = serializers.DictField(child=serializers.CharField(max_length=facts.MAX_TEXT), required=False)


class TransferFactsSerializer(StrictSerializer):
    """The facts of one cross-border transfer, as the rule engine reads them (docs/facts.md)."""

    trade_date = serializers.DateField(required=False, help_text="Defaults to today.")
    data = FactsDataSerializer()  # type: ignore[assignment]  # a declared field: the metaclass pops it, no .data clash
    exporter = FactsExporterSerializer(required=False)
    buyer = FactsBuyerSerializer()
    purpose = serializers.ChoiceField(choices=list(vocab.PURPOSES), required=False)
    mechanisms = FactsMechanismSerializer(many=True, required=False, max_length=facts.MAX_MECHANISMS)  # type: ignore[call-arg]
    prior_exports = FactsPriorExportSerializer(many=True, required=False, max_length=facts.MAX_PRIOR_EXPORTS)  # type: ignore[call-arg]
    delivery = serializers.ChoiceField(choices=list(vocab.DELIVERIES), required=False)
    parties = FactsPartiesSerializer(required=False)
