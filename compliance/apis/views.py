"""Compliance HTTP API: the dry-run evaluation and the loaded rule packs."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.apis.serializers import DecisionSerializer, RulePackSerializer
from compliance.models import RulePack
from compliance.services.checks import compliance_evaluate
from config.permissions import IsOfficer


class EvaluateApi(APIView):
    """Dry run: transfer facts in (contract.md input), a decision out. Changes nothing."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses=DecisionSerializer)
    def post(self, request: Request) -> Response:
        data: Any = request.data
        return Response(compliance_evaluate(raw_facts=data).as_dict())


class RulePackViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Loaded rule-pack versions (officers)."""

    serializer_class = RulePackSerializer
    permission_classes = [IsAuthenticated, IsOfficer]

    def get_queryset(self) -> QuerySet[RulePack]:
        return RulePack.objects.all()
