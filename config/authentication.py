"""`Authorization: Bearer <token>` on every /api/v1/ call: a login session or a machine API key.

Sessions are django-rest-knox tokens (64 hex characters; the table keeps a SHA-512 digest and the
first 15 characters as a lookup key); API keys are `<prefix>.<secret>` from djangorestframework-api-key
(the table keeps the prefix and a SHA-512 digest). Either way one indexed query (with the user's
membership and organisation, which nearly every endpoint asks for next) and one SHA-512: no key
stretching, since both secrets are random and long. A session token seen in the last
ELEMENTA_AUTH_CACHE_SECONDS needs no query at all (config/auth_cache.py says how it is invalidated).

Unlike knox's own class, this one does not look at (and delete) the user's other expired tokens on
every request (an extra query each time), and it tells an expired token (401 `token_expired`) from an
unknown or revoked one (401 `token_invalid`). Expired tokens are purged at the user's next login.

Its own module: DRF imports authentication classes while rest_framework.views is still loading,
so this must not import the views (config.api does).
"""

import re
from hmac import compare_digest
from typing import Any

from django.apps import apps
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from rest_framework.authentication import get_authorization_header
from rest_framework.request import Request

from config.auth_cache import auth_cache_get, auth_cache_put
from config.errors import ApiKeyScopeError, TokenExpiredError, TokenInvalidError
from config.scopes import scope_allows

SESSION_TOKEN = re.compile(r"[0-9a-f]{64}")
API_KEY = re.compile(r"(?P<prefix>[A-Za-z0-9]{8})\.[A-Za-z0-9]{32}")


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None  # no header, or another scheme (session login in the browsable API)
        if len(auth) != 2:
            raise TokenInvalidError("Send `Authorization: Bearer <token>`, with one token and no spaces in it.")
        try:
            token = auth[1].decode("ascii")
        except UnicodeDecodeError:
            raise TokenInvalidError() from None
        if SESSION_TOKEN.fullmatch(token):
            return self.authenticate_credentials(token)
        match = API_KEY.fullmatch(token)
        if match:
            return self._authenticate_api_key(request, token, match["prefix"])
        raise TokenInvalidError()  # malformed: never reaches the database (NUL, oversize, …)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    def authenticate_credentials(self, token: str) -> tuple[Any, Any]:
        digest = hash_token(token)
        cached = None if knox_settings.AUTO_REFRESH else auth_cache_get(digest)
        if cached is not None and compare_digest(digest, cached.digest):
            return self._accept(cached)
        rows = apps.get_model("knox", "AuthToken").objects.select_related("user__membership__organisation")
        for auth_token in rows.filter(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if not compare_digest(digest, auth_token.digest):
                continue
            accepted = self._accept(auth_token)
            if not knox_settings.AUTO_REFRESH:
                auth_cache_put(digest, auth_token)
            return accepted
        raise TokenInvalidError()

    def _accept(self, auth_token: Any) -> tuple[Any, Any]:
        if auth_token.expiry is not None and auth_token.expiry <= timezone.now():
            raise TokenExpiredError()
        if not auth_token.user.is_active:
            raise TokenInvalidError("The account is inactive.")
        if knox_settings.AUTO_REFRESH and auth_token.expiry:
            self.renew_token(auth_token)
        return (auth_token.user, auth_token)

    def _authenticate_api_key(self, request: Request, key: str, prefix: str) -> tuple[Any, Any]:
        model = apps.get_model("marketplace", "ApiKey")
        api_key = model.objects.select_related("user__membership__organisation").filter(prefix=prefix).first()
        if api_key is None or not model.objects.key_generator.verify(key, api_key.hashed_key):
            raise TokenInvalidError()
        if api_key.revoked or not api_key.user.is_active:
            raise TokenInvalidError("This API key has been revoked.")
        if api_key.has_expired:
            raise TokenExpiredError("This API key has expired.")
        match = request._request.resolver_match
        if not scope_allows(api_key.scopes, method=request.method or "GET", url_name=match.url_name if match else None):
            raise ApiKeyScopeError(
                f"This API key's scopes ({', '.join(api_key.scopes) or 'none'}) do not allow this request."
            )
        return (api_key.user, api_key)
