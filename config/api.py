"""Project-wide DRF glue: pagination and the one error renderer."""

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError as DatabaseDataError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ApplicationError, InvalidInputError, RequestTooDeepError, RequestTooLargeError

logger = logging.getLogger(__name__)


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "parse_error",
    exceptions.ValidationError: "invalid",
}


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees → plain strings, keeping the field structure."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "fields": fields or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every error as {"code", "message", "fields"}; unknown errors are logged, not leaked."""
    if isinstance(exc, RequestDataTooBig):  # Django's cap on form fields inside a multipart body
        exc = RequestTooLargeError()
    elif isinstance(exc, TooManyFieldsSent):
        exc = InvalidInputError("The form has too many fields.")
    elif isinstance(exc, RecursionError):  # belt and braces: the parsers refuse deep bodies before this
        exc = RequestTooDeepError()
    elif isinstance(exc, DatabaseDataError):
        # The last line of defence for input the validators let through (a NUL, a number the column
        # cannot hold): nothing was stored, and it is the request that is wrong.
        logger.warning("database refused a value in %s: %s", context.get("view").__class__.__name__, exc)
        exc = InvalidInputError("A value is out of range or contains characters that cannot be stored.")
    if isinstance(exc, ApplicationError):
        body = error_body(exc.code, exc.message, _flatten(exc.fields))
        extra = getattr(exc, "extra", None)
        if extra:  # what the client needs to act on this error (e.g. `current` terms of price_changed)
            body.update({k: v for k, v in extra.items() if k not in body})
        rendered = Response(body, status=exc.status_code)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:  # a 401 from config.authentication: say which scheme to use
            rendered["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:  # a 429 that knows how long (the login back-off)
            rendered["Retry-After"] = str(wait)
        return rendered
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("invalid", "The request has invalid fields.", fields), status=400)
    if isinstance(exc, DatabaseOperationalError):
        # A deadlock victim, a lock timeout or a dropped connection: nothing was committed, and
        # the same request is safe to retry (with its Idempotency-Key).
        logger.warning("database unavailable in %s: %s", context.get("view").__class__.__name__, exc)
        busy = Response(
            error_body("temporarily_unavailable", "The database is busy or unreachable; retry shortly."), status=503
        )
        busy["Retry-After"] = "1"
        return busy
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        # Also a Model.DoesNotExist that escaped a service or view (a row deleted mid-request): the
        # client is told 404 `not_found`, like any missing object, never 500 with the model's name.
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            error_body("server_error", "Internal error; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body(code, "The request has invalid fields.", _flatten(detail))
    else:
        response.data = error_body(code, str(getattr(exc, "detail", str(exc))))
    return response
