"""Hardening: login lock-out, write throttling, production settings, structured logs without secrets."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache

from config.throttling import LoginRateThrottle, WriteRateThrottle
from marketplace.models import Dataset, Trade
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def login(client, username, password):
    return client.post(
        "/api/v1/auth/token/", {"username": username, "password": password}, content_type="application/json"
    )


def test_repeated_failed_logins_lock_the_account_for_a_while(client, buyer_us, settings):
    settings.ELEMENTA_LOGIN_MAX_FAILURES = 3
    username = buyer_us.user.username

    failures = [login(client, username, "wrong").status_code for _ in range(3)]
    locked = login(client, username, PASSWORD)
    other_user = login(client, "someone-else", "wrong")
    cache.clear()  # the lock-out expired
    after = login(client, username, PASSWORD)

    assert failures == [400, 400, 400]
    assert locked.status_code == 429 and locked.json()["code"] == "login_locked"
    assert other_user.status_code == 400
    assert after.status_code == 200


def test_a_stranger_elsewhere_cannot_lock_the_officer_out(client, officer, settings):
    """The lock-out is per (account, address): failures from one address leave the owner's alone."""
    settings.ELEMENTA_LOGIN_MAX_FAILURES = 3
    username = officer.user.username

    attacker = [
        client.post(
            "/api/v1/auth/token/",
            {"username": username, "password": "guess"},
            content_type="application/json",
            REMOTE_ADDR="203.0.113.9",
        ).status_code
        for _ in range(4)
    ]
    owner = client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR="198.51.100.7",
    )

    assert attacker == [400, 400, 400, 429]
    assert owner.status_code == 200 and owner.json()["token"]


def test_rotating_x_forwarded_for_does_not_escape_the_login_throttle(client, monkeypatch):
    """Without a trusted proxy the header is ignored: every guess counts against the real address."""
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "5/min"})
    codes = [
        client.post(
            "/api/v1/auth/token/",
            {"username": f"spray{i}", "password": "Winter2026!"},
            content_type="application/json",
            REMOTE_ADDR="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        ).status_code
        for i in range(8)
    ]

    assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}


def test_a_trusted_proxy_count_reads_the_clients_address_from_the_header(client, monkeypatch, settings):
    from rest_framework.settings import api_settings

    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "2/min"})
    monkeypatch.setattr(api_settings, "NUM_PROXIES", 1)

    def attempt(real: str) -> int:
        return client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, content_type="application/json",
                           REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{real}").status_code

    assert [attempt("203.0.113.9") for _ in range(3)] == [400, 400, 429]
    assert attempt("198.51.100.7") == 400  # another client behind the same proxy has its own budget


def test_a_successful_login_resets_the_count(client, buyer_us, settings):
    settings.ELEMENTA_LOGIN_MAX_FAILURES = 3
    username = buyer_us.user.username
    for _ in range(2):
        login(client, username, "wrong")
    assert login(client, username, PASSWORD).status_code == 200

    assert [login(client, username, "wrong").status_code for _ in range(2)] == [400, 400]
    assert login(client, username, PASSWORD).status_code == 200


def test_writes_are_throttled_per_user_and_reads_are_not(client_for, buyer_eu, eu_personal, monkeypatch):
    monkeypatch.setattr(WriteRateThrottle, "THROTTLE_RATES", {"write": "3/min"})
    buyer = client_for(buyer_eu)

    statuses = [
        buyer.post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json").status_code for _ in range(4)
    ]
    read = buyer.get("/api/v1/trades/")

    assert statuses == [201, 201, 201, 429]
    assert Trade.objects.count() == 3 and read.status_code == 200


