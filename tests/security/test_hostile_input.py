"""Hostile input against every /api/v1/ operation in the OpenAPI schema: never a 5xx, always the
documented 4xx, and nothing changes.

The operations come from the same enumeration as the authorization matrix (drf-spectacular's schema),
so a new endpoint is fuzzed without anyone remembering to add it. Each is called as a role that may
call it (so a refusal is the input's fault, not authorization's) with:

- a body one byte over ELEMENTA_MAX_BODY_BYTES → 413 `request_too_large`;
- JSON nested 40 and 100,000 levels deep → 400 `request_too_deep`;
- a list of 1,001 items → 400 `list_too_long`;
- a NUL character in the query string and in a JSON string → 400 `invalid_characters`;
- on download endpoints, a `Range` with a 5,000-digit position → 416 (and never a 5xx for the others);
- on operations whose request schema has a decimal field (prices, deposits), amounts past
  NUMERIC(16,2), NaN and 5,000-digit numbers → 400 naming the field.
"""

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from marketplace.models import Membership
from tests.security.test_authorization_matrix import (  # the module-scoped `world` fixture is shared with the matrix
    EXPECTED,
    OK,
    PREFIX,
    World,
    fill,
    schema_operations,
    snapshot,
    world,  # noqa: F401
)

# Who calls each operation: the first role the matrix lets through.
ROLE_PREFERENCE = ("buyer", "provider", "officer", "buyer_other", "provider_other", "anonymous")
HUGE = "9" * 5000  # past Python's 4,300-digit int() limit


def caller(method: str, path: str) -> str:
    expected = EXPECTED[(method, path)]
    # An operation no matrix role may call (an organisation admin's) still meets the input limits,
    # which run before authentication and permissions: call it as the buyer.
    return next((role for role in ROLE_PREFERENCE if expected[role] == OK), "buyer")


def decimal_fields() -> dict[tuple[str, str], tuple[str, ...]]:
    """(method, path) → names of the decimal properties of its JSON request body."""
    return {op: decimals for op, (decimals, _) in json_bodies().items() if decimals}


