"""OpenAPI description of the authentication (drf-spectacular extension and schema class), imported by
config.urls and named in settings (DEFAULT_SCHEMA_CLASS)."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as _SpectacularAutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.permissions import SAFE_METHODS

from config.permissions import IsAuthenticatedOrPublicCatalogue


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "config.authentication.BearerTokenAuthentication"
    name = "tokenAuth"  # the name the schema used before sessions and API keys: clients' generated code keeps working

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        scheme["description"] = (
            "A session token from POST /api/v1/auth/token/ (expires; see `expires`) or an organisation's "
            "API key from POST /api/v1/api-keys/ (limited to its scopes)."
        )
        return scheme


class AutoSchema(_SpectacularAutoSchema):
    """drf-spectacular's, plus: a read that IsAuthenticatedOrPublicCatalogue lets anonymous callers make
    (while ELEMENTA_PUBLIC_CATALOGUE is on) lists "no authentication" among its security requirements,
    as spectacular does by itself for AllowAny and IsAuthenticatedOrReadOnly."""

    def get_auth(self) -> list[dict[str, Any]]:
        auths = super().get_auth()
        public = settings.ELEMENTA_PUBLIC_CATALOGUE and self.method in SAFE_METHODS
        if public and {} not in auths and any(
            isinstance(p, IsAuthenticatedOrPublicCatalogue) for p in self.view.get_permissions()
        ):
            auths.append({})
        return auths
