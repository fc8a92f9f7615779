"""Organisations over HTTP: apply, verify (officers), legal facts with history, members and
invitations, party screening (lists, false positives) and notification preferences."""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.models import SanctionsList
from config.errors import NotFoundError, PermissionDeniedError
from config.permissions import IsOfficer
from config.serializers import StrictModelSerializer, StrictSerializer, reject_unknown_fields
from config.throttling import LoginRateThrottle
from marketplace.idempotency import idempotent
from marketplace.models import Membership, Organisation, OrganisationFacts, ScreeningFalsePositive
from marketplace.selectors.members import is_officer, membership_of
from marketplace.services.members import invitation_accept, invitation_create, member_role_change, require_admin
from marketplace.services.notifications import notification_preferences_get, notification_preferences_set
from marketplace.services.organisations import (
    organisation_apply,
    organisation_facts_change,
    organisation_facts_decide,
    organisation_screen,
    screening_false_positive_record,
)


def _membership(request: Request) -> Membership:
    membership = membership_of(request.user)
    if membership is None:
        raise PermissionDeniedError("Your account belongs to no organisation.")
    return membership


def organisations_visible(user: Any) -> QuerySet[Organisation]:
    """Officers see every organisation; a member only its own."""
    if is_officer(user):
        return Organisation.objects.all()
    membership = membership_of(user)
    return Organisation.objects.filter(pk=membership.organisation_id) if membership else Organisation.objects.none()


class OrganisationDetailSerializer(StrictModelSerializer):
    contact_email = serializers.CharField(read_only=True, help_text="Empty for organisations that never applied.")

    class Meta:
        model = Organisation
        fields = [
            "id",
            "name",
            "status",
            "registration_number",
            "register",
            "jurisdiction",
            "headquarters",
            "owners",
            "owner_jurisdictions",
            "kind",
            "certifications",
            "aliases",
            "contact_name",
            "contact_email",
            "facts_version",
            "is_operator",
            "created_at",
        ]
        read_only_fields = fields


class OrganisationFactsSerializer(StrictModelSerializer):
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    requested_by = serializers.SerializerMethodField()
    first_accepted_by = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="decided_by_label", read_only=True)

    class Meta:
        model = OrganisationFacts
        fields = [
            "id",
            "organisation",
            "organisation_name",
            "number",
            "kind",
            "status",
            "facts",
            "screening",
            "second_officer_reasons",
            "requested_by",
            "requested_at",
            "first_accepted_by",
            "first_accepted_at",
            "decided_by",
            "decided_at",
            "reason",
            "valid_from",
            "valid_to",
        ]
        read_only_fields = fields

    def to_representation(self, instance: OrganisationFacts) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not is_officer(request.user):
            # what screening found is for officers: the organisation sees only that a decision waits
            data["screening"], data["second_officer_reasons"] = [], []
        return data

    def get_requested_by(self, obj: OrganisationFacts) -> str:
        return obj.requested_by.get_username() if obj.requested_by else ""

    def get_first_accepted_by(self, obj: OrganisationFacts) -> str:
        return obj.first_accepted_by.get_username() if obj.first_accepted_by else ""


class AdminAccountSerializer(StrictSerializer):
    """Declared for the schema and the unknown-field check; organisation_apply validates the values."""

    username = serializers.CharField()
    email = serializers.CharField()
    password = serializers.CharField()


class ApplySerializer(StrictSerializer):
    organisation = serializers.JSONField(
        help_text="legal_name, registration_number, register, jurisdiction, headquarters, "
        "owners [{name, jurisdiction, share, kind}], kind, certifications "
        "[{code, evidence, valid_until}], aliases, contact {name, email, phone}, "
        "documents [{title, reference, sha256}]"
    )
    admin = AdminAccountSerializer(help_text="The administrator's account.")


class FactsChangeSerializer(StrictSerializer):
    organisation = serializers.JSONField(help_text="The legal facts, as in `POST /organisations/apply/`.")


class NotificationPreferencesUpdateSerializer(StrictSerializer):
    enabled = serializers.DictField(child=serializers.BooleanField())


class DecideSerializer(StrictSerializer):
    decision = serializers.ChoiceField(choices=["accept", "reject"])
    reason = serializers.CharField(max_length=4000, required=False, allow_blank=True, help_text="Required to reject.")


class MemberSerializer(StrictModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "email", "role"]
        read_only_fields = fields


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.CharField(max_length=254)
    role = serializers.CharField(
        max_length=16, help_text="provider, buyer or admin; officer or admin in the operator's organisation"
    )


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=400)
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096)


class RoleSerializer(StrictSerializer):
    role = serializers.CharField(max_length=16)


class SanctionsListSerializer(StrictModelSerializer):
    ref = serializers.CharField(read_only=True)

    class Meta:
        model = SanctionsList
        fields = [
            "id",
            "ref",
            "source",
            "published_on",
            "imported_at",
            "checksum",
            "files",
            "origin",
            "entries_count",
            "rescreened_at",
        ]
        read_only_fields = fields


