"""Webhooks, against a real HTTP receiver on 127.0.0.1: signed, retried on a schedule, every attempt
recorded, each event delivered once per endpoint, and invisible to other organisations.

127.0.0.1 is refused by default (tests/security/test_webhook_ssrf.py); these tests allow it the way a
developer running a local receiver does, with ELEMENTA_WEBHOOK_ALLOWED_HOSTS."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from marketplace.errors import WebhookEventUnknownError, WebhookUrlInvalidError, WebhookUrlNotAllowedError
from marketplace.models import Membership, WebhookDelivery, WebhookEndpoint
from marketplace.services import webhooks as services
from marketplace.services.webhooks import delivery as delivery_services
from marketplace.services.webhooks import (
    webhook_deliver,
    webhook_endpoint_create,
    webhook_fanout,
    webhook_secret_rotate,
    webhook_signature_verify,
    webhooks_sweep,
)
from tests.waiting import eventually

# --- a real receiver ----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def verifies_with(self, secret: str) -> bool:
        return webhook_signature_verify(
            secret=secret,
            body=self.body,
            timestamp=self.headers["Elementa-Timestamp"],
            signature_header=self.headers["Elementa-Signature"],
        )


class Receiver:
    """http.server on an ephemeral port in a thread: records every request, answers 200, or
    `status` for the next `failures` requests."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.failures, self.fail_status, self.fail_body, self.delay = 0, 500, b"receiver says no", 0.0
        self.gate = threading.Event()  # cleared: each request waits inside the receiver until it is set
        self.gate.set()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    receiver.requests.append(Received(self.path, self.headers, body))
                    failing = receiver.failures > 0
                    receiver.failures -= failing
                    receiver._changed.notify_all()
                time.sleep(receiver.delay)
                receiver.gate.wait(timeout=30)
                code, reply = (receiver.fail_status, receiver.fail_body) if failing else (200, b'{"ok": true}')
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def fail_next(self, count: int, status: int = 500) -> None:
        self.failures, self.fail_status = count, status

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"the receiver got {len(self.requests)} requests in {timeout}s, expected {count}")
            return list(self.requests)


