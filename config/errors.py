"""ApplicationError: the base of every error a client may branch on (stable `code`, HTTP status)."""

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied


class ApplicationError(Exception):
    """An expected failure of a service. Rendered as {"code", "message", "fields"} by config.api."""

    code = "application_error"
    status_code = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, fields: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.fields = fields or {}
        super().__init__(self.message)


class InvalidInputError(ApplicationError):
    code = "invalid"
    status_code = 400
    default_message = "The request has invalid fields."


class PermissionDeniedError(ApplicationError):
    code = "permission_denied"
    status_code = 403
    default_message = "You do not have permission to do this."


class NotFoundError(ApplicationError):
    code = "not_found"
    status_code = 404
    default_message = "Not found."


class ConflictError(ApplicationError):
    code = "conflict"
    status_code = 409
    default_message = "The object is not in a state that allows this."


# --- Logging in ----------------------------------------------------------------------------------


class InvalidCredentialsError(ApplicationError):
    code = "invalid_credentials"
    status_code = 400
    default_message = "Unable to log in with these credentials."


class LoginLockedError(ApplicationError):
    code = "login_locked"
    status_code = 429
    default_message = "Too many failed logins for this account; try again later."

    def __init__(self, message: str | None = None, *, wait: int | None = None) -> None:
        super().__init__(message)
        self.wait = wait  # seconds, rendered as Retry-After


# --- Hostile or oversized input (config/limits.py, config/parsers.py) ----------------------------


class RequestTooLargeError(ApplicationError):
    code = "request_too_large"
    status_code = 413
    default_message = "The request body is larger than this endpoint accepts."


class RequestTooDeepError(ApplicationError):
    code = "request_too_deep"
    status_code = 400
    default_message = "The JSON body is nested too deeply."


class ListTooLongError(ApplicationError):
    code = "list_too_long"
    status_code = 400
    default_message = "A list in the JSON body has too many items."


class InvalidCharactersError(ApplicationError):
    code = "invalid_characters"
    status_code = 400
    default_message = "The request contains a NUL character, which no field accepts."

# --- Sessions and API keys -------------------------------------------------------------------------
# The 401 and 403 classes here are also DRF's own exceptions, so DRF treats them as authentication
# failures (a `WWW-Authenticate: Bearer` header, the request left anonymous); config.api renders
# them in the error shape with their own code.


class TokenInvalidError(ApplicationError, AuthenticationFailed):
    code = "token_invalid"
    status_code = 401
    default_message = "The token is unknown, revoked (logged out, password changed) or malformed."

    def __init__(self, message: str | None = None) -> None:
        ApplicationError.__init__(self, message)
        AuthenticationFailed.__init__(self, self.message)


class TokenExpiredError(TokenInvalidError):
    code = "token_expired"
    default_message = "The token has expired; log in again."


class ApiKeyScopeError(ApplicationError, DRFPermissionDenied):
    code = "api_key_scope"
    status_code = 403
    default_message = "This API key's scopes do not allow this request."

    def __init__(self, message: str | None = None) -> None:
        ApplicationError.__init__(self, message)
        DRFPermissionDenied.__init__(self, self.message)


class PasswordIncorrectError(InvalidInputError):
    code = "password_incorrect"
    default_message = "The current password is wrong."


class PasswordInvalidError(InvalidInputError):
    code = "password_invalid"
    default_message = "The new password is not acceptable."


class ApiKeyScopeInvalidError(InvalidInputError):
    code = "api_key_scope_invalid"
    default_message = "Unknown scope, or a scope your role cannot hand to a key."


# --- Strict input (config/serializers.py) ----------------------------------------------------------


class UnknownFieldError(InvalidInputError):
    code = "unknown_field"
    default_message = "The request has fields this endpoint does not accept; nothing was done."
