"""Authentication, the error shape, health, and the OpenAPI documents."""

import pytest

pytestmark = pytest.mark.django_db


def test_token_login_then_bearer_auth(client_for, buyer_us):
    from rest_framework.test import APIClient

    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": buyer_us.user.username, "password": "correct-horse-battery"}, format="json"
    )
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['token']}")

    me = client.get("/api/v1/me/").json()
    assert me["username"] == buyer_us.user.username and me["role"] == "buyer"
    assert me["organisation"]["jurisdiction"] == "US"


@pytest.mark.parametrize("body", [{"username": "nobody", "password": "x"}, {"username": "x"}, {}])
def test_bad_login_is_a_400_with_a_stable_code(client, body):
    response = client.post("/api/v1/auth/token/", body, content_type="application/json")

    assert response.status_code == 400 and response.json()["code"] == "invalid_credentials"


def test_wrong_password_for_a_real_user(client, buyer_us):
    response = client.post(
        "/api/v1/auth/token/", {"username": buyer_us.user.username, "password": "nope"}, content_type="application/json"
    )

    assert response.status_code == 400


@pytest.mark.parametrize(
    "path", ["/api/v1/me/", "/api/v1/datasets/", "/api/v1/trades/", "/api/v1/reviews/", "/api/v1/rulepacks/"]
)
def test_every_api_endpoint_needs_authentication(client, path, settings):
    settings.ELEMENTA_PUBLIC_CATALOGUE = False  # on, anyone reads published listings (tests/marketplace/test_dcat.py)
    response = client.get(path)

    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "fields"} and response.json()["code"] == "not_authenticated"


def test_an_invalid_token_is_refused(client):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 401 and response.json()["code"] == "token_invalid"
    assert response["WWW-Authenticate"] == "Bearer"


def test_unknown_object_is_a_404_in_the_error_shape(client_for, buyer_us):
    response = client_for(buyer_us).get("/api/v1/trades/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_healthz_checks_database_broker_and_cache(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "cache": "ok", "down": []}


def test_openapi_schema_and_swagger_ui_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/trades/",
        "/api/v1/trades/{id}/approve/",
        "/api/v1/compliance/evaluate/",
        "/api/v1/datasets/{id}/compliance-preview/",
    ):
        assert path in paths
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_unknown_endpoint_is_a_json_404(client_for, buyer_us):
    response = client_for(buyer_us).get("/api/v1/no-such-thing/")

    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/datasets/not-a-uuid/", "/api/v1/trades/123/", "/api/v1/trades/x/cancel/"])
def test_malformed_ids_are_404s(client_for, buyer_us, path):
    client = client_for(buyer_us)
    response = client.post(path) if path.endswith("cancel/") else client.get(path)

    assert response.status_code == 404 and response.json()["code"] == "not_found"
