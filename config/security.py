"""Response headers and error shapes for every page (docs/limits.md, "Responses").

- Under /api/: an error page Django rendered as HTML (its technical 404 with DEBUG on, a CSRF or
  400 page) is replaced by the API's JSON error body with the same status, DEBUG on or off.
- /api/v1/ and /healthz: `Cache-Control: no-store` unless the view set its own, and
  `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` (JSON is never a document).
- Swagger UI (/api/docs/) and the admin: a policy that allows their own scripts, styles and images
  from this origin only (inline styles too: both use them), and no framing.
X-Content-Type-Options: nosniff comes from Django's SecurityMiddleware.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from config.api import error_body

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_CODES = {
    400: "invalid",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    500: "server_error",
}
_MESSAGES = {404: "No such endpoint.", 500: "Internal error; it has been logged."}


def _json_error(response: HttpResponse) -> HttpResponse:
    status = response.status_code
    code = _CODES.get(status, "server_error" if status >= 500 else "invalid")
    replacement = JsonResponse(
        error_body(code, _MESSAGES.get(status, response.reason_phrase or "Error.")), status=status
    )
    for header in ("Allow", "Retry-After"):
        if header in response:
            replacement[header] = response[header]
    return replacement


class ResponseHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path_info
        if path.startswith("/api/") and response.status_code >= 400 and "text/html" in response.get("Content-Type", ""):
            response = _json_error(response)
        if path.startswith("/api/v1/") or path == "/healthz":
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Content-Security-Policy", API_POLICY)
        elif path.startswith(("/api/docs/", "/admin/")):
            response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        elif path.startswith("/api/"):  # the schema document
            response.headers.setdefault("Content-Security-Policy", API_POLICY)
        return response