@pytest.fixture(autouse=True)
def local_receivers_allowed(settings: Any) -> None:
    """The explicit development setting for a receiver on this machine."""
    settings.ELEMENTA_WEBHOOK_ALLOWED_HOSTS = ("127.0.0.1",)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Deliveries published to the broker (delivery id, countdown) instead of publishing them."""
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(
        "config.enqueue.send", lambda name, args, countdown, queue: sent.append((args[0], countdown or 0))
    )
    return sent


@pytest.fixture
def deliver(django_capture_on_commit_callbacks: Any) -> Callable[..., str | None]:
    """webhook_deliver, running what it leaves for after commit (a retry's countdown publication)."""

    def run(delivery_id: uuid.UUID | str, now: Any = None) -> str | None:
        with django_capture_on_commit_callbacks(execute=True):
            return webhook_deliver(delivery_id=delivery_id, now=now)

    return run


def endpoint_for(membership: Membership, url: str, events: tuple[str, ...] = services.EVENT_KINDS) -> WebhookEndpoint:
    return webhook_endpoint_create(membership=membership, url=url, events=list(events))


def status_changed(trade_id: object | None = None, event_id: str | None = None) -> dict[str, Any]:
    trade_id = trade_id or uuid.uuid4()
    return {"event_id": event_id or f"evt_{uuid.uuid4().hex[:8]}", "kind": "trade.status_changed",
            "payload": {"event": "trade.status_changed", "trade": trade_id, "at": timezone.now(),
                        "data": {"from": "checking", "to": "approved", "reason": "engine decided allow"}}}


def fan_out(organisations: list[Membership], event: dict[str, Any]) -> None:
    webhook_fanout(organisation_ids=[m.organisation_id for m in organisations], **event)


def only_delivery(endpoint: WebhookEndpoint) -> WebhookDelivery:
    (delivery,) = WebhookDelivery.objects.filter(endpoint=endpoint)
    return delivery


# --- signing and content ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_is_signed_over_timestamp_and_body_and_carries_the_payload(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    event = status_changed()
    fan_out([buyer_eu], event)
    delivery = only_delivery(endpoint)

    assert webhook_deliver(delivery_id=delivery.id) == "delivered"

    (request,) = receiver.wait_for(1)
    assert request.path == "/hooks"
    assert request.json()["data"] == event["payload"]["data"]
    assert request.json()["trade"] == str(event["payload"]["trade"])
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Elementa-Event"] == "trade.status_changed"
    assert request.headers["Elementa-Event-Id"] == event["event_id"]
    assert request.headers["Elementa-Delivery"] == str(delivery.id)
    assert abs(int(request.headers["Elementa-Timestamp"]) - time.time()) < 60
    assert request.verifies_with(endpoint.secret)
    assert not request.verifies_with("whsec_someone-else")
    # The signature covers the timestamp: the same body under another timestamp does not verify.
    forged = int(request.headers["Elementa-Timestamp"]) - 1
    assert not webhook_signature_verify(secret=endpoint.secret, body=request.body, timestamp=str(forged),
                                        signature_header=request.headers["Elementa-Signature"], tolerance=10**9)
    # An old (replayed) request is refused by the tolerance.
    assert not webhook_signature_verify(
        secret=endpoint.secret,
        body=request.body,
        timestamp=request.headers["Elementa-Timestamp"],
        signature_header=request.headers["Elementa-Signature"],
        now=time.time() + 301,
    )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("delivered", 1, None)
    (attempt,) = delivery.attempt_log.all()
    assert (attempt.number, attempt.status_code, attempt.error, attempt.url) == (1, 200, "", receiver.url)
    assert attempt.duration_ms >= 0 and not hasattr(attempt, "response_body")  # the status and timing, never the answer


@pytest.mark.django_db
def test_the_stored_payload_is_plain_json_and_is_exactly_the_body(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    event = status_changed()
    fan_out([buyer_eu], event)

    webhook_deliver(delivery_id=only_delivery(endpoint).id)

    (request,) = receiver.wait_for(1)
    assert request.json() == only_delivery(endpoint).payload
    assert request.json()["at"] == event["payload"]["at"].isoformat()


# --- fan-out --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_fanout_publishes_each_delivery_only_after_commit(
    receiver, buyer_eu, provider_eu, published, django_capture_on_commit_callbacks
):
    buyer_endpoint = endpoint_for(buyer_eu, receiver.url)
    provider_endpoint = endpoint_for(provider_eu, receiver.url)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            fan_out([buyer_eu, provider_eu], status_changed())
            assert published == []  # nothing leaves before the transaction commits

    assert len(callbacks) == 2
    deliveries = {str(d.id) for d in WebhookDelivery.objects.filter(endpoint__in=[buyer_endpoint, provider_endpoint])}
    assert {delivery_id for delivery_id, _ in published} == deliveries
    assert all(countdown == 0 for _, countdown in published)


@pytest.mark.django_db
def test_an_event_fanned_out_twice_is_delivered_once(receiver, buyer_eu, published, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    event = status_changed()

    with django_capture_on_commit_callbacks(execute=True):
        fan_out([buyer_eu], event)
    with django_capture_on_commit_callbacks(execute=True):
        fan_out([buyer_eu], event)
    for delivery_id, _ in published:
        webhook_deliver(delivery_id=delivery_id)

    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    assert len(published) == 1  # the second fan-out created nothing, so published nothing
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_unsubscribed_kinds_inactive_endpoints_and_other_organisations_get_nothing(
    receiver, buyer_eu, buyer_us, published
):
    grants_only = endpoint_for(buyer_eu, receiver.url, events=("grant.issued", "grant.revoked"))
    disabled = endpoint_for(buyer_eu, receiver.url, events=("trade.status_changed",))
    services.webhook_endpoint_update(endpoint_id=disabled.id, actor=buyer_eu.user, active=False)
    bystander = endpoint_for(buyer_us, receiver.url)
    subscribed = endpoint_for(buyer_eu, receiver.url, events=("trade.status_changed",))

    fan_out([buyer_eu], status_changed())

    assert not WebhookDelivery.objects.filter(endpoint__in=[grants_only, disabled, bystander]).exists()
    assert WebhookDelivery.objects.filter(endpoint=subscribed).count() == 1


@pytest.mark.django_db
def test_a_delivery_to_an_endpoint_disabled_after_fanout_fails_without_a_request(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    services.webhook_endpoint_update(endpoint_id=endpoint.id, actor=buyer_eu.user, active=False)

    assert webhook_deliver(delivery_id=only_delivery(endpoint).id) is None

    assert receiver.requests == []
    assert only_delivery(endpoint).status == "failed"


# --- retries --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_receiver_is_retried_on_the_schedule_and_every_attempt_is_recorded(
    receiver, buyer_eu, published, deliver
):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    delivery = only_delivery(endpoint)
    receiver.fail_next(2, status=503)

    started = timezone.now()
    assert deliver(delivery.id, now=started) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_error.startswith("HTTP 503")
    assert timedelta(seconds=10) <= delivery.next_attempt_at - started < timedelta(seconds=11)
    assert published[-1] == (str(delivery.id), 10)  # the retry rides on a countdown

    # Not due yet: a duplicate message (or an early call) sends nothing.
    assert deliver(delivery.id, now=started + timedelta(seconds=5)) is None
    assert len(receiver.requests) == 1

    assert deliver(delivery.id, now=delivery.next_attempt_at) == "pending"
    delivery.refresh_from_db()
    assert published[-1] == (str(delivery.id), 30)
    assert deliver(delivery.id, now=delivery.next_attempt_at) == "delivered"

    requests = receiver.wait_for(3)
    assert len({r.headers["Elementa-Delivery"] for r in requests}) == 1  # the same delivery, attempted thrice
    assert all(r.verifies_with(endpoint.secret) and r.body == requests[0].body for r in requests)
    attempts = list(only_delivery(endpoint).attempt_log.values_list("number", "status_code", "error"))
    assert attempts == [(1, 503, "HTTP 503"), (2, 503, "HTTP 503"), (3, 200, "")]


@pytest.mark.django_db
def test_an_unreachable_receiver_is_an_attempt_with_an_error_not_a_crash(buyer_eu, published):
    receiver = Receiver()  # bound, never serving, then closed: connections are refused
    url = receiver.url
    receiver.server.server_close()
    endpoint = endpoint_for(buyer_eu, url)
    fan_out([buyer_eu], status_changed())

    assert webhook_deliver(delivery_id=only_delivery(endpoint).id) == "pending"

    (attempt,) = only_delivery(endpoint).attempt_log.all()
    assert attempt.status_code is None and "ConnectionError" in attempt.error


@pytest.mark.django_db
def test_a_slow_receiver_times_out_and_nothing_of_a_long_answer_is_kept(receiver, buyer_eu, published, monkeypatch):
    monkeypatch.setattr(delivery_services, "READ_TIMEOUT", 0.3)
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    delivery = only_delivery(endpoint)
    receiver.delay = 1.0

    assert webhook_deliver(delivery_id=delivery.id) == "pending"
    receiver.delay = 0.0
    receiver.fail_next(1, status=400)
    receiver.fail_body = ("é" * 5000).encode()
    assert webhook_deliver(delivery_id=delivery.id, now=timezone.now() + timedelta(minutes=1)) == "pending"

    timed_out, refused = only_delivery(endpoint).attempt_log.all()
    assert timed_out.status_code is None and "ReadTimeout" in timed_out.error and timed_out.duration_ms >= 300
    assert refused.status_code == 400 and refused.error == "HTTP 400" and "é" not in str(vars(refused))


@pytest.mark.django_db
@override_settings(ELEMENTA_WEBHOOK_BACKOFF=(10, 600))
def test_long_waits_are_left_to_the_sweeper_and_the_delivery_fails_after_the_last_attempt(
    receiver, buyer_eu, published, deliver
):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    delivery = only_delivery(endpoint)
    receiver.fail_next(10)
    now = timezone.now()

    deliver(delivery.id, now=now)
    delivery.refresh_from_db()
    deliver(delivery.id, now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert [countdown for _, countdown in published] == [10]  # 600 s is above what a countdown may carry
    published.clear()

    assert webhooks_sweep(now=delivery.next_attempt_at - timedelta(seconds=1)) == 0
    assert webhooks_sweep(now=delivery.next_attempt_at + timedelta(minutes=1)) == 1
    assert published == [(str(delivery.id), 0)]

    assert deliver(delivery.id, now=delivery.next_attempt_at) == "failed"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.next_attempt_at) == (3, None)
    assert delivery.attempt_log.count() == 3 and len(receiver.requests) == 3
    assert webhooks_sweep(now=now + timedelta(days=1)) == 0


@pytest.mark.django_db
def test_the_sweeper_picks_up_an_attempt_whose_worker_died(receiver, buyer_eu, published, monkeypatch):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    delivery = only_delivery(endpoint)
    now = timezone.now()

    def die(claim, at):  # the worker is killed mid-request
        raise SystemExit

    monkeypatch.setattr(delivery_services, "_post", die)
    with pytest.raises(SystemExit):
        webhook_deliver(delivery_id=delivery.id, now=now)
    monkeypatch.undo()
    monkeypatch.setattr(
        "config.enqueue.send", lambda name, args, countdown, queue: published.append((args[0], countdown or 0))
    )

    assert webhooks_sweep(now=now + timedelta(seconds=30)) == 0  # still leased to the dead attempt
    assert webhooks_sweep(now=now + services.LEASE + services.SWEEP_GRACE) == 1
    assert webhook_deliver(delivery_id=delivery.id, now=now + services.LEASE) == "delivered"
    assert list(only_delivery(endpoint).attempt_log.values_list("number", flat=True)) == [1]


@pytest.mark.django_db
def test_recording_an_attempt_twice_records_it_once(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    now = timezone.now()
    claim = delivery_services._claim(delivery_id=only_delivery(endpoint).id, now=now)
    outcome = delivery_services._post(claim, now)

    assert delivery_services._record(claim=claim, outcome=outcome, started=now) == "delivered"
    assert delivery_services._record(claim=claim, outcome=outcome, started=now) == "delivered"

    assert only_delivery(endpoint).attempt_log.count() == 1


@pytest.mark.django_db
def test_a_broker_outage_never_fails_the_caller_and_the_sweeper_catches_up(
    receiver, buyer_eu, monkeypatch, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(buyer_eu, receiver.url)

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr("config.enqueue.send", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        fan_out([buyer_eu], status_changed())  # publishing fails after commit: logged, not raised

    sent: list[str] = []
    monkeypatch.setattr("config.enqueue.send", lambda name, args, countdown, queue: sent.append(args[0]))
    assert webhooks_sweep(now=timezone.now() + timedelta(minutes=1)) == 1
    assert sent == [str(only_delivery(endpoint).id)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_message_send_it_once(receiver, buyer_eu, published):
    """acks_late redelivers a message while the first worker still runs it (visibility timeout passed): the
    second finds the delivery leased and sends nothing; the row lock is not held during the call."""
    from django.db import connection

    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    delivery_id = only_delivery(endpoint).id
    receiver.gate.clear()  # the first worker's call stays open until the gate opens
    results: list[str | None] = []

    def worker() -> None:
        try:
            results.append(webhook_deliver(delivery_id=delivery_id))
        finally:
            connection.close()

    first, second = threading.Thread(target=worker), threading.Thread(target=worker)
    first.start()
    receiver.wait_for(1)  # the first worker holds the lease and is inside its HTTP call
    second.start()
    second.join(timeout=30)

    assert results == [None]  # the second found the delivery leased and sent nothing...
    assert first.is_alive()  # ...without waiting for the first worker's open call
    receiver.gate.set()
    first.join(timeout=30)
    assert sorted(results, key=str) == [None, "delivered"]
    assert len(receiver.requests) == 1
    assert only_delivery(endpoint).attempt_log.count() == 1


# --- secrets ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotating_the_secret_changes_the_signature(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    old_secret = endpoint.secret
    fan_out([buyer_eu], status_changed())
    webhook_deliver(delivery_id=only_delivery(endpoint).id)

    new_secret = webhook_secret_rotate(endpoint_id=endpoint.id, actor=buyer_eu.user).secret
    fan_out([buyer_eu], status_changed())
    webhook_deliver(delivery_id=WebhookDelivery.objects.get(endpoint=endpoint, status="pending").id)

    before, after = receiver.wait_for(2)
    assert new_secret != old_secret
    assert before.verifies_with(old_secret)
    assert after.verifies_with(new_secret) and not after.verifies_with(old_secret)
    assert before.headers["Elementa-Signature"] != after.headers["Elementa-Signature"]


@pytest.mark.django_db
def test_a_rotation_may_keep_the_old_secret_signing_for_a_while(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    old_secret = endpoint.secret
    new_secret = webhook_secret_rotate(
        endpoint_id=endpoint.id, actor=buyer_eu.user, keep_previous_for=timedelta(hours=1)
    ).secret
    fan_out([buyer_eu], status_changed())
    delivery = only_delivery(endpoint)
    receiver.fail_next(1)

    webhook_deliver(delivery_id=delivery.id)
    webhook_deliver(delivery_id=delivery.id, now=timezone.now() + timedelta(hours=2))

    overlapping, after_expiry = receiver.wait_for(2)
    assert overlapping.headers["Elementa-Signature"].count("v1=") == 2
    assert overlapping.verifies_with(new_secret) and overlapping.verifies_with(old_secret)
    assert after_expiry.headers["Elementa-Signature"].count("v1=") == 1
    assert not after_expiry.verifies_with(old_secret)


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["http://example.com/hooks", "ftp://example.com/", "example.com/hooks", "https://user:pw@example.com/", "https://"],
)
def test_only_https_urls_are_accepted(buyer_eu, url):
    with pytest.raises(WebhookUrlInvalidError):
        endpoint_for(buyer_eu, url)


@pytest.mark.django_db
def test_plain_http_only_to_allowed_hosts(buyer_eu):
    assert endpoint_for(buyer_eu, "https://hooks.example.com/elementa").url == "https://hooks.example.com/elementa"
    assert endpoint_for(buyer_eu, "http://127.0.0.1:8080/hooks").url == "http://127.0.0.1:8080/hooks"
    with override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=("localhost",)):
        assert endpoint_for(buyer_eu, "http://localhost:8080/hooks").url == "http://localhost:8080/hooks"
        with pytest.raises(WebhookUrlNotAllowedError, match="127.0.0.1 is a loopback address"):
            endpoint_for(buyer_eu, "http://127.0.0.1:8080/hooks")  # the name is allowed, not the address
    with override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=()), pytest.raises(WebhookUrlNotAllowedError):
        endpoint_for(buyer_eu, "http://127.0.0.1:8080/hooks")


@pytest.mark.django_db
@override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=())
def test_a_public_address_is_accepted(buyer_eu):
    assert endpoint_for(buyer_eu, "https://8.8.8.8/hooks").url == "https://8.8.8.8/hooks"


@pytest.mark.django_db
def test_the_address_is_checked_again_when_sending(receiver, buyer_eu, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)  # allowed when registered
    fan_out([buyer_eu], status_changed())

    with override_settings(ELEMENTA_WEBHOOK_ALLOWED_HOSTS=()):  # and no longer when sent
        assert webhook_deliver(delivery_id=only_delivery(endpoint).id) == "pending"

    assert receiver.requests == []
    (attempt,) = only_delivery(endpoint).attempt_log.all()
    assert attempt.status_code is None and attempt.error == "refused: 127.0.0.1 is a loopback address"


@pytest.mark.django_db
def test_event_kinds_come_from_a_closed_list(buyer_eu):
    with pytest.raises(WebhookEventUnknownError):
        endpoint_for(buyer_eu, "https://hooks.example.com/", events=("trade.status_changed", "trade.exploded"))
    with pytest.raises(WebhookEventUnknownError):
        endpoint_for(buyer_eu, "https://hooks.example.com/", events=())
    chosen = endpoint_for(
        buyer_eu, "https://hooks.example.com/", events=("grant.revoked", "trade.decided", "grant.revoked")
    )
    assert chosen.events == ["trade.decided", "grant.revoked"]


# --- HTTP API ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_secret_is_shown_on_creation_and_rotation_only(client_for, buyer_eu, receiver):
    client = client_for(buyer_eu)

    created = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "events": ["trade.status_changed", "trade.decided"], "description": "orders system"},
        format="json",
    )

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["trade.status_changed", "trade.decided"]
    assert body["created_by"] == buyer_eu.user.username and body["active"] is True
    endpoint_id = body["id"]
    assert "secret" not in client.get(f"/api/v1/webhooks/{endpoint_id}/").json()
    listed = client.get("/api/v1/webhooks/").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]

    rotated = client.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret/", format="json")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != body["secret"]
    assert WebhookEndpoint.objects.get(pk=endpoint_id).secret == rotated.json()["secret"]