def test_production_settings_pass_the_deployment_checklist(tmp_path):
    env = {**os.environ, "ELEMENTA_PRODUCTION": "1", "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "elementa.example",
           "DJANGO_SECRET_KEY": "x7Gv2LwQp9ZrT4mNcB8yHs3KdF6jUe1AoRiWq5XtVz0PlMnBvCxZaSdFgHjKlQwErTyU",
           "ELEMENTA_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"} | {
        "ELEMENTA_PRODUCTION": "1",
        "ELEMENTA_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0 and "DJANGO_SECRET_KEY is required" in result.stderr


def test_json_logs_carry_request_and_trade_ids_and_no_secrets(client_for, buyer_eu, eu_personal, caplog, client):
    from config.logging import ContextFilter

    caplog.handler.addFilter(ContextFilter())
    buyer = client_for(buyer_eu)
    trade = buyer.post(
        "/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json", HTTP_X_REQUEST_ID="req-123"
    ).json()
    with caplog.at_level(logging.INFO):
        response = buyer.post(
            f"/api/v1/trades/{trade['id']}/cancel/", {"reason": "x"}, format="json", HTTP_X_REQUEST_ID="req-456"
        )
        buyer.post(
            f"/api/v1/trades/{trade['id']}/cancel/", format="json", HTTP_X_REQUEST_ID="req-789"
        )  # 409: logged as a warning
        login(client, buyer_eu.user.username, "s3cret-guess")

    assert response["X-Request-ID"] == "req-456"
    conflict = [r for r in caplog.records if getattr(r, "request_id", "") == "req-789"]
    assert conflict and conflict[0].trade_id == trade["id"]

    from pythonjsonlogger.json import JsonFormatter

    line = json.loads(
        JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s %(trade_id)s").format(conflict[0])
    )
    assert line["request_id"] == "req-789" and line["trade_id"] == trade["id"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    token = buyer._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert "s3cret-guess" not in text and token not in text and PASSWORD not in text


def test_a_bogus_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="<script>" * 20)

    assert response["X-Request-ID"] != "<script>" * 20 and len(response["X-Request-ID"]) == 32


def test_fields_a_client_must_not_set_are_refused(client_for, provider_eu, buyer_eu, buyer_us, eu_personal):
    """Mass assignment (OWASP API6): status, owner, ids and prices come from the server. Sending them is
    a 400 `unknown_field` naming each (read-only ones say so), and nothing is created."""
    dataset = client_for(provider_eu).post(
        "/api/v1/datasets/",
        {
            "title": "t",
            "subject_jurisdictions": ["DE"],
            "classification": "public",
            "categories": ["statistics"],
            "subjects": 0,
            "price": "5.00",
            "status": "published",
            "provider": str(buyer_us.organisation_id),
            "id": "00000000-0000-0000-0000-000000000001",
            "published_at": "2020-01-01T00:00:00Z",
        },
        format="json",
    )
    trade = client_for(buyer_eu).post("/api/v1/trades/", {
        "dataset": str(eu_personal.id), "price": "0.01", "status": "settled", "buyer": str(buyer_us.organisation_id),
        "decision": {"outcome": "allow"}}, format="json")

    assert dataset.status_code == 400 and dataset.json()["code"] == "unknown_field"
    assert dataset.json()["fields"] == {
        k: ["read-only field"] for k in ("id", "provider", "published_at", "status")
    }
    assert trade.status_code == 400 and trade.json()["code"] == "unknown_field"
    assert trade.json()["fields"] == {k: ["unknown field"] for k in ("buyer", "decision", "price", "status")}
    assert Dataset.objects.count() == 1 and not Trade.objects.exists()  # eu_personal only


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("bad\x00name", "x", "invalid_characters"),
        ("x" * 151, "x", "invalid_credentials"),
        ("someone", "p\x00w", "invalid_characters"),
    ],
)
def test_impossible_credentials_are_a_400_without_touching_the_database(client, username, password, code):
    """Found by schemathesis on PostgreSQL: a NUL byte in a username reached the query (500). A NUL
    anywhere in a JSON body is now refused by the parser (invalid_characters) before the view runs."""
    response = login(client, username, password)

    assert response.status_code == 400 and response.json()["code"] == code


def test_lock_out_counters_are_shared_between_processes(tmp_path):
    """Every gunicorn worker sees the same counters on the embedded default: another process's
    failed logins lock this one out too (a per-process cache alternated 429 and 400)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "ELEMENTA_CACHE_URL")} | {
        "ELEMENTA_VAR_DIR": str(tmp_path)
    }
    code = (
        "import django; django.setup(); from django.core.cache import cache; from django.conf import settings; "
        "from config.throttling import login_failed, login_check_locked\n"
        "import sys\n"
        "if sys.argv[1] == 'fail':\n"
        "    [login_failed(username='officer', client='203.0.113.9') for _ in "
        "range(settings.ELEMENTA_LOGIN_MAX_FAILURES)]\n"
        "else:\n"
        "    try:\n        login_check_locked(username='officer', client='203.0.113.9')\n    except Exception as "
        "exc:\n        print(type(exc).__name__)\n"
    )
    run = [sys.executable, "-c", code]
    subprocess.run(
        [*run, "fail"], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"}, check=True, timeout=60
    )
    checked = subprocess.run([*run, "check"], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
                             capture_output=True, text=True, timeout=60)

    assert checked.stdout.strip() == "LoginLockedError", checked.stderr


def test_failed_logins_back_off_doubling_per_account_and_address(client, buyer_us, settings, monkeypatch):
    """From the MAX_FAILURES-th failure the (account, address) waits BACKOFF_SECONDS, doubling with
    each further failure, capped at LOCKOUT_SECONDS; a success clears it."""
    import config.throttling as throttling

    settings.ELEMENTA_LOGIN_MAX_FAILURES, settings.ELEMENTA_LOGIN_BACKOFF_SECONDS = 3, 30
    settings.ELEMENTA_LOGIN_LOCKOUT_SECONDS = 100
    now = [1_000_000.0]
    monkeypatch.setattr(throttling.time, "time", lambda: now[0])
    username = buyer_us.user.username
    waits = []

    for _ in range(6):
        response = login(client, username, "wrong")
        if response.status_code == 429:  # still backing off: nothing counted; wait it out and fail again
            waits.append(int(response["Retry-After"]))
            now[0] += waits[-1]
            response = login(client, username, "wrong")
        assert response.status_code == 400

    assert waits == [31, 61, 101]  # 30 s, then 60 s, then 120 s capped at 100 s (+1 s rounding up)
    now[0] += 101
    assert login(client, username, PASSWORD).status_code == 200
    assert login(client, username, "wrong").status_code == 400  # the success cleared the count
