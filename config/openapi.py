"""The OpenAPI document's own machinery (drf-spectacular): the Bearer scheme, the shared `Error` schema
and, per operation, every error it can answer, derived from the code rather than written by hand.

How an operation's errors are found (docs/using-the-api.md, "Errors in the schema"):

- Its handler (and the view's own `get_object`, `get_queryset`, `initial`, and any decorator such as
  `@idempotent`) is read as source: every error class it names, and every project function, method or
  serializer it calls, read the same way, recursively. A method called on an object of unknown type
  (`trade.transition(...)`) is followed to every project method of that name, unless the name is a
  common one (`get`, `save`, ...). The result is an over-approximation: a code listed may be out of
  reach for a given request, but a code raised is listed. `EXTRA_ERRORS` adds what reading cannot see.
- Every operation also gets what the framework answers on its own: 400 `invalid` (inputs), the body
  parser's codes (400/413/415), 401/403 when it needs a session, 404 with a path parameter, 429 with
  `Retry-After` on writes (the write throttle), 503 `temporarily_unavailable` with `Retry-After`.

Each error response is the `Error` component narrowed to that operation's codes for that status
(`allOf` + a `code` enum), so a client can switch on `code` and a validator can catch a stray one.
"""

import ast
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent, build_bearer_security_scheme_object
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS

from config.errors import ApplicationError

PROJECT_PACKAGES = ("marketplace", "compliance", "config")
ERROR_MODULES = ("config.errors", "marketplace.errors", "compliance.errors")


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


# --- the error catalogue ---------------------------------------------------------------------------

# Codes DRF itself renders (config.api._DRF_CODES), by status.
PARSER_CODES = {400: {"parse_error", "request_too_deep", "list_too_long", "invalid_characters"},
                413: {"request_too_large"}, 415: {"unsupported_media_type"}}
AUTH_CODES = {401: {"not_authenticated", "authentication_failed", "token_invalid", "token_expired"},
              403: {"permission_denied", "api_key_scope"}}
# What source reading cannot see, by operationId: status → codes.
EXTRA_ERRORS: dict[str, dict[int, set[str]]] = {
    "auth_token_create": {429: {"login_locked"}},
}

STATUS_TEXT = {400: "Invalid request", 401: "Not signed in, or the session or key is no longer valid",
               403: "Not allowed", 404: "Not found (or not visible to the caller)", 405: "Method not allowed",
               409: "Conflict with the object's state", 413: "Body too large", 415: "Body is not JSON",
               406: "No representation for the Accept header or ?format=",
               416: "Range not satisfiable", 422: "Idempotency-Key reused with another request",
               429: "Too many requests: wait `Retry-After` seconds", 503: "Temporarily unavailable: retry after "
               "`Retry-After` seconds"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0},
                               "description": "Seconds to wait before retrying."}}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error the API returns (docs/errors.md). Branch on `code`; `message` is for people.",
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable code (docs/errors.md)."},
        "message": {"type": "string", "description": "For people; may change."},
        "fields": {
            "type": "object",
            "additionalProperties": {},
            "description": "The offending inputs, each with its messages (nested for nested inputs); may be empty.",
        },
    },
    "required": ["code", "message", "fields"],
}


def error_classes() -> list[type[ApplicationError]]:
    found: list[type[ApplicationError]] = []
    for name in ERROR_MODULES:
        module = sys.modules.get(name) or __import__(name, fromlist=["*"])
        found += [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, ApplicationError)]
    return found


# --- reading the source ----------------------------------------------------------------------------

# Method names too common to follow when the object's type is unknown.
_COMMON = {"get", "save", "delete", "create", "update", "filter", "exclude", "all", "first", "last", "count",
           "exists", "values", "items", "keys", "append", "extend", "add", "remove", "pop", "copy", "format", "join",
           "split", "strip", "lower", "upper", "is_valid", "clean", "full_clean", "refresh_from_db", "as_dict",
           "data", "list", "retrieve", "order_by", "select_related", "prefetch_related", "annotate", "aggregate",
           "setdefault", "encode", "decode", "read", "write", "close", "check", "run", "apply", "send", "validate",
           "to_representation", "to_internal_value", "get_queryset", "get_object", "get_serializer", "serialize"}


def _is_project(obj: Any) -> bool:
    return str(getattr(obj, "__module__", "") or "").split(".")[0] in PROJECT_PACKAGES


