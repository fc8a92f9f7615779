"""Sessions and API keys over HTTP (docs/authentication.md): log in and out, list and end one's own
sessions, change one's password, and an organisation's machine API keys. Thin views over
marketplace.services.sessions and marketplace.services.api_keys."""

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth import logout as django_logout
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.models import AuthToken
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import InvalidCredentialsError, PermissionDeniedError
from config.scopes import SCOPES, scopes_for_role
from config.serializers import StrictModelSerializer, StrictSerializer, reject_body, reject_unknown_fields
from config.throttling import LoginRateThrottle, client_address, login_check_locked, login_failed, login_succeeded
from marketplace.models import ApiKey, Membership
from marketplace.selectors.members import membership_of
from marketplace.services import api_keys as api_key_services
from marketplace.services import sessions as session_services

TOKEN_RESPONSE = inline_serializer(
    "TokenResponse",
    {
        "token": serializers.CharField(help_text="Send as `Authorization: Bearer <token>`."),
        "expires": serializers.DateTimeField(
            allow_null=True, help_text="When the token stops working (ELEMENTA_TOKEN_TTL_HOURS after login)."
        ),
        "session": serializers.CharField(help_text="This session's id in GET /auth/sessions/."),
    },
)


def _token_response(row: AuthToken, token: str) -> dict[str, Any]:
    return {
        "token": token,
        "expires": serializers.DateTimeField().to_representation(row.expiry) if row.expiry else None,
        "session": row.token_key,
    }


class TokenRequestSerializer(StrictSerializer):
    """Checked by hand in TokenApi (a missing field is `invalid_credentials`); declared for the schema and
    the unknown-field check."""

    username = serializers.CharField()
    password = serializers.CharField()


class TokenApi(APIView):
    """Log in: exchange a username and password for a new session token, which expires."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TOKEN_RESPONSE},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Each login is a new session with its own token and expiry; earlier sessions keep working
        until they expire or are logged out. 400 `invalid_credentials`; 429 `login_locked` after repeated failures."""
        reject_unknown_fields(TokenRequestSerializer(), request.data)
        data = request.data if isinstance(request.data, dict) else {}
        username, password = data.get("username"), data.get("password")
        fields = {
            k: ["this field is required"]
            for k, v in (("username", username), ("password", password))
            if not isinstance(v, str) or not v
        }
        if fields or not isinstance(username, str) or not isinstance(password, str):  # the isinstance narrows the type
            raise InvalidCredentialsError("Username and password are required.", fields=fields)
        if len(username) > 150 or len(password) > 4096 or "\x00" in username or "\x00" in password:
            # no such account can exist (and PostgreSQL refuses NUL in text): don't even look
            raise InvalidCredentialsError()
        client = client_address(request)
        login_check_locked(username=username, client=client)
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:
            login_failed(username=username, client=client)
            raise InvalidCredentialsError()
        login_succeeded(username=username, client=client)
        row, token = session_services.session_create(user=user)
        return Response(_token_response(row, token))