@pytest.mark.django_db
def test_update_and_delete_own_endpoint(client_for, buyer_eu, receiver):
    client = client_for(buyer_eu)
    endpoint_id = client.post(
        "/api/v1/webhooks/", {"url": receiver.url, "events": ["grant.issued"]}, format="json"
    ).json()["id"]

    patched = client.patch(
        f"/api/v1/webhooks/{endpoint_id}/",
        {"events": ["grant.issued", "grant.revoked"], "active": False},
        format="json",
    )
    assert patched.status_code == 200
    assert (patched.json()["events"], patched.json()["active"], patched.json()["url"]) == (
        ["grant.issued", "grant.revoked"],
        False,
        receiver.url,
    )
    bad = client.patch(f"/api/v1/webhooks/{endpoint_id}/", {"url": "http://example.com/"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "webhook_url_invalid" and "url" in bad.json()["fields"]
    assert (
        client.put(
            f"/api/v1/webhooks/{endpoint_id}/", {"url": receiver.url, "events": ["grant.issued"]}, format="json"
        ).status_code
        == 405
    )

    assert client.delete(f"/api/v1/webhooks/{endpoint_id}/").status_code == 204
    assert client.get(f"/api/v1/webhooks/{endpoint_id}/").status_code == 404


@pytest.mark.django_db
def test_api_validation_errors_have_codes(client_for, buyer_eu):
    client = client_for(buyer_eu)

    http = client.post(
        "/api/v1/webhooks/", {"url": "http://example.com/hooks", "events": ["trade.decided"]}, format="json"
    )
    unknown = client.post(
        "/api/v1/webhooks/", {"url": "https://example.com/hooks", "events": ["trade.exploded"]}, format="json"
    )
    empty = client.post("/api/v1/webhooks/", {"url": "https://example.com/hooks", "events": []}, format="json")

    assert (http.status_code, http.json()["code"]) == (400, "webhook_url_invalid")
    assert http.json()["fields"] == {"url": ["it must use https"]}
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid") and "events" in unknown.json()["fields"]
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid")


@pytest.mark.django_db
def test_ping_then_deliveries_with_their_attempts(
    client_for, buyer_eu, receiver, published, django_assert_max_num_queries
):
    client = client_for(buyer_eu)
    endpoint_id = client.post(
        "/api/v1/webhooks/", {"url": receiver.url, "events": ["grant.issued"]}, format="json"
    ).json()["id"]
    receiver.fail_next(1)

    ping = client.post(f"/api/v1/webhooks/{endpoint_id}/test/")
    assert ping.status_code == 202 and ping.json()["kind"] == "ping" and ping.json()["status"] == "pending"
    delivery_id = ping.json()["id"]
    webhook_deliver(delivery_id=delivery_id)
    webhook_deliver(delivery_id=delivery_id, now=timezone.now() + timedelta(minutes=1))
    for _ in range(3):
        fan_out(
            [buyer_eu],
            {"event_id": f"evt_{uuid.uuid4().hex}", "kind": "grant.issued", "payload": {"event": "grant.issued"}},
        )

    (first, second) = receiver.wait_for(2)
    assert first.headers["Elementa-Event"] == "ping" and first.json()["endpoint"] == endpoint_id
    assert second.verifies_with(WebhookEndpoint.objects.get(pk=endpoint_id).secret)

    with django_assert_max_num_queries(6):
        page = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/?page_size=10")
    assert page.status_code == 200 and page.json()["count"] == 4
    pings = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/?kind=ping").json()["results"]
    assert [d["id"] for d in pings] == [delivery_id]
    assert pings[0]["status"] == "delivered" and pings[0]["attempt_count"] == 2
    assert [(a["number"], a["status_code"]) for a in pings[0]["attempts"]] == [(1, 500), (2, 200)]
    assert pings[0]["attempts"][0]["error"] == "HTTP 500" and "response_body" not in pings[0]["attempts"][0]
    assert client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/?status=pending").json()["count"] == 3
    assert client.get(f"/api/v1/webhooks/deliveries/{delivery_id}/").json()["attempt_count"] == 2


@pytest.mark.django_db
def test_redeliver_sends_the_same_event_as_a_new_delivery(client_for, buyer_eu, receiver, published):
    client = client_for(buyer_eu)
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    original = only_delivery(endpoint)

    pending = client.post(f"/api/v1/webhooks/deliveries/{original.id}/redeliver/")
    assert (pending.status_code, pending.json()["code"]) == (409, "webhook_delivery_pending")

    webhook_deliver(delivery_id=original.id)
    again = client.post(f"/api/v1/webhooks/deliveries/{original.id}/redeliver/")
    assert again.status_code == 202
    assert again.json()["redelivery_of"] == str(original.id) and again.json()["event_id"] == original.event_id
    webhook_deliver(delivery_id=again.json()["id"])

    first, second = receiver.wait_for(2)
    assert first.headers["Elementa-Event-Id"] == second.headers["Elementa-Event-Id"] == original.event_id
    assert first.headers["Elementa-Delivery"] != second.headers["Elementa-Delivery"]
    assert first.body == second.body


@pytest.mark.django_db
def test_another_organisations_endpoints_and_deliveries_are_404(client_for, buyer_eu, buyer_us, receiver, published):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    fan_out([buyer_eu], status_changed())
    delivery = only_delivery(endpoint)
    webhook_deliver(delivery_id=delivery.id)
    intruder = client_for(buyer_us)

    assert intruder.get("/api/v1/webhooks/").json()["count"] == 0
    for method, path in [
        ("get", f"/api/v1/webhooks/{endpoint.id}/"),
        ("patch", f"/api/v1/webhooks/{endpoint.id}/"),
        ("delete", f"/api/v1/webhooks/{endpoint.id}/"),
        ("post", f"/api/v1/webhooks/{endpoint.id}/rotate-secret/"),
        ("post", f"/api/v1/webhooks/{endpoint.id}/test/"),
        ("get", f"/api/v1/webhooks/{endpoint.id}/deliveries/"),
        ("get", f"/api/v1/webhooks/deliveries/{delivery.id}/"),
        ("post", f"/api/v1/webhooks/deliveries/{delivery.id}/redeliver/"),
    ]:
        response = getattr(intruder, method)(path, {"active": False} if method == "patch" else None, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["code"] == "not_found"

    endpoint.refresh_from_db()
    assert endpoint.active and WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    assert client_for(None).get("/api/v1/webhooks/").status_code == 401


# --- a real worker ----------------------------------------------------------------------------------


def wait_for_delivery(predicate: Callable[[], bool], timeout: float = 40.0) -> None:
    eventually(predicate, timeout=timeout, interval=0.1, message="not delivered")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_delivers_after_commit_and_retries_a_failure(celery_worker, receiver, buyer_eu):
    endpoint = endpoint_for(buyer_eu, receiver.url)
    receiver.fail_next(1, status=502)

    with transaction.atomic():
        fan_out([buyer_eu], status_changed())

    first = receiver.wait_for(1)[0]
    assert first.verifies_with(endpoint.secret)
    # The second attempt waits out the first backoff step (10 s) on a task countdown.
    wait_for_delivery(lambda: only_delivery(endpoint).status == "delivered")
    delivery = only_delivery(endpoint)
    assert [a.status_code for a in delivery.attempt_log.all()] == [502, 200]
    assert len(receiver.requests) == 2 and receiver.requests[1].body == first.body


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_trade_through_the_worker_notifies_both_parties(
    celery_worker, rulepacks, client_for, receiver, buyer_eu, provider_eu, eu_personal
):
    buyer_endpoint = endpoint_for(buyer_eu, receiver.url)
    provider_endpoint = endpoint_for(provider_eu, receiver.url, events=("grant.issued",))

    response = client_for(buyer_eu).post("/api/v1/trades/", {"dataset": str(eu_personal.id)}, format="json")
    assert response.status_code == 201, response.json()
    trade_id = response.json()["id"]

    def settled_and_delivered() -> bool:
        kinds = list(
            WebhookDelivery.objects.filter(endpoint=buyer_endpoint, status="delivered").values_list("kind", flat=True)
        )
        return kinds.count("trade.status_changed") == 3 and "grant.issued" in kinds and "trade.decided" in kinds

    wait_for_delivery(settled_and_delivered)
    assert set(WebhookDelivery.objects.filter(endpoint=provider_endpoint).values_list("kind", flat=True)) == {
        "grant.issued"
    }
    buyer_requests = [r for r in receiver.requests if r.verifies_with(buyer_endpoint.secret)]
    transitions = sorted(
        (r.json()["data"]["from"], r.json()["data"]["to"])
        for r in buyer_requests
        if r.headers["Elementa-Event"] == "trade.status_changed"
    )
    assert transitions == [("", "checking"), ("approved", "settled"), ("checking", "approved")]
    assert all(
        r.json()["trade"] == trade_id for r in buyer_requests if r.headers["Elementa-Event"].startswith("trade.")
    )
    decided = next(r.json() for r in buyer_requests if r.headers["Elementa-Event"] == "trade.decided")
    assert decided["data"]["outcome"] == "allow"


def test_fanout_cache_sees_an_endpoint_saved_after_it_was_loaded_and_takes_ids_as_strings(buyer_eu):
    """The per-process set of subscribed organisations (services/webhooks/subscriptions.py)."""
    from marketplace.services.webhooks.subscriptions import subscriptions

    org = buyer_eu.organisation
    assert not subscriptions.may_have_endpoints([org.id])  # loaded: nobody subscribed

    endpoint_for(buyer_eu, "https://hooks.example.com/elementa")

    assert subscriptions.may_have_endpoints([org.id])
    assert subscriptions.may_have_endpoints([str(org.id)])


@pytest.mark.django_db(transaction=True)
def test_a_checks_deliveries_go_as_one_task_per_endpoint_and_each_is_sent_once(
    rulepacks, receiver, buyer_eu, provider_eu, eu_personal, monkeypatch
):
    from marketplace.services.trade_compliance import trade_check_compliance
    from marketplace.services.trades import trade_create
    from marketplace.tasks import webhook_deliver_many_task

    buyer_endpoint = endpoint_for(buyer_eu, receiver.url)
    provider_endpoint = endpoint_for(provider_eu, receiver.url, events=("grant.issued",))
    sent: list[tuple[str, Any]] = []  # published nowhere: no worker of the session checks this trade first
    monkeypatch.setattr("config.enqueue.send", lambda name, args, countdown, queue: sent.append((name, args[0])))
    trade = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    before = set(WebhookDelivery.objects.values_list("id", flat=True))  # the purchase's own (checking)
    sent.clear()

    trade_check_compliance(trade_id=trade.id, settle=True)

    deliveries = [(name, ids) for name, ids in sent if name.startswith("marketplace.webhook_deliver")]
    buyer_ids = sorted(str(i) for i in WebhookDelivery.objects.filter(endpoint=buyer_endpoint)
                       .exclude(id__in=before).values_list("id", flat=True))
    many = [ids for name, ids in deliveries if name == "marketplace.webhook_deliver_many"]
    assert len(many) == 1 and sorted(many[0]) == buyer_ids and len(buyer_ids) == 4  # decided, approved, grant, settled
    provider_id = str(WebhookDelivery.objects.get(endpoint=provider_endpoint).id)
    assert ("marketplace.webhook_deliver", provider_id) in deliveries  # its only delivery: the usual task

    webhook_deliver_many_task(many[0])
    webhook_deliver_many_task(many[0])  # a redelivered message sends nothing again
    assert WebhookDelivery.objects.filter(id__in=many[0], status="delivered").count() == 4
    assert len([r for r in receiver.requests if r.verifies_with(buyer_endpoint.secret)]) == 4