@cache
def _methods_named() -> dict[str, tuple[Callable[..., Any], ...]]:
    """Every project class's own methods, by name (for calls on objects of unknown type). Views are left
    out: no service or model calls a view's method, and their action names (`accept`, `verify`) are common."""
    index: dict[str, list[Callable[..., Any]]] = {}
    for module_name, module in list(sys.modules.items()):
        is_view_module = ".apis" in module_name and not module_name.endswith(".filters")  # filters are followed
        if module_name.split(".")[0] not in PROJECT_PACKAGES or is_view_module or module is None:
            continue
        for cls in list(vars(module).values()):
            if not isinstance(cls, type) or cls.__module__ != module_name:
                continue
            for attr, value in vars(cls).items():
                func = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                if inspect.isfunction(func):
                    index.setdefault(attr, []).append(func)
    return {name: tuple(funcs) for name, funcs in index.items()}


def _resolve(node: ast.AST, namespace: dict[str, Any], owner: type | None) -> Any:
    """The object a Name or a dotted Attribute chain names, or None."""
    if isinstance(node, ast.Name):
        if node.id == "self" and owner is not None:
            return owner
        return namespace.get(node.id, getattr(__import__("builtins"), node.id, None))
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace, owner)
        if base is not None:
            return inspect.getattr_static(base, node.attr, None) if isinstance(base, type) else getattr(
                base, node.attr, None
            )
    return None


class _Reader:
    """The error classes a function can raise, following project calls (memoised; cycles end empty)."""

    def __init__(self) -> None:
        self.memo: dict[Any, frozenset[type[ApplicationError]]] = {}

    def of(self, obj: Any, owner: type | None = None) -> frozenset[type[ApplicationError]]:
        if isinstance(obj, staticmethod | classmethod):
            obj = obj.__func__
        if isinstance(obj, type):
            if issubclass(obj, ApplicationError):
                return frozenset({obj})
            if _is_project(obj) and issubclass(obj, serializers.BaseSerializer):  # its validators run
                found: set[type[ApplicationError]] = set()
                for klass in obj.__mro__:
                    if _is_project(klass):
                        for value in vars(klass).values():
                            if inspect.isfunction(value):
                                found |= self.of(value, obj)
                return frozenset(found)
            return frozenset()
        if not inspect.isfunction(obj) or not _is_project(obj):
            return frozenset()
        key = (obj, owner)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = frozenset()  # a cycle reads as nothing new
        found = set()
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None:
            found |= self.of(wrapped, owner)
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
        except (OSError, TypeError, SyntaxError):
            return frozenset(found)
        namespace = dict(obj.__globals__)
        if obj.__closure__:
            namespace.update(
                {n: c.cell_contents for n, c in zip(obj.__code__.co_freevars, obj.__closure__, strict=False)
                 if _cell_filled(c)}
            )
        caught = {
            id(n) for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and h.type for n in ast.walk(h.type)
        }
        for node in ast.walk(tree):
            if id(node) in caught:  # `except SomeError:` handles it; it is not raised here
                continue
            if isinstance(node, ast.Name | ast.Attribute):
                target = _resolve(node, namespace, owner)
                if target is not None and target is not owner:
                    found |= self.of(target, owner if isinstance(node, ast.Attribute) else None)
                elif target is None and isinstance(node, ast.Attribute) and node.attr not in _COMMON:
                    for method in _methods_named().get(node.attr, ()):
                        found |= self.of(method)
        self.memo[key] = frozenset(found)
        return self.memo[key]


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


_reader = _Reader()


def view_errors(view: Any, handler_name: str) -> set[type[ApplicationError]]:
    """The error classes one operation of a view can raise, read from its source."""
    cls = type(view)
    found: set[type[ApplicationError]] = set()
    handler = inspect.getattr_static(cls, handler_name, None)
    if handler is not None:
        found |= _reader.of(handler, cls)
    for hook in ("initial", "get_object", "get_queryset", "get_serializer_class"):
        own = inspect.getattr_static(cls, hook, None)
        if own is not None:
            found |= _reader.of(own, cls)
    return found


def _is_idempotent(func: Any) -> bool:
    """Whether a handler is wrapped by marketplace.idempotency.idempotent (functools.wraps copies the
    name and module, not the code: the wrapper's code is in that module's file)."""
    from marketplace import idempotency

    func = getattr(func, "__func__", func)
    while func is not None:
        code = getattr(func, "__code__", None)
        if code is not None and code.co_filename == idempotency.__file__:
            return True
        func = getattr(func, "__wrapped__", None)
    return False


