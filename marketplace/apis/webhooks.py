"""Webhooks over HTTP: an organisation's endpoints, their deliveries and every attempt. Each
organisation sees only its own; anyone else's endpoint or delivery is a 404."""

from datetime import timedelta
from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.serializers import StrictModelSerializer, StrictSerializer, reject_body
from marketplace.apis.common import request_membership as _membership
from marketplace.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from marketplace.selectors.members import membership_of
from marketplace.services import webhooks as webhook_services

UUID_PATH = "[0-9a-fA-F-]{36}"


# --- serializers ------------------------------------------------------------------------------


class WebhookEndpointSerializer(StrictModelSerializer):
    url = serializers.CharField(
        max_length=500, help_text="https://… to a public address (plain http only to ELEMENTA_WEBHOOK_ALLOWED_HOSTS).",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=webhook_services.EVENT_KINDS), allow_empty=False,
        help_text="The event kinds this endpoint receives.",
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "events",
            "description",
            "active",
            "created_by",
            "created_at",
            "updated_at",
            "previous_secret_expires_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_at", "previous_secret_expires_at"]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signs every request. Shown only now: store it.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class WebhookRotateSerializer(StrictSerializer):
    keep_previous_hours = serializers.IntegerField(
        min_value=0,
        max_value=168,
        default=0,
        help_text="Keep signing with the old secret as well (a second v1= signature) for this many hours; 0 stops it "
                  "at once.",
    )


class WebhookAttemptSerializer(StrictModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "url", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class WebhookDeliverySerializer(StrictModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    redelivery_of = serializers.UUIDField(source="redelivery_of_id", read_only=True, allow_null=True)
    attempt_count = serializers.IntegerField(source="attempts", read_only=True)
    attempts = WebhookAttemptSerializer(source="attempt_log", many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "kind",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_error",
            "delivered_at",
            "redelivery_of",
            "created_at",
            "payload",
            "attempts",
        ]
        read_only_fields = fields


def _deliveries() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.prefetch_related(
        Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
    )


# --- views ------------------------------------------------------------------------------------


class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your organisation's webhook endpoints. The signing secret is returned only when an endpoint
    is created and when its secret is rotated."""

    serializer_class = WebhookEndpointSerializer
    lookup_value_regex = UUID_PATH
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        membership = membership_of(self.request.user)
        if membership is None:
            return WebhookEndpoint.objects.none()
        return WebhookEndpoint.objects.filter(organisation_id=membership.organisation_id).select_related("created_by")

    @extend_schema(responses={201: WebhookEndpointWithSecretSerializer})
    def create(self, request: Request) -> Response:
        """Any member, for its own organisation. Audited (`webhook.endpoint_created`; the secret never is)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_services.webhook_endpoint_create(
            membership=_membership(request), **serializer.validated_data
        )
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Your organisation's endpoint (anyone else's: 404). Audited (`webhook.endpoint_updated`, each change old →
        new)."""
        current = self.get_object()
        serializer = self.get_serializer(current, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_services.webhook_endpoint_update(
            endpoint_id=current.id, actor=request.user, **serializer.validated_data
        )
        return Response(self.get_serializer(endpoint).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Your organisation's endpoint (anyone else's: 404), with its deliveries. Audited
        (`webhook.endpoint_deleted`)."""
        webhook_services.webhook_endpoint_delete(endpoint_id=self.get_object().id, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=WebhookRotateSerializer, responses=WebhookEndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret, effective at once (the old one may overlap for a few hours). Your
        organisation's endpoint only (anyone else's: 404). Audited (`webhook.secret_rotated`, never the secret)."""
        endpoint = self.get_object()
        params = WebhookRotateSerializer(data=request.data or {})
        params.is_valid(raise_exception=True)
        endpoint = webhook_services.webhook_secret_rotate(
            endpoint_id=endpoint.id,
            actor=request.user,
            keep_previous_for=timedelta(hours=params.validated_data["keep_previous_hours"]),
        )
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a `ping` event to this endpoint now; follow it in its deliveries."""
        endpoint = self.get_object()
        reject_body(request)
        delivery = webhook_services.webhook_endpoint_ping(endpoint_id=endpoint.id)
        return Response(
            WebhookDeliverySerializer(_deliveries().get(pk=delivery.id)).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=WebhookDelivery.Status.values),
            OpenApiParameter("kind", str, enum=[*webhook_services.EVENT_KINDS, webhook_services.PING]),
        ],
        responses=WebhookDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"], serializer_class=WebhookDeliverySerializer)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """This endpoint's deliveries, newest first, each with its attempts."""
        filters: dict[str, Any] = {"endpoint_id": self.get_object().id}
        for name in ("status", "kind"):
            if request.query_params.get(name):
                filters[name] = request.query_params[name]
        page = self.paginate_queryset(_deliveries().filter(**filters).order_by("-created_at", "id"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One delivery of your organisation's endpoints, with its attempts; redeliver it."""

    serializer_class = WebhookDeliverySerializer
    lookup_value_regex = UUID_PATH

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        membership = membership_of(self.request.user)
        if membership is None:
            return WebhookDelivery.objects.none()
        return _deliveries().filter(endpoint__organisation_id=membership.organisation_id)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Send the event again as a new delivery (same event id, new delivery id). 409 while the
        original is still pending or its endpoint is disabled."""
        original = self.get_object()
        reject_body(request)
        delivery = webhook_services.webhook_delivery_redeliver(delivery_id=original.id)
        return Response(self.get_serializer(_deliveries().get(pk=delivery.id)).data, status=status.HTTP_202_ACCEPTED)
