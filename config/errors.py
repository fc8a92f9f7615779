"""ApplicationError: the base of every error a client may branch on (stable `code`, HTTP status)."""

from typing import Any


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