@cache
def json_bodies() -> dict[tuple[str, str], tuple[tuple[str, ...], frozenset[str]]]:
    """(method, path) → (names of the decimal properties, names of all properties) of its JSON request body."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        return node

    found: dict[tuple[str, str], tuple[tuple[str, ...], frozenset[str]]] = {}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            body = (
                op.get("requestBody", {}).get("content", {}).get("application/json") if isinstance(op, dict) else None
            )
            if body is None or not path.startswith(PREFIX):
                continue
            properties = resolve(body["schema"]).get("properties", {})
            names = tuple(k for k, v in properties.items() if resolve(v).get("format") == "decimal")
            found[(method, path.removeprefix(PREFIX))] = (names, frozenset(properties))
    return found


def _send(client: APIClient, method: str, url: str, body: bytes | None = None, **extra: Any) -> Any:
    if body is None:
        return client.generic(method.upper(), url, **extra)
    # bytes on purpose (not always UTF-8): Django's generic() takes them, DRF's stubs say str
    return client.generic(method.upper(), url, body, content_type="application/json", **extra)  # type: ignore[arg-type]


def _body_of(response: Any) -> bytes:
    return (b"".join(response.streaming_content) if response.streaming else response.content)[:300]


def _code(response: Any) -> str | None:
    try:
        return json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return None


def hostile_cases() -> list[tuple[str, bytes, str, int, str]]:
    """(name, body, query, expected status, expected code)."""
    limit = settings.ELEMENTA_MAX_BODY_BYTES
    oversize = b'{"reason": "' + b"x" * limit + b'"}'
    deep = b'{"reason": "x", "conditions": ' + b"[" * 40 + b"]" * 40 + b"}"
    abyss = b"[" * 100_000 + b"]" * 100_000
    long_list = json.dumps(
        {"reason": "x", "mechanisms": [{"code": "eu_scc"}] * 1001, "events": ["trade.status_changed"] * 1001}
    ).encode()
    nul_body = json.dumps({"reason": "a\x00b", "note": "a\x00b", "username": "a\x00b", "password": "x", "url": "https://a\x00b"}).encode()
    return [
        ("oversize body", oversize, "", 413, "request_too_large"),
        ("nested 40 deep", deep, "", 400, "request_too_deep"),
        ("nested 100,000 deep", abyss, "", 400, "request_too_deep"),
        ("a list of 1,001", long_list, "", 400, "list_too_long"),
        ("NUL in a JSON string", nul_body, "", 400, "invalid_characters"),
        ("NUL in the query", b"", "?status=%00&q=x%00y&status__exact=%00", 400, "invalid_characters"),
        ("NUL in a query name", b"", "?st%00atus=1", 400, "invalid_characters"),
    ]


OPERATIONS = [pytest.param(m, p, id=f"{m.upper()} {p}") for m, p in sorted(EXPECTED)]


def test_the_fuzz_covers_every_operation_in_the_schema() -> None:
    assert set(schema_operations()) == set(EXPECTED) and len(EXPECTED) >= 60
    assert decimal_fields(), "no money endpoint found: the overflow cases would test nothing"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_hostile_bodies_and_queries_are_refused_and_change_nothing(
    method: str, path: str, world: World, db: None, client_for: Callable[[Membership | None], APIClient],  # noqa: F811
) -> None:
    client = client_for(world.members[caller(method, path)])
    url = fill(path, world.ids)
    before = snapshot(world)
    failures = []

    for name, body, query, status, code in hostile_cases():
        response = _send(client, method, url + query, body or None)
        if response.status_code >= 500 or (response.status_code, _code(response)) != (status, code):
            failures.append(f"{name}: {response.status_code} {_body_of(response)!r}")

    assert not failures, f"{method.upper()} {url}: " + "; ".join(failures)
    assert snapshot(world) == before, f"{method.upper()} {url}: a refused request changed the database"


MONEY_VALUES = ("100000000000000.00", "99999999999999999999.99", "1e20", "-1e20", HUGE, f"0.{HUGE}", "NaN", "Infinity")


@pytest.mark.parametrize(
    ("method", "path"), [pytest.param(m, p, id=f"{m.upper()} {p}") for m, p in sorted(decimal_fields())]
)
def test_amounts_past_the_ledger_are_400s_naming_the_field(
    method: str,
    path: str,
    world: World,  # noqa: F811
    db: None,
    client_for: Callable[[Membership | None], APIClient],
) -> None:
    client = client_for(world.members[caller(method, path)])
    url = fill(path, world.ids)
    before = snapshot(world)
    failures = []

    # Only fields the body accepts: an unknown one would be refused (unknown_field) before the amount is read.
    context = {k: v for k, v in {"currency": "EUR", "title": "t"}.items() if k in json_bodies()[(method, path)][1]}
    for field in decimal_fields()[(method, path)]:
        for value in MONEY_VALUES:
            response = _send(client, method, url, json.dumps({field: value, **context}).encode())
            body = json.loads(response.content) if response.status_code < 500 else {}
            if response.status_code != 400 or field not in body.get("fields", {}):
                failures.append(f"{field}={value[:30]}: {response.status_code} {_body_of(response)!r}")

    assert not failures, f"{method.upper()} {url}: " + "; ".join(failures)
    assert snapshot(world) == before


DOWNLOADS = [pytest.param(m, p, id=f"{m.upper()} {p}") for m, p in sorted(EXPECTED) if p.endswith("/download/")]


@pytest.mark.parametrize(("method", "path"), DOWNLOADS)
def test_huge_ranges_on_downloads_are_416_never_500(
    method: str, path: str, world: World, db: None, client_for: Callable[[Membership | None], APIClient],  # noqa: F811
) -> None:
    client = client_for(world.members[caller(method, path)])
    url = fill(path, world.ids)
    before = snapshot(world)

    past_the_end = _send(client, method, url, HTTP_RANGE=f"bytes={HUGE}-")
    past_the_end_closed = _send(client, method, url, HTTP_RANGE=f"bytes={HUGE}-{HUGE}9")
    assert (past_the_end.status_code, _code(past_the_end)) == (416, "range_not_satisfiable"), _body_of(past_the_end)
    assert past_the_end_closed.status_code == 416, _body_of(past_the_end_closed)
    assert snapshot(world) == before  # a refused download is not recorded

    to_the_end = _send(client, method, url, HTTP_RANGE=f"bytes=0-{HUGE}")
    last_bytes = _send(client, method, url, HTTP_RANGE=f"bytes=-{HUGE}")
    for response in (to_the_end, last_bytes):
        content = _body_of(response)
        assert response.status_code == 206 and content == b"id,city\n1,Berlin\n", (response.status_code, content)
