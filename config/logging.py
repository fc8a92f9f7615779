"""Structured logs: every record carries the request id (API) and the trade id (API and worker).

`RequestIdMiddleware` takes the caller's `X-Request-ID` (if sane) or makes one, returns it in the
response, and puts it in a context variable; `log_context(trade_id=...)` does the same for the
trade a task works on. `ContextFilter` copies both onto each log record, so the JSON formatter
(production default) and the plain one can print them. Nothing logs request bodies, tokens or
passwords; identifiers only.
"""

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

request_id: ContextVar[str] = ContextVar("request_id", default="-")
trade_id: ContextVar[str] = ContextVar("trade_id", default="-")
_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.trade_id = trade_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SANE.match(incoming) else uuid.uuid4().hex
        # Set fresh for every request and deliberately not reset: Django logs a 4xx/5xx response
        # (django.request) after the middleware chain has returned, and that line must carry the ids.
        request_id.set(rid)
        trade_id.set("-")
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response


@contextmanager
def log_context(*, trade: object) -> Iterator[None]:
    token = trade_id.set(str(trade))
    try:
        yield
    finally:
        trade_id.reset(token)
