"""The OpenAPI document at /api/schema/ is what outside tools read: it must be valid, say one body
type per operation, document every error an operation can answer in the shared `Error` shape, and
type what the API returns. (The live proofs: tests/integration/test_generated_client.py generates a
client and buys with it; tests/security/test_schemathesis.py checks every response against it.)"""

from pathlib import Path
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

from compliance.engine import facts
from compliance.engine import vocabulary as vocab
from config.api import _DRF_CODES
from config.openapi import AREAS, PARSER_CODES, error_classes
from marketplace.services.webhooks.constants import EVENT_KINDS

ROOT = Path(__file__).resolve().parents[2]
UPLOADS = {("post", "/api/v1/datasets/{dataset_id}/files/"), ("post", "/api/v1/mechanisms/"),
           ("post", "/api/v1/trades/{id}/documents/"), ("post", "/api/v1/datasets/{dataset_id}/sample/")}
IDEMPOTENT = {"grants_queries_create", "grants_revoke_create", "mechanisms_create", "organisations_invitations_create",
              "organisation_facts_verify_create", "revocation_requests_decide_create", "trades_create",
              "trades_documents_create", "trades_refund_create", "wallet_deposits_create"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in schema["paths"].items() for m, op in ops.items() if isinstance(op, dict)]


def by_id(schema: dict[str, Any], operation_id: str) -> dict[str, Any]:
    return next(op for _, _, op in operations(schema) if op["operationId"] == operation_id)


def codes(operation: dict[str, Any], status: int) -> list[str]:
    body = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    assert body["allOf"] == [{"$ref": "#/components/schemas/Error"}]
    return body["properties"]["code"]["enum"]


def test_openapi_spec_validator_accepts_the_document(schema: dict[str, Any]) -> None:
    validate(schema)


def test_bodies_are_json_and_only_the_uploads_are_multipart(schema: dict[str, Any]) -> None:
    for method, path, op in operations(schema):
        if "requestBody" not in op:
            continue
        media = list(op["requestBody"]["content"])
        if (method, path) in UPLOADS:
            assert media == ["multipart/form-data"], (method, path)
            properties = next(
                iter(op["requestBody"]["content"].values())
            )["schema"]["$ref"].rsplit("/", 1)[1]
            file_field = schema["components"]["schemas"][properties]["properties"]["file"]
            assert file_field["format"] == "binary", (path, file_field)
        else:
            assert media == ["application/json"], (method, path, media)


def test_every_operation_documents_its_errors_in_the_error_shape(schema: dict[str, Any]) -> None:
    catalogue = {c.code for c in error_classes()} | set(_DRF_CODES.values()) | {"temporarily_unavailable"}
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message", "fields"]
    for method, path, op in operations(schema):
        statuses = {int(s) for s in op["responses"] if s[0] in "45"}
        assert 503 in statuses, path
        for status in statuses:
            listed = codes(op, status)
            assert set(listed) <= catalogue, (path, status, set(listed) - catalogue)
        if op.get("security") and {} not in op["security"]:
            assert {401, 403} <= statuses, (method, path)
            assert "token_expired" in codes(op, 401)
        if "{" in path:
            assert "not_found" in codes(op, 404), (method, path)
        if "requestBody" in op:
            assert PARSER_CODES[400] <= set(codes(op, 400)), (method, path)
            assert codes(op, 413) == ["request_too_large"] and codes(op, 415) == ["unsupported_media_type"]
        if method in ("post", "put", "patch", "delete"):
            assert "Retry-After" in op["responses"]["429"]["headers"], (method, path)
        assert "Retry-After" in op["responses"]["503"]["headers"]


@pytest.mark.parametrize(
    ("operation_id", "status", "code"),
    [
        ("trades_create", 409, "dataset_not_available"),
        ("trades_create", 400, "own_dataset"),
        ("trades_create", 422, "idempotency_key_reused"),
        ("trades_create", 409, "idempotency_key_in_use"),
        ("datasets_files_list", 403, "grant_required"),
        ("datasets_files_list", 403, "grant_suspended"),
        ("grants_download_retrieve", 403, "grant_suspended"),
        ("grants_download_retrieve", 416, "range_not_satisfiable"),
        ("datasets_publish_create", 409, "attestation_required"),
        ("datasets_files_create", 400, "upload_rejected"),
        ("trades_approve_create", 409, "requirements_outstanding"),
        ("trades_approve_create", 403, "own_organisation"),
        ("wallet_deposits_create", 400, "amount_out_of_range"),
        ("compliance_evaluate_create", 400, "invalid_facts"),
        ("compliance_evaluate_create", 400, "trade_date_out_of_range"),
        ("rulepacks_activate_create", 409, "backtest_required"),
        ("auth_token_create", 400, "invalid_credentials"),
        ("auth_token_create", 429, "login_locked"),
        ("webhooks_create", 400, "webhook_url_not_allowed"),
    ],
)
def test_an_operations_own_errors_are_read_from_its_code(
    schema: dict[str, Any], operation_id: str, status: int, code: str
) -> None:
    assert code in codes(by_id(schema, operation_id), status)


def test_idempotency_key_is_documented_where_it_is_honoured(schema: dict[str, Any]) -> None:
    documented = {
        op["operationId"]
        for _, _, op in operations(schema)
        if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
    }
    assert documented == IDEMPOTENT
    for operation_id in IDEMPOTENT:
        assert "idempotency_key_reused" in codes(by_id(schema, operation_id), 422)
    assert "422" not in by_id(schema, "grants_queries_list")["responses"]  # @idempotent passes GETs through