class FalsePositiveSerializer(StrictModelSerializer):
    recorded_by = serializers.CharField(source="recorded_by_label", read_only=True)

    class Meta:
        model = ScreeningFalsePositive
        fields = ["id", "organisation", "source", "entry_id", "entry_name", "reason", "recorded_by", "created_at"]
        read_only_fields = ["id", "entry_name", "recorded_by", "created_at"]


class FalsePositiveCreateSerializer(StrictSerializer):
    organisation = serializers.UUIDField()
    source = serializers.ChoiceField(choices=SanctionsList.Source.choices)  # type: ignore[assignment]  # a declared field: no Field.source clash
    entry_id = serializers.CharField(max_length=40)
    reason = serializers.CharField(max_length=4000)


class ApplyApi(APIView):
    """An organisation applies to join: it is created `applied` with its administrator's account and
    cannot trade until an officer verifies its legal facts. Anyone may call it (rate-limited)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=ApplySerializer,
        auth=[],
        responses={
            201: inline_serializer(
                "Application", {"organisation": OrganisationDetailSerializer(), "facts": OrganisationFactsSerializer()}
            )
        },
    )
    def post(self, request: Request) -> Response:
        reject_unknown_fields(ApplySerializer(), request.data)
        data = request.data if isinstance(request.data, dict) else {}
        organisation, version, _ = organisation_apply(facts_raw=data.get("organisation"), admin_raw=data.get("admin"))
        return Response(
            {
                "organisation": OrganisationDetailSerializer(organisation).data,
                "facts": OrganisationFactsSerializer(version, context={"request": request}).data,
            },
            status=status.HTTP_201_CREATED,
        )


class OrganisationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Organisations: a member sees its own, officers every one (with their screening)."""

    serializer_class = OrganisationDetailSerializer
    queryset = Organisation.objects.none()

    def get_queryset(self) -> QuerySet[Organisation]:
        if getattr(self, "swagger_fake_view", False):
            return Organisation.objects.none()
        qs = organisations_visible(self.request.user)
        wanted = self.request.query_params.get("status")
        return qs.filter(status=wanted) if wanted else qs

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "screening":
            return [IsAuthenticated(), IsOfficer()]
        return super().get_permissions()

    @extend_schema(methods=["get"], responses=OrganisationFactsSerializer(many=True))
    @extend_schema(
        methods=["post"],
        request=FactsChangeSerializer,
        responses={201: OrganisationFactsSerializer},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)  # GET: a bare array of versions
    def facts(self, request: Request, pk: str | None = None) -> Response:
        """GET: every version of its legal facts (valid from/to). POST (its administrator): ask to
        change them; the new version waits for an officer (409 `organisation_facts_pending` if one waits)."""
        organisation = self.get_object()
        if request.method == "POST":
            membership = _membership(request)
            if membership.organisation_id != organisation.id:
                raise PermissionDeniedError("Only the organisation's administrator may change its legal facts.")
            require_admin(membership)
            reject_unknown_fields(FactsChangeSerializer(), request.data)
            data = request.data if isinstance(request.data, dict) else {}
            version = organisation_facts_change(membership=membership, facts_raw=data.get("organisation"))
            return Response(
                OrganisationFactsSerializer(version, context={"request": request}).data, status=status.HTTP_201_CREATED
            )
        versions = OrganisationFacts.objects.filter(organisation=organisation).select_related(
            "requested_by", "first_accepted_by"
        )
        return Response(OrganisationFactsSerializer(versions, many=True, context={"request": request}).data)

    @extend_schema(
        responses=inline_serializer(
            "Screening",
            {
                "lists": serializers.ListField(child=serializers.CharField()),
                "matches": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    @action(detail=True, methods=["get"])
    def screening(self, request: Request, pk: str | None = None) -> Response:
        """Officers: the organisation screened now against the current lists (reviewed false positives left out)."""
        organisation = self.get_object()
        matches, lists = organisation_screen(organisation=organisation)
        return Response({"lists": lists, "matches": [m.as_dict() for m in matches]})

    @extend_schema(responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # a bare array
    def members(self, request: Request, pk: str | None = None) -> Response:
        """Its members and their roles (its members and officers)."""
        organisation = self.get_object()
        rows = Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username")
        return Response(MemberSerializer(rows, many=True).data)

    @extend_schema(
        request=InvitationCreateSerializer,
        responses={
            201: inline_serializer(
                "Invitation",
                {
                    "id": serializers.UUIDField(),
                    "email": serializers.CharField(),
                    "role": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(),
                },
            )
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def invitations(self, request: Request, pk: str | None = None) -> Response:
        """Its administrator invites someone by e-mail in a role; the e-mail carries the token."""
        organisation = self.get_object()
        membership = _membership(request)
        if membership.organisation_id != organisation.id:
            raise PermissionDeniedError("Only the organisation's administrator may invite members.")
        require_admin(membership)  # who may, before what is asked
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, _ = invitation_create(membership=membership, **serializer.validated_data)
        return Response(
            {
                "id": invitation.id,
                "email": invitation.email,
                "role": invitation.role,
                "expires_at": invitation.expires_at,
            },
            status=status.HTTP_201_CREATED,
        )


class MemberRoleApi(APIView):
    """PATCH organisations/{id}/members/{user_id}/: its administrator changes a member's role."""

    @extend_schema(request=RoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, pk: str, user_id: int) -> Response:
        if not organisations_visible(request.user).filter(pk=pk).exists():
            raise NotFoundError("No such organisation.")
        membership = _membership(request)
        if str(membership.organisation_id) != str(pk):
            raise PermissionDeniedError("Only the organisation's administrator may change roles.")
        require_admin(membership)
        serializer = RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changed = member_role_change(membership=membership, user_id=user_id, role=serializer.validated_data["role"])
        return Response(MemberSerializer(changed).data)


class InvitationAcceptApi(APIView):
    """Accept an invitation: creates the account and its membership (anyone holding the token)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    @extend_schema(request=InvitationAcceptSerializer, auth=[], responses={201: MemberSerializer})
    def post(self, request: Request) -> Response:
        serializer = InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = invitation_accept(**serializer.validated_data)
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class OrganisationFactsViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versions of legal facts: officers see the queue of every organisation's, a member its own."""

    serializer_class = OrganisationFactsSerializer
    queryset = OrganisationFacts.objects.none()

    def get_queryset(self) -> QuerySet[OrganisationFacts]:
        if getattr(self, "swagger_fake_view", False):
            return OrganisationFacts.objects.none()
        qs = OrganisationFacts.objects.select_related("organisation", "requested_by", "first_accepted_by")
        if not is_officer(self.request.user):
            membership = membership_of(self.request.user)
            qs = qs.filter(organisation_id=membership.organisation_id) if membership else qs.none()
        wanted = self.request.query_params.get("status")
        return (qs.filter(status=wanted) if wanted else qs).order_by("requested_at", "id")

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "verify":
            return [IsAuthenticated(), IsOfficer()]
        return super().get_permissions()

    @extend_schema(
        request=DecideSerializer, responses={200: OrganisationFactsSerializer, 202: OrganisationFactsSerializer}
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Officers: accept (verify) or reject with a reason. With a possible list match or a
        sanctioned jurisdiction the first acceptance answers 202 and a different officer's verifies
        (409 `second_officer_required` for the same officer)."""
        version = self.get_object()
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decided = organisation_facts_decide(
            facts_id=version.id,
            officer=_membership(request),
            accept=serializer.validated_data["decision"] == "accept",
            reason=serializer.validated_data.get("reason", ""),
        )
        waiting = decided.status == OrganisationFacts.Status.PENDING
        return Response(
            OrganisationFactsSerializer(decided, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED if waiting else status.HTTP_200_OK,
        )


class SanctionsListViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Officers: imported sanctions-list snapshots, newest first (source, date, checksum, entries)."""

    serializer_class = SanctionsListSerializer
    permission_classes = [IsAuthenticated, IsOfficer]
    queryset = SanctionsList.objects.all().order_by("-imported_at")


class FalsePositiveViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Officers: reviewed false positives of party screening, per (organisation, list entry)."""

    serializer_class = FalsePositiveSerializer
    permission_classes = [IsAuthenticated, IsOfficer]
    queryset = ScreeningFalsePositive.objects.all().order_by("-created_at")

    @extend_schema(request=FalsePositiveCreateSerializer, responses={201: FalsePositiveSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record that an entry of a current list is not this organisation, with a reason; it is not
        raised again until the entry or the organisation's names change."""
        serializer = FalsePositiveCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = screening_false_positive_record(
            officer=_membership(request),
            organisation_id=data["organisation"],
            source=data["source"],
            entry_id=data["entry_id"],
            reason=data["reason"],
        )
        return Response(FalsePositiveSerializer(record).data, status=status.HTTP_201_CREATED)


class NotificationPreferencesApi(APIView):
    """Which e-mail notifications the caller gets (every kind is on until turned off)."""

    @extend_schema(
        responses=inline_serializer(
            "NotificationPreferences", {"kinds": serializers.ListField(child=serializers.DictField())}
        )
    )
    def get(self, request: Request) -> Response:
        return Response(notification_preferences_get(user=request.user))

    @extend_schema(
        request=NotificationPreferencesUpdateSerializer,
        responses=inline_serializer(
            "NotificationPreferencesUpdated", {"kinds": serializers.ListField(child=serializers.DictField())}
        ),
    )
    def patch(self, request: Request) -> Response:
        reject_unknown_fields(NotificationPreferencesUpdateSerializer(), request.data)
        data = request.data if isinstance(request.data, dict) else {}
        return Response(notification_preferences_set(user=request.user, enabled=data.get("enabled")))
