"""Response shapes of the compliance API (shared/compliance/contract.md, output)."""

from rest_framework import serializers

from compliance.engine import vocabulary as vocab


class FindingSerializer(serializers.Serializer):
    rule = serializers.CharField()
    regime = serializers.CharField()
    outcome = serializers.CharField()
    requirements = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    explanation = serializers.CharField()
    citation = serializers.CharField()
    rulepack = serializers.CharField()


class DecisionSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[o.value for o in vocab.Outcome])
    requirements = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    findings = FindingSerializer(many=True)
    obligations = serializers.ListField(child=serializers.CharField())
    rulepacks = serializers.ListField(child=serializers.CharField())


class RulePackSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    ref = serializers.CharField()
    regime = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    effective_from = serializers.DateField()
    effective_to = serializers.DateField(allow_null=True)
    checksum = serializers.CharField()
    source = serializers.CharField()
    loaded_at = serializers.DateTimeField()
    content = serializers.JSONField()
