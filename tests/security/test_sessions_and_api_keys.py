"""Sessions that expire and can be ended, password changes that end them, and scoped machine API keys,
all through the HTTP API as a client sees them (docs/authentication.md)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.models import AuthToken
from rest_framework.test import APIClient

from compliance.models import AuditEvent
from marketplace.models import ApiKey
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/token/"


def login(username: str, password: str = PASSWORD) -> dict:
    response = APIClient().post(LOGIN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def refused(response, code: str) -> bool:
    return response.status_code == 401 and response.json()["code"] == code and response["WWW-Authenticate"] == "Bearer"


# --- sessions ------------------------------------------------------------------------------------


def test_each_login_is_a_new_session_with_its_own_token_and_expiry(buyer_us):
    first, second = login(buyer_us.user.username), login(buyer_us.user.username)

    assert first["token"] != second["token"] and first["session"] != second["session"]
    expires = parse_datetime(first["expires"])
    assert timezone.now() + timedelta(hours=9) < expires <= timezone.now() + timedelta(hours=10)
    for body in (first, second):  # both work side by side
        assert bearer(body["token"]).get("/api/v1/me/").json()["username"] == buyer_us.user.username


def test_the_ttl_comes_from_settings(buyer_us, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(minutes=5)}

    expires = parse_datetime(login(buyer_us.user.username)["expires"])

    assert timezone.now() < expires <= timezone.now() + timedelta(minutes=5)


def test_tokens_are_stored_only_as_digests(buyer_us):
    token = login(buyer_us.user.username)["token"]

    row = AuthToken.objects.get(user=buyer_us.user)
    assert token not in {row.digest, row.token_key} and token[:15] == row.token_key
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        assert not any(token in str(value) for record in cursor.fetchall() for value in record)


def test_an_expired_token_is_a_401_token_expired(buyer_us):
    body = login(buyer_us.user.username)
    AuthToken.objects.filter(token_key=body["session"]).update(expiry=timezone.now() - timedelta(seconds=1))

    assert refused(bearer(body["token"]).get("/api/v1/me/"), "token_expired")
    # the next login purges it, and the new session works
    fresh = login(buyer_us.user.username)
    assert not AuthToken.objects.filter(token_key=body["session"]).exists()
    assert refused(bearer(body["token"]).get("/api/v1/me/"), "token_invalid")
    assert bearer(fresh["token"]).get("/api/v1/me/").status_code == 200


def test_logout_ends_this_session_only(buyer_us):
    here, elsewhere = login(buyer_us.user.username), login(buyer_us.user.username)

    assert bearer(here["token"]).post("/api/v1/auth/logout/").status_code == 204

    assert refused(bearer(here["token"]).get("/api/v1/me/"), "token_invalid")
    assert bearer(elsewhere["token"]).get("/api/v1/me/").status_code == 200


def test_logout_all_ends_every_session_and_is_audited(buyer_us):
    tokens = [login(buyer_us.user.username)["token"] for _ in range(3)]

    assert bearer(tokens[0]).post("/api/v1/auth/logout-all/").status_code == 204

    assert all(refused(bearer(t).get("/api/v1/me/"), "token_invalid") for t in tokens)
    event = AuditEvent.objects.get(kind="user.sessions_revoked")
    assert event.data["sessions"] == 3 and event.data["reason"] == "logout_all" and event.actor_id == buyer_us.user.pk


def test_sessions_lists_only_your_own_and_marks_the_current_one(buyer_us, buyer_eu):
    mine, other = login(buyer_us.user.username), login(buyer_us.user.username)
    theirs = login(buyer_eu.user.username)

    listed = bearer(mine["token"]).get("/api/v1/auth/sessions/").json()

    assert {s["id"] for s in listed} == {mine["session"], other["session"]}
    assert [s["current"] for s in listed if s["id"] == mine["session"]] == [True]
    assert theirs["session"] not in {s["id"] for s in listed}
    assert all(set(s) == {"id", "created", "expires", "current"} for s in listed)


def test_ending_one_of_your_sessions_works_and_someone_elses_is_a_404(buyer_us, buyer_eu):
    mine, other = login(buyer_us.user.username), login(buyer_us.user.username)
    theirs = login(buyer_eu.user.username)
    client = bearer(mine["token"])

    assert client.delete(f"/api/v1/auth/sessions/{theirs['session']}/").status_code == 404
    assert bearer(theirs["token"]).get("/api/v1/me/").status_code == 200  # untouched
    assert client.delete(f"/api/v1/auth/sessions/{other['session']}/").status_code == 204
    assert refused(bearer(other["token"]).get("/api/v1/me/"), "token_invalid")
    assert client.get("/api/v1/me/").status_code == 200
    assert AuditEvent.objects.filter(kind="user.session_revoked", data__session=other["session"]).count() == 1


def test_a_password_change_ends_every_session_and_returns_a_new_one(buyer_us):
    username = buyer_us.user.username
    here, elsewhere = login(username), login(username)

    response = bearer(here["token"]).post(
        "/api/v1/auth/password/", {"current_password": PASSWORD, "new_password": "a-much-newer-secret-9"}, format="json"
    )

    assert response.status_code == 200 and set(response.json()) == {"token", "expires", "session"}
    assert refused(bearer(here["token"]).get("/api/v1/me/"), "token_invalid")
    assert refused(bearer(elsewhere["token"]).get("/api/v1/me/"), "token_invalid")
    assert bearer(response.json()["token"]).get("/api/v1/me/").status_code == 200
    assert APIClient().post(LOGIN, {"username": username, "password": PASSWORD}, format="json").status_code == 400
    login(username, "a-much-newer-secret-9")
    assert AuditEvent.objects.filter(kind="user.password_changed", subject_id=str(buyer_us.user.pk)).count() == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"current_password": "wrong", "new_password": "a-much-newer-secret-9"},
            "password_incorrect",
            "current_password",
        ),
        ({"current_password": PASSWORD, "new_password": "short"}, "password_invalid", "new_password"),
        ({"current_password": PASSWORD}, "invalid", "new_password"),
    ],
)
def test_a_refused_password_change_changes_nothing(buyer_us, body, code, field):
    token = login(buyer_us.user.username)["token"]

    response = bearer(token).post("/api/v1/auth/password/", body, format="json")

    assert response.status_code == 400 and response.json()["code"] == code and field in response.json()["fields"]
    assert bearer(token).get("/api/v1/me/").status_code == 200
    login(buyer_us.user.username)  # the old password still works


def test_a_password_set_anywhere_else_ends_every_session(buyer_us):
    """The admin's and `changepassword`'s path: set_password, then save."""
    token = login(buyer_us.user.username)["token"]
    user = buyer_us.user

    user.set_password("set-by-an-administrator-7")
    user.save()

    assert refused(bearer(token).get("/api/v1/me/"), "token_invalid")


def test_saving_a_user_without_a_new_password_ends_nothing(buyer_us):
    token = login(buyer_us.user.username)["token"]
    buyer_us.user.first_name = "Ada"
    buyer_us.user.save()

    assert bearer(token).get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer a b",
        "Bearer " + "f" * 63,
        "Bearer " + "0" * 64,
        "Bearer abc\x00def",
        "Bearer " + "x" * 5000,
        "Bearer abcdefgh." + "A" * 32,
    ],
)
def test_malformed_or_unknown_tokens_are_a_401_never_a_500(client, header):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)

    assert refused(response, "token_invalid")


def test_an_inactive_users_token_is_refused(buyer_us):
    token = login(buyer_us.user.username)["token"]
    type(buyer_us.user).objects.filter(pk=buyer_us.user.pk).update(is_active=False)

    assert refused(bearer(token).get("/api/v1/me/"), "token_invalid")


# --- API keys ------------------------------------------------------------------------------------


def create_key(member, scopes: list[str], name: str = "pipeline") -> tuple[dict, APIClient]:
    response = bearer(login(member.user.username)["token"]).post(
        "/api/v1/api-keys/", {"name": name, "scopes": scopes}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json(), bearer(response.json()["key"])


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_an_upload_only_key_uploads_and_does_nothing_else(provider_eu, eu_personal, buyer_eu, media):
    created, machine = create_key(provider_eu, ["files:upload"])

    upload = machine.post(
        f"/api/v1/datasets/{eu_personal.id}/files/",
        {"file": SimpleUploadedFile("a.csv", b"id\n1\n")},
        format="multipart",
    )
    assert upload.status_code == 201, upload.content
    assert upload.json()["uploaded_by"] == created["acts_as"] == f"apikey-{created['id']}"
    me = machine.get("/api/v1/me/").json()
    assert me["role"] == "provider" and me["organisation"]["id"] == str(provider_eu.organisation_id)

    for method, path in [
        ("post", "/api/v1/trades/"),
        ("get", "/api/v1/trades/"),
        ("get", "/api/v1/wallet/"),
        ("post", "/api/v1/api-keys/"),
        ("get", "/api/v1/auth/sessions/"),
        ("post", "/api/v1/auth/logout-all/"),
        ("patch", f"/api/v1/datasets/{eu_personal.id}/"),
    ]:
        response = getattr(machine, method)(path, {}, format="json")
        assert response.status_code == 403 and response.json()["code"] == "api_key_scope", (
            method,
            path,
            response.status_code,
        )


def test_a_buyers_trades_key_cannot_upload_or_change_listings(buyer_eu, eu_personal, media):
    _, machine = create_key(buyer_eu, ["trades:write", "catalogue:read"])

    assert machine.get(f"/api/v1/datasets/{eu_personal.id}/").status_code == 200
    upload = machine.post(
        f"/api/v1/datasets/{eu_personal.id}/files/",
        {"file": SimpleUploadedFile("a.csv", b"id\n1\n")},
        format="multipart",
    )
    assert upload.status_code == 403 and upload.json()["code"] == "api_key_scope"


def test_a_revoked_key_is_a_401_and_any_member_of_the_organisation_may_revoke_it(
    provider_eu, provider_cn, eu_personal, media
):
    colleague = MembershipFactory(organisation=provider_eu.organisation, role="provider")
    created, machine = create_key(provider_eu, ["catalogue:read"])
    assert machine.get("/api/v1/datasets/").status_code == 200

    stranger = bearer(login(provider_cn.user.username)["token"])
    assert stranger.delete(f"/api/v1/api-keys/{created['id']}/").status_code == 404
    assert created["id"] not in {k["id"] for k in stranger.get("/api/v1/api-keys/").json()["results"]}
    assert machine.get("/api/v1/datasets/").status_code == 200

    member = bearer(login(colleague.user.username)["token"])
    assert created["id"] in {k["id"] for k in member.get("/api/v1/api-keys/").json()["results"]}
    assert member.delete(f"/api/v1/api-keys/{created['id']}/").status_code == 204

    assert refused(machine.get("/api/v1/datasets/"), "token_invalid")
    listed = {k["id"]: k for k in member.get("/api/v1/api-keys/").json()["results"]}
    assert listed[created["id"]]["revoked"] is True and listed[created["id"]]["revoked_by"] == colleague.user.username
    kinds = list(
        AuditEvent.objects.filter(subject_type="api_key", subject_id=created["id"]).values_list("kind", flat=True)
    )
    assert kinds == ["api_key.created", "api_key.revoked"]


def test_the_secret_is_shown_once_and_never_stored_in_clear(provider_eu):
    created, _ = create_key(provider_eu, ["files:upload"])
    secret = created["key"]

    listed = bearer(login(provider_eu.user.username)["token"]).get("/api/v1/api-keys/").json()["results"]
    assert all("key" not in k for k in listed)
    assert secret.split(".")[0] == created["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM marketplace_apikey")
        rows = cursor.fetchall()
    assert rows and not any(secret in str(v) or secret.split(".")[1] in str(v) for row in rows for v in row)
    assert not any(secret in str(e.data) for e in AuditEvent.objects.all())


def test_an_expired_key_is_a_401_token_expired(provider_eu):
    created, machine = create_key(provider_eu, ["catalogue:read"])
    ApiKey.objects.filter(prefix=created["id"]).update(expiry_date=timezone.now() - timedelta(seconds=1))

    assert refused(machine.get("/api/v1/datasets/"), "token_expired")


@pytest.mark.parametrize(
    ("role", "scopes", "status", "code"),
    [
        ("buyer", ["files:upload"], 400, "api_key_scope_invalid"),
        ("provider", ["trades:write"], 400, "api_key_scope_invalid"),
        ("provider", [], 400, "invalid"),
        ("provider", ["everything"], 400, "invalid"),
        ("provider", None, 400, "invalid"),  # no name
    ],
)
def test_a_key_carries_only_scopes_the_members_role_may_hand_out(role, scopes, status, code):  # and needs a name
    member = MembershipFactory(role=role)
    client = bearer(login(member.user.username)["token"])

    body = {"name": "x", "scopes": scopes} if scopes is not None else {"scopes": ["catalogue:read"]}
    response = client.post("/api/v1/api-keys/", body, format="json")

    assert response.status_code == status and response.json()["code"] == code
    assert not ApiKey.objects.exists()


def test_officers_create_no_keys(officer):
    client = bearer(login(officer.user.username)["token"])

    response = client.post("/api/v1/api-keys/", {"name": "x", "scopes": ["catalogue:read"]}, format="json")

    assert response.status_code == 403 and not ApiKey.objects.exists()


def test_a_password_change_of_the_creator_leaves_the_organisations_keys_working(provider_eu):
    _, machine = create_key(provider_eu, ["catalogue:read"])
    provider_eu.user.set_password("another-long-secret-3")
    provider_eu.user.save()

    assert machine.get("/api/v1/datasets/").status_code == 200


def test_authenticating_costs_one_query(buyer_us, provider_eu, django_assert_num_queries):
    """The token (or key) row with the user, membership and organisation in one query; /me/ needs nothing more."""
    session = bearer(login(buyer_us.user.username)["token"])
    _, machine = create_key(provider_eu, ["catalogue:read"])

    for client in (session, machine):
        with django_assert_num_queries(1):
            assert client.get("/api/v1/me/").status_code == 200


def test_logins_beyond_the_cap_end_the_oldest_sessions(buyer_us, settings):
    settings.ELEMENTA_MAX_SESSIONS_PER_USER = 2
    first, second, third = (login(buyer_us.user.username)["token"] for _ in range(3))

    assert refused(bearer(first).get("/api/v1/me/"), "token_invalid")
    assert bearer(second).get("/api/v1/me/").status_code == 200 and bearer(third).get("/api/v1/me/").status_code == 200


def test_a_buyers_trades_key_buys_as_its_organisation(buyer_eu, eu_public):
    created, machine = create_key(buyer_eu, ["trades:write", "trades:read"])

    response = machine.post("/api/v1/trades/", {"dataset": str(eu_public.id)}, format="json")

    assert response.status_code == 201, response.content
    assert machine.get(f"/api/v1/trades/{response.json()['id']}/").status_code == 200
    colleague_view = bearer(login(buyer_eu.user.username)["token"]).get(f"/api/v1/trades/{response.json()['id']}/")
    assert colleague_view.status_code == 200  # the organisation's trade, not the machine's own


def test_with_auto_refresh_each_use_pushes_the_expiry_out(buyer_us, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "AUTO_REFRESH": True}
    body = login(buyer_us.user.username)
    soon = timezone.now() + timedelta(hours=1)
    AuthToken.objects.filter(token_key=body["session"]).update(expiry=soon)

    assert bearer(body["token"]).get("/api/v1/me/").status_code == 200

    assert AuthToken.objects.get(token_key=body["session"]).expiry > soon + timedelta(hours=8)
