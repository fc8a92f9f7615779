"""Unknown fields are refused on every write: a field an endpoint does not accept is a 400
`unknown_field` naming it, and nothing happens (config/serializers.py).

The write operations are enumerated from the OpenAPI schema (the same enumeration and world as
tests/security/test_authorization_matrix.py), so a new endpoint is covered without an entry here.
"""

import importlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers
from rest_framework.test import APIClient

from config.serializers import StrictInputMixin
from marketplace.models import Membership
from tests.factories import MembershipFactory
from tests.security.test_authorization_matrix import (  # noqa: F401  (world: the module-scoped fixture)
    EXPECTED,
    OK,
    PREFIX,
    World,
    fill,
    snapshot,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
WRITES = ("post", "put", "patch")
# Who gets past authorization first, in this order ("admin": buyer A's organisation's administrator).
ROLE_ORDER = ("buyer", "provider", "officer", "anonymous", "buyer_other", "provider_other")
ODD = "zz_not_a_field"
# Serializers of query strings, not bodies: a GET with an extra parameter is not a write.
QUERY_SERIALIZERS = {"PreviewQuerySerializer", "DownloadQuerySerializer", "CataloguePageSerializer"}


@cache
def write_operations() -> tuple[tuple[str, str, bool], ...]:
    """(method, path, multipart only) of every write in the schema."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    found = []
    for path, item in paths.items():
        for method, operation in item.items():
            if method in WRITES and path.startswith(PREFIX):
                content = (operation.get("requestBody") or {}).get("content", {})
                found.append((method, path.removeprefix(PREFIX), list(content) == ["multipart/form-data"]))
    return tuple(sorted(found))


def role_for(method: str, path: str) -> str:
    expected = EXPECTED[(method, path)]
    return next((role for role in ROLE_ORDER if expected[role] == OK), "admin")


CASES = [pytest.param(m, p, multipart, id=f"{m.upper()} {p}") for m, p, multipart in write_operations()]


def test_the_enumeration_finds_the_writes() -> None:
    assert len(CASES) >= 50
    assert ("post", "trades/{id}/refund/", False) in write_operations()


@pytest.mark.parametrize(("method", "path", "multipart"), CASES)
def test_an_unknown_field_is_refused_and_changes_nothing(
    method: str, path: str, multipart: bool, world: World, db: None,  # noqa: F811
    client_for: Callable[[Membership | None], APIClient],
) -> None:
    role = role_for(method, path)
    if role == "admin":  # the organisation's administrator: legal facts, invitations, roles
        buyer = world.members["buyer"]
        assert buyer is not None
        member: Membership | None = MembershipFactory.create(
            organisation=buyer.organisation, role=Membership.Role.ADMIN
        )
    else:
        member = world.members[role]
    client = client_for(member)
    url = fill(path, world.ids)
    before = snapshot(world)

    send: Callable[..., Any] = getattr(client, method)
    if multipart:
        response = send(url, {ODD: "1", "file": SimpleUploadedFile("b.csv", b"id\n2\n")}, format="multipart")
    else:
        response = send(url, json.dumps({ODD: "1"}), content_type="application/json")

    body = response.json()
    assert response.status_code == 400, (method, url, role, response.status_code, body)
    assert body["code"] == "unknown_field", body
    assert body["fields"][ODD] == ["unknown field"], body
    assert "file" not in body["fields"]
    assert snapshot(world) == before, f"{method.upper()} {url} was refused but changed the database"


def _project_serializers() -> list[type[serializers.BaseSerializer]]:
    for package in ("marketplace", "compliance", "config"):
        for file in sorted((ROOT / package).rglob("*.py")):
            parts = file.relative_to(ROOT).with_suffix("").parts
            if "migrations" not in parts and parts[-1] not in {"wsgi", "asgi"}:
                importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    found: list[type[serializers.BaseSerializer]] = []
    todo: list[type[serializers.BaseSerializer]] = [serializers.Serializer]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in ("marketplace", "compliance", "config"):
            found.append(cls)
    return found


def test_every_serializer_of_the_project_is_strict() -> None:
    """A serializer that could be used for input derives from StrictSerializer / StrictModelSerializer;
    only the query-string ones are exempt."""
    found = _project_serializers()
    assert len(found) > 50
    lax = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in found
        if not issubclass(cls, StrictInputMixin) and cls.__name__ not in QUERY_SERIALIZERS
    )
    assert lax == [], f"derive these from config.serializers.StrictSerializer / StrictModelSerializer: {lax}"


# --- read-only fields, nested fields, form bodies ----------------------------------------------


def test_a_read_only_field_says_so(world: World, db: None, client_for: Callable[..., APIClient]) -> None:  # noqa: F811
    client = client_for(world.members["provider"])
    before = snapshot(world)
    response = client.patch(
        fill("datasets/{id}/", world.ids), {"title": "Renamed", "status": "draft", "id": "x"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_field"
    assert body["fields"] == {"id": ["read-only field"], "status": ["read-only field"]}
    assert snapshot(world) == before


def test_a_nested_unknown_field_is_named_by_its_path(world: World, db: None, client_for: Callable[..., APIClient]) -> None:  # noqa: F811,E501
    client = client_for(world.members["provider"])
    response = client.patch(
        fill("datasets/{id}/", world.ids), {"licence": {"term_days": 30, "exclusive": True}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {"licence.exclusive": ["unknown field"]}


def test_a_form_encoded_body_is_checked_too(world: World, db: None, client_for: Callable[..., APIClient]) -> None:  # noqa: F811
    client = client_for(world.members["officer"])
    response = client.post(fill("trades/{id}/refund/", world.ids), {"reason": "r", "amount": "1.00"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"amount": ["unknown field"]}