class LogoutApi(APIView):
    """End the session this request came with."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        """The token used for this request stops working at once (401 `token_invalid` afterwards)."""
        reject_body(request)
        if isinstance(request.auth, AuthToken):
            session_services.session_revoke_token(token=request.auth)
        else:  # signed in through the browsable API's session cookie
            django_logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    """End every session of the caller, this one included."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        """Every token of the caller stops working at once. Audited (`user.sessions_revoked`)."""
        reject_body(request)
        session_services.sessions_revoke_all(user=request.user, actor=request.user, reason="logout_all")
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionSerializer(StrictSerializer):
    id = serializers.CharField(
        source="token_key", help_text="The first characters of the token; DELETE /auth/sessions/{id}/ ends it."
    )
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField(source="expiry", allow_null=True)
    current = serializers.SerializerMethodField(help_text="Whether this request came with this session's token.")

    def get_current(self, row: AuthToken) -> bool:
        auth = self.context["request"].auth
        return isinstance(auth, AuthToken) and auth.digest == row.digest


class SessionViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's own sessions (logins that have not expired or been logged out)."""

    serializer_class = SessionSerializer
    pagination_class = None
    lookup_value_regex = "[0-9a-f]{1,32}"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return AuthToken.objects.none()
        return session_services.session_list(user=self.request.user)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """End one of your own sessions; anyone else's (or an unknown id) is a 404. Audited (`user.session_revoked`)."""
        session_services.session_revoke(user=request.user, session_id=str(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeSerializer(StrictSerializer):
    current_password = serializers.CharField(max_length=4096, trim_whitespace=False)
    new_password = serializers.CharField(max_length=4096, trim_whitespace=False)


class PasswordChangeApi(APIView):
    """Change your password: every session ends, and this response carries a new one."""

    @extend_schema(request=PasswordChangeSerializer, responses={200: TOKEN_RESPONSE})
    def post(self, request: Request) -> Response:
        """400 `password_incorrect` (the current password is wrong) or `password_invalid` (Django's password
        validators refused the new one, `fields.new_password` says why). Audited (`user.password_changed`)."""
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, token = session_services.password_change(
            user=request.user,
            current=serializer.validated_data["current_password"],
            new=serializer.validated_data["new_password"],
        )
        return Response(_token_response(row, token))


# --- API keys ----------------------------------------------------------------------------------


def _membership(request: Request) -> Membership:
    membership = membership_of(request.user)
    if membership is None:
        raise PermissionDeniedError("Your account belongs to no organisation.")
    return membership


class ApiKeySerializer(StrictModelSerializer):
    id = serializers.CharField(
        source="prefix", read_only=True, help_text="The key's public prefix (the part before the dot)."
    )
    name = serializers.CharField(
        max_length=50, help_text='What the key is for ("nightly upload").'
    )  # required: the model's default is None
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=sorted(SCOPES)), allow_empty=False)
    expires = serializers.DateTimeField(source="expiry_date", required=False, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", read_only=True, allow_null=True)
    acts_as = serializers.CharField(
        source="user.username", read_only=True, help_text="The machine account the audit trail names."
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "scopes",
            "expires",
            "created",
            "created_by",
            "revoked",
            "revoked_at",
            "revoked_by",
            "acts_as",
        ]
        read_only_fields = ["created", "revoked", "revoked_at"]


class ApiKeyWithSecretSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="Send as `Authorization: Bearer <key>`. Shown only now: store it."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your organisation's machine API keys; another organisation's are a 404."""

    serializer_class = ApiKeySerializer
    lookup_field = "prefix"
    lookup_url_kwarg = "pk"
    lookup_value_regex = "[A-Za-z0-9]{1,16}"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organisation
            return ApiKey.objects.none()
        return api_key_services.api_key_list(membership=_membership(self.request))

    @extend_schema(request=ApiKeySerializer, responses={201: ApiKeyWithSecretSerializer})
    def create(self, request: Request) -> Response:
        """Providers (catalogue:read, catalogue:write, files:upload) and buyers (catalogue:read, trades:read,
        trades:write). The key acts as a machine account of your organisation with your role, limited to its scopes.
        The secret is in this response only. Audited (`api_key.created`)."""
        membership = _membership(request)
        if not scopes_for_role(membership.role):  # before validation: an officer is told 403, not how to fill the form
            raise PermissionDeniedError(
                "Only providers and buyers create API keys; officers' powers are not given to machines."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = api_key_services.api_key_create(
            membership=membership,
            name=serializer.validated_data["name"],
            scopes=serializer.validated_data["scopes"],
            expires=serializer.validated_data.get("expiry_date"),
        )
        body = ApiKeyWithSecretSerializer(key).data
        body["key"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Revoke the key: its next request is a 401 `token_invalid`. Any member of the organisation.
        Audited (`api_key.revoked`)."""
        api_key_services.api_key_revoke(membership=_membership(request), prefix=str(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
