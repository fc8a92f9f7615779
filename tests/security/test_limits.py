"""Request limits, production-shaped defaults and response headers, through the real HTTP stack."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from compliance.errors import RulePackInvalidError
from compliance.services.rulepacks import rulepack_parse_yaml
from config.errors import RequestTooLargeError
from config.limits import BoundedStream
from config.parsers import json_text_depth
from marketplace.models import Dataset, DatasetFile

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


# --- body size ----------------------------------------------------------------------------------


def test_an_oversize_login_is_refused_before_it_is_parsed(client, settings):
    settings.ELEMENTA_MAX_BODY_BYTES = 1024
    body = json.dumps({"username": "x" * 2000, "password": "y"})

    response = client.post("/api/v1/auth/token/", body, content_type="application/json")

    assert response.status_code == 413 and response.json()["code"] == "request_too_large"


def test_the_default_body_limit_is_one_mebibyte(client_for, provider_eu, settings):
    assert settings.ELEMENTA_MAX_BODY_BYTES == 1024 * 1024
    description = "d" * (settings.ELEMENTA_MAX_BODY_BYTES + 1)

    response = client_for(provider_eu).post(
        "/api/v1/datasets/", {"title": "t", "description": description}, format="json"
    )

    assert response.status_code == 413
    assert not Dataset.objects.filter(title="t").exists()


def test_form_bodies_have_the_same_limit(client_for, provider_eu, settings):
    settings.ELEMENTA_MAX_BODY_BYTES = 1024

    response = client_for(provider_eu).post(
        "/api/v1/datasets/", {"title": "t", "description": "d" * 2000}
    )  # multipart by default
    urlencoded = client_for(provider_eu).generic("POST", "/api/v1/datasets/", "title=t&description=" + "d" * 2000,
                                                 content_type="application/x-www-form-urlencoded")

    assert urlencoded.status_code == 413
    assert response.status_code in (
        400,
        413,
    )  # a multipart form's text fields: Django's own cap (413) or the field's max_length
    assert not Dataset.objects.filter(title="t").exists()


def test_dataset_files_keep_their_own_larger_limit(client_for, provider_eu, eu_personal, settings, media):
    settings.ELEMENTA_MAX_BODY_BYTES = 1024
    content = b"id,value\n" + b"1,abcdefgh\n" * 2000  # ~22 KB: far over the JSON limit, far under the file limit

    response = client_for(provider_eu).post(f"/api/v1/datasets/{eu_personal.id}/files/",
                                            {"file": SimpleUploadedFile("big.csv", content)}, format="multipart")

    assert response.status_code == 201, response.content
    assert DatasetFile.objects.get(dataset=eu_personal, version=response.json()["version"]).size == len(content)


def test_a_multipart_body_past_the_file_limit_is_a_413_before_it_is_read(
    client_for, provider_eu, eu_personal, settings, media
):
    settings.ELEMENTA_MAX_DATASET_FILE_BYTES = 4096
    settings.ELEMENTA_MAX_MULTIPART_OVERHEAD_BYTES = 1024
    before = DatasetFile.objects.count()  # the version the listing was published with

    response = client_for(provider_eu).post(f"/api/v1/datasets/{eu_personal.id}/files/",
                                            {"file": SimpleUploadedFile("big.csv", b"x" * 8192)}, format="multipart")

    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert DatasetFile.objects.count() == before


def test_a_stream_without_an_honest_length_is_cut_one_byte_past_the_limit():
    stream = BoundedStream(io.BytesIO(b"x" * 100), 10)

    assert stream.read(4) == b"xxxx"
    with pytest.raises(RequestTooLargeError):
        stream.read()
    assert BoundedStream(io.BytesIO(b"x" * 10), 10).read() == b"x" * 10


# --- structure --------------------------------------------------------------------------------


def test_depth_is_counted_on_the_text_without_recursion():
    assert json_text_depth(b'{"a": [1, {"b": "[[[{{{"}], "c": "\\"[["}') == 3
    assert json_text_depth(b"[" * 1_000_000) == 1_000_000


@pytest.mark.parametrize(("body", "code"), [
    (b'{"reason": ' + b"[" * 33 + b"]" * 33 + b"}", "request_too_deep"),
    (b"[" * 200_000, "request_too_deep"),
    (json.dumps({"subject_jurisdictions": ["DE"] * 1001}).encode(), "list_too_long"),
    (json.dumps({"title": "a\x00b"}).encode(), "invalid_characters"),
    (json.dumps({"ti\x00tle": "ab"}).encode(), "invalid_characters"),
])
def test_hostile_json_is_a_400_with_its_own_code(client_for, provider_eu, body, code):
    response = client_for(provider_eu).generic("POST", "/api/v1/datasets/", body, content_type="application/json")

    assert response.status_code == 400 and response.json()["code"] == code
    assert not Dataset.objects.exists()


def test_numbers_python_cannot_hold_are_parse_errors(client_for, provider_eu):
    for body in (b'{"subjects": ' + b"9" * 5000 + b"}", b'{"subjects": 1e999}', b'{"subjects": NaN}'):
        response = client_for(provider_eu).generic("POST", "/api/v1/datasets/", body, content_type="application/json")
        assert response.status_code == 400 and response.json()["code"] == "parse_error", body[:20]


def test_nesting_within_the_limit_still_works(client_for, officer):
    """The deepest shipped rule pack, posted as JSON: nested deeper than any other body, and accepted."""
    import yaml

    content = yaml.safe_load((ROOT / "compliance" / "rulepacks" / "eu-2023.07.10.yaml").read_text())
    content["version"] = "2099.01.01"

    response = client_for(officer).post(
        "/api/v1/rulepacks/", {"content": json.loads(json.dumps(content, default=str))}, format="json"
    )

    assert response.status_code == 201, response.content


def test_text_fields_have_a_maximum_length(client_for, provider_eu):
    base = {
        "subject_jurisdictions": ["DE"],
        "classification": "public",
        "categories": ["statistics"],
        "price": "1.00",
        "currency": "EUR",
    }

    long_description = client_for(provider_eu).post(
        "/api/v1/datasets/", {**base, "title": "t", "description": "d" * 20_001}, format="json"
    )
    long_title = client_for(provider_eu).post("/api/v1/datasets/", {**base, "title": "t" * 201}, format="json")
    fine = client_for(provider_eu).post(
        "/api/v1/datasets/", {**base, "title": "t", "description": "d" * 20_000}, format="json"
    )

    assert long_description.status_code == 400 and "description" in long_description.json()["fields"]
    assert long_title.status_code == 400 and "title" in long_title.json()["fields"]
    assert fine.status_code == 201


def test_rule_pack_yaml_may_not_use_aliases_or_nest_without_end():
    bomb = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, "
            "*b, *b, *b, *b]\n")

    for text in (bomb, "[" * 20_000):
        with pytest.raises(RulePackInvalidError):
            rulepack_parse_yaml(text=text)


# --- NUL in query strings, the admin too ---------------------------------------------------------


def test_nul_in_a_filter_is_a_400_in_the_api_and_the_admin(client_for, buyer_us, officer):
    api = client_for(buyer_us).get("/api/v1/wallet/deposits/?status=%00")
    admin = Client()
    admin.force_login(officer.user)
    officer.user.is_staff = officer.user.is_superuser = True
    officer.user.save()

    admin_response = admin.get("/admin/marketplace/deposit/?status__exact=%00")

    assert api.status_code == 400 and api.json() == {"code": "invalid_characters", "message": api.json()["message"],
                                                     "fields": {"status": ["contains a NUL character"]}}
    assert admin_response.status_code == 400 and admin_response.json()["code"] == "invalid_characters"


def test_huge_numbers_in_filters_and_pages_are_never_500s(client_for, buyer_us, officer):
    huge = "9" * 5000
    for url in (
        f"/api/v1/datasets/?price_min={huge}",
        f"/api/v1/datasets/?price_max=-{huge}",
        f"/api/v1/datasets/?page={huge}",
        f"/api/v1/datasets/?page_size={huge}",
        "/api/v1/trades/?price_min=1e999999",
    ):
        assert client_for(buyer_us).get(url).status_code < 500, url
    assert client_for(officer).get(f"/api/v1/reviews/?older_than_hours={huge}").status_code == 400


# --- production-shaped defaults ------------------------------------------------------------------


def test_make_run_is_not_debug():
    makefile = (ROOT / "Makefile").read_text()

    supervise = makefile.split("\nSUPERVISE = ")[1].split("\n\n")[0]  # how `make run` starts the processes

    assert re.search(r"^DJANGO_DEBUG \?= 0$", makefile, re.M)
    assert "$(SUPERVISE)" in makefile.split("\nrun:")[1].split("\n\n")[0]
    assert "DJANGO_DEBUG=$(DJANGO_DEBUG) " in supervise and "DJANGO_DEBUG:-" not in makefile


def test_settings_default_to_no_debug_and_no_browsable_api():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "ELEMENTA_BROWSABLE_API")}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, len(s.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES']), '127.0.0.1' in s.ALLOWED_HOSTS, "
        "'localhost' in s.ALLOWED_HOSTS)"
    )
    run = [sys.executable, "-c", code]
    default = subprocess.run(
        run,
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    browsable = subprocess.run(
        run,
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "ELEMENTA_BROWSABLE_API": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert default.stdout.split() == ["False", "1", "True", "True"]
    assert browsable.stdout.split()[1] == "2"


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_urls_are_json_404s_with_debug_on_or_off(client, settings, debug):
    settings.DEBUG = debug

    for url in ("/api/v1/no-such-thing/", "/api/v1/datasets/a/b/c/", "/api/v2/"):
        response = client.get(url)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", url
        assert response.json()["code"] == "not_found" and b"URLconf" not in response.content


def test_a_browser_gets_json_not_the_browsable_api(client_for, buyer_us):
    response = client_for(buyer_us).get("/api/v1/datasets/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"


def test_api_responses_are_not_cached_and_cannot_be_framed_or_sniffed(client_for, buyer_us, client):
    for response in (client_for(buyer_us).get("/api/v1/me/"), client.get("/api/v1/me/"), client.get("/api/v1/nope/")):
        assert response["Cache-Control"] == "no-store"
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_swagger_ui_and_the_admin_work_under_their_policy(client):
    docs = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")
    login = client.get("/admin/login/")

    assert docs.status_code == 200 and "script-src 'self'" in docs["Content-Security-Policy"]
    assert not re.search(rb"<script>(?!\s*</script>)", docs.content), "an inline script would be blocked"
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert login.status_code == 200 and "frame-ancestors 'none'" in login["Content-Security-Policy"]


def test_static_files_are_served_without_debug(client, settings):
    assert settings.DEBUG is False
    for path in ("/static/admin/css/base.css", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        response.close()
