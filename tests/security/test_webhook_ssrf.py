"""Webhooks are no way into our network (SSRF): a member chooses the URL, our server makes the request.

With the defaults (`make run` and production alike) only https to public addresses is accepted, at
registration and again at every attempt; the address checked is the address connected to, so a
name that resolves elsewhere a moment later (DNS rebinding) reaches nothing; TLS is verified
against the URL's host name; and nothing a receiver answers besides its status comes back.

Name resolution is replaced by a table for `*.test` names (real DNS is neither cheap nor
controllable); every other lookup, and every connection, is real.
"""

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from django.conf import settings as django_settings
from django.test import override_settings

from marketplace.models import WebhookDelivery, WebhookEndpoint
from marketplace.services import webhooks as services
from marketplace.services.webhooks import WebhookTarget, webhook_deliver, webhook_endpoint_create, webhook_http_post
from tests.marketplace.test_webhooks import Receiver

PUBLIC = "93.184.216.34"  # a public address; nothing here ever connects to it for real

# Every class of address a webhook must not reach, as a URL host, and the words of the reason.
DENIED = [
    ("127.0.0.1:6379", "loopback"), ("127.0.0.1:5432", "loopback"), ("127.0.0.1:22", "loopback"), ("[::1]", "loopback"),
    ("10.0.0.1", "private"), ("172.16.0.1", "private"), ("192.168.1.10", "private"),
    ("169.254.169.254", "link-local"), ("[fe80::1]", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"), ("[ff02::1]", "multicast"),
    ("0.0.0.0", "unspecified"), ("[::]", "unspecified"),
    ("255.255.255.255", "broadcast"), ("240.0.0.1", "reserved"), ("198.18.0.1", "benchmarking"),
    ("192.0.2.1", "documentation"), ("198.51.100.7", "documentation"), ("203.0.113.9", "documentation"),
    ("[2001:db8::1]", "documentation"),
    ("[64:ff9b::7f00:1]", "NAT64 address (carrying 127.0.0.1, a loopback"), ("[64:ff9b::808:808]", "NAT64"),
    ("[64:ff9b:1::1]", "local-use NAT64"),
    ("[2002:7f00:1::1]", "6to4 address (carrying 127.0.0.1, a loopback"), ("[2002:808:808::1]", "6to4"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "Teredo"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped address (carrying 127.0.0.1"), ("[::ffff:a00:1]", "IPv4-mapped"),
    ("[::127.0.0.1]", "IPv4-compatible address (carrying 127.0.0.1"),
    ("[fec0::1]", "site-local"), ("[fd00::1]", "unique local"), ("[fc00::1]", "unique local"),
]


@pytest.fixture(autouse=True)
def defaults(settings: Any) -> None:
    """What `make run` and production have: no host exempt from the check."""
    settings.ELEMENTA_WEBHOOK_ALLOWED_HOSTS = ()


class Dns(dict[str, Callable[[], list[str]]]):
    """Names under .test resolve to what their function returns at the time of the lookup;
    `calls` counts the lookups of each name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    table = Dns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(".test"):
            return real(host, port, *args, **kwargs)
        table.calls[name] = table.calls.get(name, 0) + 1
        if name not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        number = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, number, 0, 0)) if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, number))
            for a in table[name]()
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on 127.0.0.1 that accepts nothing itself: the kernel queues any connection, so
    `connected(listener)` tells afterwards, without waiting, whether anyone connected."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def register(client: Any, url: str) -> Any:
    return client.post("/api/v1/webhooks/", {"url": url, "events": ["trade.decided"]}, format="json")


# --- registration -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "why"), DENIED)
def test_registration_refuses_every_non_public_address(client_for, buyer_eu, host, why):
    client = client_for(buyer_eu)
    for scheme in ("https", "http"):
        refused = register(client, f"{scheme}://{host}/hooks")

        assert (refused.status_code, refused.json()["code"]) == (400, "webhook_url_not_allowed"), refused.json()
        (reason,) = refused.json()["fields"]["url"]
        assert why in reason and why in refused.json()["message"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "why"), DENIED)
def test_registration_refuses_a_name_that_resolves_to_a_non_public_address(client_for, buyer_eu, dns, host, why):
    address = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.index("]")]
    dns["inside.test"] = lambda: [address]

    refused = register(client_for(buyer_eu), "https://inside.test/hooks")

    assert (refused.status_code, refused.json()["code"]) == (400, "webhook_url_not_allowed")
    assert refused.json()["fields"]["url"][0].startswith(f"inside.test resolves to {ipaddress.ip_address(address)}, ")
    assert why in refused.json()["fields"]["url"][0]


@pytest.mark.django_db
def test_one_denied_address_among_public_ones_is_enough_to_refuse(client_for, buyer_eu, dns):
    dns["mixed.test"] = lambda: [PUBLIC, "2606:4700::1111", "10.0.0.5"]

    refused = register(client_for(buyer_eu), "https://mixed.test/hooks")

    assert refused.json()["code"] == "webhook_url_not_allowed"
    assert refused.json()["fields"]["url"] == ["mixed.test resolves to 10.0.0.5, a private address"]


@pytest.mark.django_db
def test_a_public_https_host_is_accepted_and_plain_http_is_not(client_for, buyer_eu, dns):
    dns["public.test"] = lambda: [PUBLIC, "2606:4700::1111"]
    client = client_for(buyer_eu)

    assert register(client, "https://public.test/hooks").status_code == 201
    plain = register(client, "http://public.test/hooks")
    assert (plain.status_code, plain.json()["code"]) == (400, "webhook_url_invalid")
    assert plain.json()["fields"] == {"url": ["it must use https"]}


@pytest.mark.django_db
def test_changing_the_url_to_a_denied_address_is_refused_and_changes_nothing(client_for, buyer_eu, dns):
    dns["public.test"] = lambda: [PUBLIC]
    client = client_for(buyer_eu)
    endpoint_id = register(client, "https://public.test/hooks").json()["id"]

    metadata = {"url": "https://169.254.169.254/latest/meta-data/"}
    refused = client.patch(f"/api/v1/webhooks/{endpoint_id}/", metadata, format="json")

    assert (refused.status_code, refused.json()["code"]) == (400, "webhook_url_not_allowed")
    assert WebhookEndpoint.objects.get(pk=endpoint_id).url == "https://public.test/hooks"


@pytest.mark.django_db
def test_the_allow_list_is_explicit_and_narrow(client_for, buyer_eu, dns):
    dns["receiver.test"] = lambda: ["127.0.0.1"]
    client = client_for(buyer_eu)
    with override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=("receiver.test", "10.1.0.0/16")):
        assert register(client, "http://receiver.test:9000/hooks").status_code == 201  # listed by name
        assert register(client, "http://10.1.2.3/hooks").status_code == 201  # inside a listed network
        assert register(client, "https://10.2.0.1/hooks").json()["code"] == "webhook_url_not_allowed"
        assert register(client, "https://127.0.0.1/hooks").json()["code"] == "webhook_url_not_allowed"


def test_make_run_and_production_allow_no_host_by_default():
    """The setting as config/settings.py reads it from an environment without it."""
    code = "import config.settings as s; print(repr(s.ELEMENTA_WEBHOOK_ALLOWED_HOSTS))"
    env = {k: v for k, v in os.environ.items() if k != "ELEMENTA_WEBHOOK_ALLOWED_HOSTS"}
    for production in ("0", "1"):
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=60,
            env={**env, "ELEMENTA_PRODUCTION": production, "DJANGO_SECRET_KEY": "test-only"},
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "()"


# --- sending --------------------------------------------------------------------------------------


def endpoint_with(buyer_eu: Any, url: str) -> WebhookEndpoint:
    """An endpoint stored as registration left it (the address may change afterwards)."""
    return webhook_endpoint_create(membership=buyer_eu, url=url, events=["trade.decided"])


def ping(endpoint: WebhookEndpoint, monkeypatch: pytest.MonkeyPatch) -> WebhookDelivery:
    monkeypatch.setattr("config.enqueue.send", lambda *args: None)
    delivery = services.webhook_endpoint_ping(endpoint_id=endpoint.id)
    webhook_deliver(delivery_id=delivery.id)
    delivery.refresh_from_db()
    return delivery


@pytest.mark.django_db
def test_a_name_that_moved_to_loopback_after_registration_is_refused_when_sending(buyer_eu, dns, listener, monkeypatch):
    port = listener.getsockname()[1]
    dns["rebind.test"] = lambda: [PUBLIC]
    endpoint = endpoint_with(buyer_eu, f"https://rebind.test:{port}/hooks")
    dns["rebind.test"] = lambda: ["127.0.0.1"]

    delivery = ping(endpoint, monkeypatch)

    (attempt,) = delivery.attempt_log.all()
    assert attempt.status_code is None
    assert attempt.error == "refused: rebind.test resolves to 127.0.0.1, a loopback address"
    assert not connected(listener)


@pytest.mark.django_db
def test_dns_rebinding_between_the_check_and_the_connection_reaches_nothing(buyer_eu, dns, listener, monkeypatch):
    """The name answers a public address to the check and 127.0.0.1 to every later lookup: the
    request goes to the checked address, and the name is looked up once per attempt."""
    port = listener.getsockname()[1]
    answers = iter([[PUBLIC], [PUBLIC]])  # registration, then the attempt's one lookup
    dns["rebind.test"] = lambda: next(answers, ["127.0.0.1"])
    endpoint = endpoint_with(buyer_eu, f"https://rebind.test:{port}/hooks")
    dialled: list[tuple[str, int]] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        dialled.append(address)  # the public address cannot be reached from a test: stop here
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(urllib3.connection.connection, "create_connection", create_connection)
    delivery = ping(endpoint, monkeypatch)

    assert dialled == [(PUBLIC, port)]
    assert dns.calls["rebind.test"] == 2
    assert not connected(listener)
    (attempt,) = delivery.attempt_log.all()
    assert attempt.status_code is None and "Connection refused" in attempt.error


@pytest.mark.django_db
def test_an_endpoint_stored_before_the_check_is_refused_when_sending(buyer_eu, listener, monkeypatch):
    port = listener.getsockname()[1]
    endpoint = WebhookEndpoint.objects.create(organisation_id=buyer_eu.organisation_id, url=f"http://127.0.0.1:{port}/",
                                              events=["trade.decided"], secret="whsec_x")

    delivery = ping(endpoint, monkeypatch)

    assert delivery.attempt_log.get().error == "refused: 127.0.0.1 is a loopback address"
    assert not connected(listener)


@pytest.mark.django_db
def test_deliveries_keep_status_and_timing_never_the_answer(client_for, buyer_eu, monkeypatch):
    receiver = Receiver()
    receiver.thread.start()
    try:
        receiver.fail_next(1, status=500)
        receiver.fail_body = b"redis_version:7.2.4 role:master"  # what an internal service might say
        with override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=("127.0.0.1",)):
            client = client_for(buyer_eu)
            endpoint_id = register(client, receiver.url).json()["id"]
            delivery = ping(WebhookEndpoint.objects.get(pk=endpoint_id), monkeypatch)
            webhook_deliver(delivery_id=delivery.id, now=delivery.next_attempt_at)
        listed = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/")
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()

    (shown,) = listed.json()["results"]
    attempts = [(a["number"], a["status_code"], a["error"]) for a in shown["attempts"]]
    assert attempts == [(1, 500, "HTTP 500"), (2, 200, "")]
    assert all(set(a) == {"number", "at", "url", "status_code", "error", "duration_ms"} for a in shown["attempts"])
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in shown["attempts"])
    assert "redis_version" not in listed.content.decode() and '"ok"' not in listed.content.decode()


@pytest.mark.django_db
def test_a_redirect_is_not_followed(buyer_eu, listener, monkeypatch):
    elsewhere = f"http://127.0.0.1:{listener.getsockname()[1]}/"

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", elsewhere)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=("127.0.0.1",)):
            delivery = ping(endpoint_with(buyer_eu, f"http://127.0.0.1:{server.server_address[1]}/"), monkeypatch)
    finally:
        server.shutdown()
        server.server_close()

    attempt = delivery.attempt_log.get()
    assert (attempt.status_code, attempt.error) == (307, "HTTP 307 (redirects are not followed)")
    assert not connected(listener)


# --- TLS to a pinned address --------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.test, made now by the openssl command."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[dict[str, Any]]:
    """HTTPS on 127.0.0.1 with the hooks.test certificate; records the SNI name and each request's Host."""
    seen: dict[str, Any] = {"sni": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)

    class Server(ThreadingHTTPServer):
        def get_request(self) -> Any:
            conn, address = super().get_request()
            return context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), address

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen["port"] = server.server_address[1]
    yield seen
    server.shutdown()
    server.server_close()


def post(server: dict[str, Any], host: str, ca_certs: str | None) -> int:
    target = WebhookTarget(scheme="https", host=host, port=server["port"], path="/hooks")
    return webhook_http_post(target=target, address=ipaddress.ip_address("127.0.0.1"), body=b"{}",
                             headers={"Content-Type": "application/json"}, ca_certs=ca_certs)


def test_tls_to_the_pinned_address_is_verified_against_the_url_host_name(https_server, certificate):
    assert post(https_server, "hooks.test", ca_certs=str(certificate[0])) == 204

    assert https_server["sni"] == ["hooks.test"]  # the name, not the address we connected to
    assert https_server["hosts"] == [f"hooks.test:{https_server['port']}"]


def test_a_certificate_for_another_name_is_refused(https_server, certificate):
    with pytest.raises(urllib3.exceptions.SSLError, match="hostname|match"):
        post(https_server, "other.test", ca_certs=str(certificate[0]))

    assert https_server["hosts"] == []


def test_a_certificate_nobody_vouches_for_is_refused(https_server):
    with pytest.raises(urllib3.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        post(https_server, "hooks.test", ca_certs=None)  # the public trust store

    assert https_server["hosts"] == []
