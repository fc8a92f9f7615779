"""Strict input: a write that names a field the endpoint does not accept is refused, whole.

A client that sends `{"amount": "100.00"}` to an endpoint without an `amount` field must not get a
different request than the one it meant (a full refund instead of a partial one): every field is
either accepted, or the request is a 400 `unknown_field` naming each offending field (a read-only
one says "read-only field") and nothing happens.

Every input serializer of the project derives from `StrictSerializer` / `StrictModelSerializer`
(tests/security/test_unknown_fields.py checks that, and sends an unknown field to every write
operation in the schema). The root serializer walks the whole body, nested serializers and lists of
them included, before any field is validated, so the answer lists only the unknown fields. Views that
read `request.data` without validating it through a serializer call `reject_unknown_fields`, and
endpoints that take no body call `reject_body`.
"""

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from config.errors import UnknownFieldError

UNKNOWN = "unknown field"
READ_ONLY = "read-only field"


def unknown_fields(serializer: serializers.BaseSerializer, data: Any, prefix: str = "") -> dict[str, list[str]]:
    """{dotted path: [message]} for every key of `data` that `serializer` does not accept as input."""
    if isinstance(serializer, serializers.ListSerializer):
        if not isinstance(data, list):
            return {}
        found: dict[str, list[str]] = {}
        child = serializer.child
        if not isinstance(child, serializers.BaseSerializer):
            return {}
        for index, item in enumerate(data):
            found.update(unknown_fields(child, item, f"{prefix}{index}."))
        return found
    if not isinstance(data, Mapping) or not isinstance(serializer, serializers.Serializer):
        return {}
    fields = serializer.fields
    found = {}
    for key in data:
        where = f"{prefix}{key}"
        field = fields.get(key)
        if field is None or isinstance(field, serializers.HiddenField):
            found[where] = [UNKNOWN]
        elif field.read_only:
            found[where] = [READ_ONLY]
        elif isinstance(field, serializers.BaseSerializer):
            found.update(unknown_fields(field, data[key], f"{where}."))
        elif isinstance(field, serializers.ListField) and isinstance(field.child, serializers.BaseSerializer):
            value = data[key]
            for index, item in enumerate(value if isinstance(value, list) else []):
                found.update(unknown_fields(field.child, item, f"{where}.{index}."))
    return found


def reject_unknown_fields(serializer: serializers.BaseSerializer, data: Any) -> None:
    """UnknownFieldError naming every field of `data` that `serializer` does not accept."""
    found = unknown_fields(serializer, data)
    if found:
        raise UnknownFieldError(
            f"Not accepted here: {', '.join(sorted(found))}. Nothing was done.", fields=dict(sorted(found.items()))
        )


class StrictInputMixin:
    """Refuses unknown and read-only fields before validating anything (see the module docstring)."""

    def to_internal_value(self, data: Any) -> Any:
        parent = getattr(self, "parent", None)
        is_root = parent is None or (isinstance(parent, serializers.ListSerializer) and parent.parent is None)
        if is_root:  # the root walks the nested serializers too, so each level need not
            assert isinstance(self, serializers.BaseSerializer)
            reject_unknown_fields(self, data)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictInputMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictInputMixin, serializers.ModelSerializer):
    pass


class NoBodySerializer(StrictSerializer):
    """The body of an endpoint that takes none: any field in it is unknown."""


def reject_body(request: Request) -> None:
    """For endpoints that accept no fields: a body with any field is 400 `unknown_field`."""
    reject_unknown_fields(NoBodySerializer(), request.data)
