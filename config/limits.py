"""Request limits enforced before any view, parser or form reads the request (docs/limits.md).

- A NUL character in the path or in any query parameter (name or value): 400 `invalid_characters`
  (PostgreSQL refuses NUL in text, so a filter with one would otherwise fail as a 500).
- A JSON body nested too deeply, with too long a list or a NUL in a string: 400 `request_too_deep`,
  `list_too_long`, `invalid_characters` (config/parsers.py), whatever the endpoint does with its body.
- A body over its limit: 413 `request_too_large`, judged on Content-Length before a byte is read,
  and enforced again while reading (a body without Content-Length, or a server that passes more):
  the stream raises RequestTooLargeError one byte past the limit.
  Limits: multipart/form-data to the dataset file upload endpoint, ELEMENTA_MAX_DATASET_FILE_BYTES
  plus ELEMENTA_MAX_MULTIPART_OVERHEAD_BYTES; other multipart bodies (evidence documents),
  ELEMENTA_MAX_UPLOAD_BYTES plus the same overhead; every other body (JSON, forms), ELEMENTA_MAX_BODY_BYTES.
"""

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import ParseError

from config.api import error_body
from config.errors import ApplicationError, InvalidCharactersError, RequestTooLargeError
from config.parsers import json_loads_bounded, max_body_bytes

DATASET_FILES_PATH = re.compile(r"^/api/v1/datasets/[^/]+/files/$")
DEFAULT_MULTIPART_OVERHEAD = 1024 * 1024


def body_limit(request: HttpRequest) -> int:
    """The most bytes this request's body may have."""
    if (request.content_type or "").lower() != "multipart/form-data":
        return max_body_bytes()
    overhead = int(getattr(settings, "ELEMENTA_MAX_MULTIPART_OVERHEAD_BYTES", DEFAULT_MULTIPART_OVERHEAD))
    if DATASET_FILES_PATH.match(request.path_info):
        return int(settings.ELEMENTA_MAX_DATASET_FILE_BYTES) + overhead
    return int(settings.ELEMENTA_MAX_UPLOAD_BYTES) + overhead


class BoundedStream:
    """A request stream that refuses to yield more than `limit` bytes in total."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream, self._limit, self._read = stream, limit, 0

    def _count(self, chunk: bytes) -> bytes:
        self._read += len(chunk)
        if self._read > self._limit:
            raise RequestTooLargeError(f"The body is larger than {self._limit:,} bytes.")
        return chunk

    def read(self, size: int | None = None) -> bytes:
        allowed = self._limit - self._read + 1  # one byte past the limit is enough to know
        size = allowed if size is None or size < 0 else min(size, allowed)
        return self._count(self._stream.read(size))

    def readline(self, size: int | None = None) -> bytes:
        allowed = self._limit - self._read + 1
        size = allowed if size is None or size < 0 else min(size, allowed)
        return self._count(self._stream.readline(size))

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)


def _is_json(request: HttpRequest) -> bool:
    content_type = (request.content_type or "").lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _nul_field(request: HttpRequest) -> str | None:
    """Where a NUL character is: `path`, a query parameter's name, `query` (in a name), or None."""
    if "\x00" in request.path_info:
        return "path"
    for key, values in request.GET.lists():
        if "\x00" in key:
            return "query"
        if any("\x00" in v for v in values):
            return key[:100]
    return None


class RequestLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = _nul_field(request)
        if where is not None:
            return _error(InvalidCharactersError(fields={where: ["contains a NUL character"]}))
        limit = body_limit(request)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return _error(RequestTooLargeError(f"The body is larger than {limit:,} bytes."))
        stream = getattr(request, "_stream", None)
        if stream is not None:
            request._stream = BoundedStream(stream, limit)  # type: ignore[assignment]  # a file-like wrapper, not a BinaryIO
        if declared and _is_json(request):
            # Checked here, not only by the API's parser: a hostile body is refused on every endpoint,
            # including those whose view never reads its body. Malformed JSON is left to the parser.
            try:
                json_loads_bounded(request.body, request.encoding or "utf-8")
            except ApplicationError as exc:
                return _error(exc)
            except RequestDataTooBig:
                return _error(RequestTooLargeError())
            except (ParseError, LookupError):
                pass
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A read past the limit outside a DRF view (a form, the admin) is a 413 too."""
        if isinstance(exception, RequestTooLargeError):
            return _error(exception)
        return None