def test_operation_ids_and_tags_are_consistent(schema: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(schema)]
    assert len(ids) == len(set(ids))
    assert not [i for i in ids if i.startswith("v1_")]
    assert "rulepacks_backtest_create" in ids
    assert {t for _, _, op in operations(schema) for t in op["tags"]} <= set(AREAS.values())


def test_the_trades_documents_are_a_bare_array(schema: dict[str, Any]) -> None:
    listing = by_id(schema, "trades_documents_list")
    assert not [p for p in listing.get("parameters", []) if p["in"] == "query"]
    body = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"


def test_the_download_is_any_type_with_its_headers(schema: dict[str, Any]) -> None:
    download = by_id(schema, "grants_download_retrieve")
    for status in ("200", "206"):
        content = download["responses"][status]["content"]
        assert "*/*" in content and content["*/*"]["schema"]["format"] == "binary"
        assert "ETag" in download["responses"][status]["headers"]
    assert "Content-Range" in download["responses"]["206"]["headers"]
    assert {p["name"] for p in download["parameters"] if p["in"] == "header"} >= {"Range", "If-Range"}


def test_trades_are_typed(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    trade = components["Trade"]["properties"]
    assert trade["licence"]["allOf"][0]["$ref"].endswith("/TradeLicence")
    assert components["TradePricingEnum"]["enum"] == ["one_time", "subscription", "compute_period", "compute_query"]
    assert trade["purpose"]["allOf"][0]["$ref"].endswith("/PurposeEnum")
    assert trade["mechanisms"]["items"]["$ref"].endswith("/Mechanism")
    decision = components["TradeDecision"]["properties"]
    assert {"checked_at", "check"} <= set(decision)
    assert components["Finding"]["properties"]["outcome"]["$ref"].endswith("/OutcomeEnum")
    assert components["OutcomeEnum"]["enum"] == [o.value for o in vocab.Outcome]


def _properties(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["components"]["schemas"][name]["properties"]


def _enum(schema: dict[str, Any], prop: dict[str, Any]) -> list[str]:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref") or prop.get("allOf", [{}])[0].get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["enum"]


def test_the_evaluate_body_is_the_engines_facts(schema: dict[str, Any]) -> None:
    body = by_id(schema, "compliance_evaluate_create")["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/TransferFactsRequest")
    pairs = [
        ("TransferFactsRequest", facts.TOP_FIELDS), ("FactsDataRequest", facts.DATA_FIELDS),
        ("FactsExporterRequest", facts.EXPORTER_FIELDS), ("FactsBuyerRequest", facts.BUYER_FIELDS),
        ("FactsMechanismRequest", facts.MECHANISM_FIELDS), ("FactsPriorExportRequest", facts.PRIOR_EXPORT_FIELDS),
        ("FactsPartiesRequest", facts.PARTIES_FIELDS), ("FactsListMatchRequest", facts.LIST_MATCH_FIELDS),
    ]
    for component, fields in pairs:
        assert set(_properties(schema, component)) == set(fields), component
    data = _properties(schema, "FactsDataRequest")
    assert _enum(schema, data["classification"]) == list(vocab.CLASSIFICATIONS)
    assert _enum(schema, data["categories"]) == list(vocab.CATEGORIES)
    assert _enum(schema, data["flags"]) == list(vocab.DATA_FLAGS)
    assert _enum(schema, _properties(schema, "FactsExporterRequest")["flags"]) == list(vocab.EXPORTER_FLAGS)
    buyer = _properties(schema, "FactsBuyerRequest")
    assert _enum(schema, buyer["kind"]) == list(vocab.BUYER_KINDS)
    assert _enum(schema, buyer["certifications"]) == list(vocab.CERTIFICATIONS)
    assert _enum(schema, _properties(schema, "FactsMechanismRequest")["code"]) == list(vocab.MECHANISMS)
    top = _properties(schema, "TransferFactsRequest")
    assert _enum(schema, top["purpose"]) == list(vocab.PURPOSES)
    assert _enum(schema, top["delivery"]) == list(vocab.DELIVERIES)


def test_the_facts_page_documents_every_field_and_value() -> None:
    page = (ROOT / "docs" / "facts.md").read_text()
    every = [
        *facts.TOP_FIELDS, *facts.DATA_FIELDS, *facts.BUYER_FIELDS, *facts.MECHANISM_FIELDS,
        *facts.PRIOR_EXPORT_FIELDS, *facts.PARTIES_FIELDS, *facts.LIST_MATCH_FIELDS, *vocab.CLASSIFICATIONS,
        *vocab.CATEGORIES, *vocab.DATA_FLAGS, *vocab.EXPORTER_FLAGS, *vocab.BUYER_KINDS, *vocab.CERTIFICATIONS,
        *vocab.PURPOSES, *vocab.DELIVERIES, *vocab.MECHANISMS, *[o.value for o in vocab.Outcome],
    ]
    assert not [name for name in every if f"`{name}`" not in page]
    assert "docs/facts.md" in (ROOT / "README.md").read_text()


def test_webhook_payloads_are_documented(schema: dict[str, Any]) -> None:
    assert set(schema["x-webhooks"]) == {*EVENT_KINDS, "ping"}
    assert schema["components"]["schemas"]["WebhookEvent"]["required"] == ["event", "id", "at", "data"]
