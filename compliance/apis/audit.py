"""The audit trail over HTTP (officers): the events, filtered, and the chain's verification."""

from datetime import UTC, datetime

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.models import AuditEvent
from compliance.services.audit import audit_verify
from config.permissions import IsOfficer
from config.serializers import StrictModelSerializer


class AuditEventSerializer(StrictModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "at", "kind", "actor_label", "subject_type", "subject_id", "data", "prev_hash", "hash"]


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 timestamp with any offset Python accepts, compared in UTC (PostgreSQL refuses
    offsets beyond ±15:59, so the value is converted before it reaches the database)."""

    def filter(self, qs: QuerySet[AuditEvent], value: datetime | None) -> QuerySet[AuditEvent]:
        if value is None:
            return qs
        try:
            value = value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError({self.field_name: ["out of range"]}) from None
        return super().filter(qs, value)


class AuditEventFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(
        field_name="kind", lookup_expr="startswith", help_text="e.g. trade. or grant.revoked"
    )
    subject_type = django_filters.CharFilter()
    subject_id = django_filters.CharFilter()
    actor = django_filters.CharFilter(field_name="actor_label")
    since = UtcDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every status change, decision, review, evidence upload, rule-pack change, grant issue,
    revocation and download, oldest first, each carrying the hash of the one before."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated, IsOfficer]
    filterset_class = AuditEventFilter

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.order_by("id")


class AuditVerifyApi(APIView):
    """Recompute the whole chain: {"ok": true, "events": N}, or the first broken link."""

    permission_classes = [IsAuthenticated, IsOfficer]

    @extend_schema(responses=inline_serializer("AuditVerification", {
        "ok": serializers.BooleanField(), "events": serializers.IntegerField(),
        "broken_at": serializers.IntegerField(required=False), "reason": serializers.CharField(required=False)}))
    def get(self, request: Request) -> Response:
        return Response(audit_verify().as_dict())