# --- the schema class --------------------------------------------------------------------------------


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, plus each operation's errors, Idempotency-Key and rate-limit headers, and
    the public catalogue: a read that IsAuthenticatedOrPublicCatalogue lets anonymous callers make (while
    ELEMENTA_PUBLIC_CATALOGUE is on) lists "no authentication" among its security requirements, as
    spectacular does by itself for AllowAny and IsAuthenticatedOrReadOnly."""

    def get_auth(self) -> list[dict[str, Any]]:
        from config.permissions import IsAuthenticatedOrPublicCatalogue

        auths = super().get_auth()
        public = settings.ELEMENTA_PUBLIC_CATALOGUE and self.method in SAFE_METHODS
        if public and {} not in auths and any(
            isinstance(p, IsAuthenticatedOrPublicCatalogue) for p in self.view.get_permissions()
        ):
            auths.append({})
        return auths

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        registry.register_on_missing(ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        ))
        handler_name = getattr(self.view, "action", None) or method.lower()
        handler = getattr(self.view, handler_name, None)
        if method.upper() == "POST" and _is_idempotent(handler):  # the decorator acts on POST only
            self._add_idempotency(operation)
        codes = self._codes(operation, method, handler_name)
        responses = operation.setdefault("responses", {})
        for status in sorted(codes):
            responses[str(status)] = self._error_response(status, codes[status])
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _codes(self, operation: dict[str, Any], method: str, handler_name: str) -> dict[int, set[str]]:
        codes: dict[int, set[str]] = {}

        def add(status: int, names: Iterable[str]) -> None:
            codes.setdefault(status, set()).update(names)

        for error in view_errors(self.view, handler_name):
            if error.code.startswith("idempotency_key_") and method.upper() != "POST":
                continue  # @idempotent passes every other method straight through
            add(error.status_code, [error.code])
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        if has_body or any(p.get("in") == "query" for p in parameters):
            add(400, ["invalid"])
        add(400, ["invalid_characters"])  # a NUL in the path or a query parameter (config/limits.py)
        if has_body:
            for status, names in PARSER_CODES.items():
                add(status, names)
        if any(operation.get("security", [])):  # a token is read when sent, even where anonymous callers may come
            for status, names in AUTH_CODES.items():
                add(status, names)
        if any(p.get("in") == "path" for p in parameters) or any(
            p.get("in") == "query" and p.get("name") == "page" for p in parameters
        ):
            add(404, ["not_found"])  # no such object, or a page past the last ("Invalid page.")
        if any(p.get("in") == "query" and p.get("name") == "format" for p in parameters):
            add(404, ["not_found"])  # DRF answers an unknown ?format= with 404
            add(406, ["not_acceptable"])  # and an Accept header it cannot serve with 406
        if method.upper() in ("POST", "PUT", "PATCH"):
            add(400, ["unknown_field"])  # every write's body is strict (config/serializers.py), even an empty one
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            add(429, ["throttled"])
        add(503, ["temporarily_unavailable"])
        for status, names in EXTRA_ERRORS.get(operation.get("operationId", ""), {}).items():
            add(status, names)
        # A generic base class (application_error, conflict...) is listed only when raised as such.
        return codes

    @staticmethod
    def _error_response(status: int, codes: set[str]) -> dict[str, Any]:
        response: dict[str, Any] = {
            "description": f"{STATUS_TEXT.get(status, 'Error')}. `code` is one of: "
            + ", ".join(f"`{c}`" for c in sorted(codes)) + ".",
            "content": {"application/json": {"schema": {
                "allOf": [{"$ref": "#/components/schemas/Error"}],
                "type": "object",
                "properties": {"code": {"type": "string", "enum": sorted(codes)}},
            }}},
        }
        if status in (429, 503):
            response["headers"] = dict(RETRY_AFTER)
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                        "description": "`Bearer` where a token is expected."}}
        return response

    @staticmethod
    def _add_idempotency(operation: dict[str, Any]) -> None:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "Idempotency-Key" and p.get("in") == "header" for p in parameters):
            parameters.append({
                "in": "header", "name": "Idempotency-Key", "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "Retrying with the same key and body returns the first response instead of acting "
                               "twice (kept ≥ 24 h; docs/using-the-api.md).",
            })
        for status, response in operation.get("responses", {}).items():
            if str(status).startswith("2") and isinstance(response, dict):
                response.setdefault("headers", {})["Idempotent-Replayed"] = {
                    "schema": {"type": "string", "enum": ["true"]},
                    "description": "Present when this is the stored response to an earlier request with the same key.",
                }



# --- whole-document post-processing (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) -----------------

# One tag per area of the API, by the path's first segment under /api/v1/.
AREAS = {
    "auth": "auth", "api-keys": "auth", "me": "account", "organisations": "organisations",
    "organisation-facts": "organisations", "invitations": "organisations", "sanctions-lists": "screening",
    "screening": "screening", "datasets": "catalogue", "catalogue": "catalogue", "trades": "trades",
    "documents": "evidence",
    "mechanisms": "evidence", "reviews": "reviews", "grants": "access", "revocation-requests": "access",
    "queries": "compute", "wallet": "wallet", "webhooks": "webhooks", "compliance": "compliance",
    "rulepacks": "compliance", "audit": "audit",
}
BINARY = {"type": "string", "format": "binary"}
DOWNLOAD_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "The file's SHA-256, quoted; send it as If-Range."},
    "Accept-Ranges": {"schema": {"type": "string", "enum": ["bytes"]}},
    "Content-Length": {"schema": {"type": "integer"}},
    "Content-Disposition": {"schema": {"type": "string"}, "description": "attachment, with the file's name."},
    "X-Dataset-Version": {"schema": {"type": "integer"}, "description": "The version served."},
}
WEBHOOK_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The JSON body of every webhook POST (docs/webhooks.md). Besides these, one key names the "
                   "subject by its type (`trade`, `grant`, `mechanism`, `document`, `endpoint` for a ping) with "
                   "its id.",
    "properties": {
        "event": {"type": "string", "description": "The event kind (the `Elementa-Event` header)."},
        "id": {"type": "string", "description": "The event's id (`Elementa-Event-Id`): deduplicate on it."},
        "at": {"type": "string", "format": "date-time", "description": "When it happened: order by it."},
        "data": {"type": "object", "additionalProperties": {}, "description": "The event's details."},
    },
    "required": ["event", "id", "at", "data"],
    "additionalProperties": {"type": "string"},
}
WEBHOOK_HEADERS = [
    ("Elementa-Event", "The event kind."),
    ("Elementa-Event-Id", "The same for every delivery of one event."),
    ("Elementa-Delivery", "This delivery's id."),
    ("Elementa-Timestamp", "Unix seconds; part of the signed text."),
    ("Elementa-Signature", "`v1=<hex>`: HMAC-SHA256 with the endpoint's secret over `{timestamp}.{raw body}`."),
]


def _webhooks() -> dict[str, Any]:
    from marketplace.services.webhooks.constants import EVENT_KINDS, PING

    hooks: dict[str, Any] = {}
    for kind in (*EVENT_KINDS, PING):
        body = {"allOf": [{"$ref": "#/components/schemas/WebhookEvent"}], "type": "object",
                "properties": {"event": {"type": "string", "enum": [kind]}}}
        hooks[kind] = {"post": {
            "summary": f"`{kind}`, POSTed to each endpoint that chose it"
            + (" (the test button)" if kind == PING else ""),
            "operationId": f"webhook_{kind.replace('.', '_')}",
            "tags": ["webhooks"],
            "parameters": [{"in": "header", "name": n, "required": True, "schema": {"type": "string"}, "description": d}
                           for n, d in WEBHOOK_HEADERS],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"2XX": {"description": "Received; anything else is retried (docs/webhooks.md)."}},
        }}
    return hooks


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Tags per area, the download's real media types and headers, and the webhooks (as `x-webhooks`:
    the document is OpenAPI 3.0, which has no `webhooks`; the payload is the WebhookEvent component)."""
    for path, operations in result.get("paths", {}).items():
        area = AREAS.get(path.removeprefix("/api/v1/").split("/")[0], "other")
        for operation in operations.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["tags"] = [area]
                if operation["operationId"] == "grants_download_retrieve":
                    for status in ("200", "206"):
                        operation["responses"][status] = {
                            "description": "The file's bytes, with the file's own Content-Type (any type)"
                            + (": the requested range, with Content-Range." if status == "206" else "."),
                            "content": {"application/octet-stream": {"schema": BINARY}, "*/*": {"schema": BINARY}},
                            "headers": {**DOWNLOAD_HEADERS, **({"Content-Range": {"schema": {"type": "string"}}}
                                                               if status == "206" else {})},
                        }
                    operation["responses"]["416"].setdefault("headers", {})["Content-Range"] = {
                        "schema": {"type": "string"}, "description": "`bytes */<size>`"}
                if operation["operationId"] == "rulepacks_export_retrieve":
                    operation["responses"]["200"]["description"] = (
                        "The version as a rule-pack YAML file (docs/rulepacks.md): the text `POST /rulepacks/` "
                        "takes as `yaml`.")
                if operation["operationId"] == "queries_retrieve":  # ?format=csv / Accept: text/csv
                    operation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
                    operation["responses"]["404"]["content"]["text/csv"] = {
                        "schema": {"type": "string", "description": "CSV asked for, no released result."}}
    result.setdefault("components", {}).setdefault("schemas", {})["WebhookEvent"] = WEBHOOK_EVENT_SCHEMA
    result["x-webhooks"] = _webhooks()
    return result
