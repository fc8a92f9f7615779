"""OpenAPI description of the authentication (drf-spectacular extension), imported by config.urls."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


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
