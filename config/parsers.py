"""Request body parsers that refuse hostile JSON before and after decoding it (docs/limits.md).

- more than ELEMENTA_MAX_BODY_BYTES: 413 `request_too_large` (read at most one byte past the limit);
- nested deeper than ELEMENTA_MAX_JSON_DEPTH: 400 `request_too_deep`, found by counting brackets
  before the decoder (which recurses) ever sees the text, so RecursionError cannot happen;
- a list with more than ELEMENTA_MAX_JSON_LIST_ITEMS items: 400 `list_too_long`;
- a NUL character in any string or key: 400 `invalid_characters` (PostgreSQL cannot store it);
- NaN, Infinity and numbers too large for a float: 400 `parse_error`.
"""

import json
import math
import re
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.errors import InvalidCharactersError, ListTooLongError, RequestTooDeepError, RequestTooLargeError

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_LIST_ITEMS = 1000

# Escapes first (so an escaped quote is gone), then string literals: their brackets are text, not
# structure. Both patterns are linear in the input: no backtracking on hostile bodies.
_ESCAPE = re.compile(rb"\\.", re.S)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def max_body_bytes() -> int:
    return int(getattr(settings, "ELEMENTA_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def max_depth() -> int:
    return int(getattr(settings, "ELEMENTA_MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH))


def max_list_items() -> int:
    return int(getattr(settings, "ELEMENTA_MAX_JSON_LIST_ITEMS", DEFAULT_MAX_LIST_ITEMS))


def json_text_depth(raw: bytes) -> int:
    """The deepest bracket nesting of JSON text, without parsing it (and without recursion)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", _ESCAPE.sub(b"", raw)))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _where(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _walk(value: Any) -> Iterator[tuple[tuple[Any, ...], int, Any]]:
    """Every (path, depth, node) of a decoded JSON value, iteratively."""
    stack: list[tuple[tuple[Any, ...], int, Any]] = [((), 1, value)]
    while stack:
        path, depth, node = stack.pop()
        yield path, depth, node
        if isinstance(node, dict):
            stack.extend(((*path, k), depth + 1, v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), depth + 1, v) for i, v in enumerate(node))


def check_structure(value: Any, *, depth_limit: int | None = None, list_limit: int | None = None) -> None:
    """Refuse a decoded value (JSON, YAML) that is too deep, has too long a list or holds a NUL."""
    depth_limit = depth_limit or max_depth()
    list_limit = list_limit or max_list_items()
    for path, depth, node in _walk(value):
        if depth > depth_limit:
            raise RequestTooDeepError(
                f"Nested more than {depth_limit} levels deep.",
                fields={_where(path[:depth_limit]): ["nested too deeply"]},
            )
        if isinstance(node, list) and len(node) > list_limit:
            raise ListTooLongError(
                f"A list has more than {list_limit} items.", fields={_where(path): [f"at most {list_limit} items"]}
            )
        if isinstance(node, dict):
            for key in node:
                if "\x00" in key:
                    raise InvalidCharactersError(fields={_where(path): ["a key contains a NUL character"]})
        elif isinstance(node, str) and "\x00" in node:
            raise InvalidCharactersError(fields={_where(path): ["contains a NUL character"]})


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {text[:40]}")
    return number


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def read_bounded(stream: Any, limit: int) -> bytes:
    """At most `limit` bytes of the stream; RequestTooLargeError if there are more."""
    if stream is None:
        return b""
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestTooLargeError(f"The body is larger than {limit:,} bytes.")
    return raw


def json_loads_bounded(raw: bytes, encoding: str = "utf-8") -> Any:
    """Decode JSON text under the depth, list-length and NUL rules above."""
    limit = max_depth()
    if json_text_depth(raw) > limit:
        raise RequestTooDeepError(f"Nested more than {limit} levels deep.")
    try:
        value = json.loads(raw.decode(encoding), parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:  # not reachable after the depth check; kept so it can never become a 500
        raise RequestTooDeepError(f"Nested more than {limit} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:  # includes json.JSONDecodeError and ints over 4,300 digits
        raise ParseError(f"JSON parse error - {str(exc)[:200]}") from None
    check_structure(value, depth_limit=limit)
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, with the limits of this module."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = read_bounded(stream, max_body_bytes())
        if not raw.strip():
            raise ParseError("JSON parse error - the body is empty")
        return json_loads_bounded(raw, encoding)
