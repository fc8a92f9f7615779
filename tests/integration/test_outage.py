"""Writes keep working while Redis, the cache and the broker, is down or frozen.

Each test starts its own `redis-server` on a private port (ELEMENTA_OUTAGE_REDIS_PORT, 6391), points
the Django cache and the Celery publisher at it, then kills it (connections refused) or freezes it
with SIGSTOP (connections accepted, never answered: the case that used to hang every request). The
server is resumed and killed at the end of each test whatever happens. Transactional tests: the
publish happens in `transaction.on_commit`, which only runs when the request's transaction commits.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from config import settings as settings_module
from config.celery_app import app
from config.outage import broker_breaker, cache_breaker
from marketplace.models import Trade
from marketplace.services.sweeper import trades_sweep_stuck
from tests.conftest import ROOT, _database_url_for_worker, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True)]

PORT = int(os.environ.get("ELEMENTA_OUTAGE_REDIS_PORT", "6391"))
URL = f"redis://127.0.0.1:{PORT}/3"
PASSWORD = "correct-horse-battery"  # tests/factories.py
# A hang detector, not a speed test: the old behaviour was 5 s per request and > 30 s for /healthz;
# the configured bound is one 0.5 s socket timeout. Anything under this is "it answered".
HANG = 5.0


class PrivateRedis:
    """A redis-server this test owns: started in the foreground as our child, so we hold its pid."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {PORT} (is the port taken?)")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Resume (a stopped process cannot die cleanly) and kill; safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the outage tests start their own Redis "
                    "(apt-get install redis-server)")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _reset_publisher() -> None:
    """Drop the Celery app's broker connection and producer pools so the next publish uses app.conf."""
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(broker_url: str, transport_options: dict[str, Any]) -> Iterator[None]:
    """The Celery publisher in this process on another broker, with the outage settings that
    config/settings.py derives for that URL (the same helper builds them); restored afterwards."""
    outage = settings_module.broker_outage_settings(broker_url, settings.ELEMENTA_BROKER_TIMEOUT)
    keys = ("broker_url", "broker_transport_options", "broker_connection_timeout", "task_publish_retry_policy")
    saved = {key: app.conf[key] for key in keys}
    saved_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = broker_url  # Celery reads this variable before app.conf.broker_url
    options = {**transport_options, **outage.get("broker_transport_options", {})}
    app.conf.update(broker_url=broker_url, broker_transport_options=options,
                    broker_connection_timeout=outage["broker_connection_timeout"],
                    task_publish_retry_policy=outage["task_publish_retry_policy"])
    _reset_publisher()
    broker_breaker.reset()
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        app.conf.update(saved)
        _reset_publisher()
        broker_breaker.reset()


@pytest.fixture
def on_redis(settings: Any, redis_server: PrivateRedis) -> Iterator[PrivateRedis]:
    """The API process's cache and broker on the private Redis, configured as config/settings.py
    configures them for a redis:// broker URL."""
    settings.CACHES = {"default": {
        "BACKEND": "config.redis_cache.ElementaRedisCache", "LOCATION": URL, "KEY_PREFIX": "elementa-outage",
        "OPTIONS": settings_module.redis_cache_options(settings.ELEMENTA_CACHE_TIMEOUT),
    }}
    settings.ELEMENTA_OUTAGE_RETRY_AFTER = 1.0
    cache_breaker.reset()
    try:
        with publishing_to(URL, {"visibility_timeout": 300}):
            yield redis_server
    finally:
        redis_server.stop()
        cache_breaker.reset()


@pytest.fixture
def frozen_amqp_broker() -> Iterator[str]:
    """An AMQP URL whose server accepts TCP connections and never says a word (a hung RabbitMQ,
    or a firewall that drops packets after the handshake): no RabbitMQ needed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    try:
        yield f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}//"
    finally:
        listener.close()


def answered(call: Callable[[], Any], *, unavailable_ok: bool = False) -> Any:
    """Make one request; fail if it hung (see HANG) or was a server error (but /healthz's 503)."""
    started = time.monotonic()
    response = call()
    elapsed = time.monotonic() - started
    assert elapsed < HANG, f"request hung for {elapsed:.1f} s"
    server_error = response.status_code >= 500 and not (unavailable_ok and response.status_code == 503)
    assert not server_error, (response.status_code, getattr(response, "content", b"")[:300])
    return response


def buy(client: Any, dataset: Any) -> Any:
    return answered(lambda: client.post("/api/v1/trades/", {"dataset": str(dataset.id)}, format="json"))


def deposit(client: Any) -> Any:
    body = {"amount": "10.00", "currency": "EUR"}
    return answered(lambda: client.post("/api/v1/wallet/deposits/", body, format="json"))


def login(client: Any, username: str, password: str) -> Any:
    body = {"username": username, "password": password}
    return answered(lambda: client.post("/api/v1/auth/token/", body, content_type="application/json"))


def events(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {getattr(record, "event", "") for record in caplog.records}


def test_the_cache_keeps_one_redis_client_and_it_dials_again_after_a_restart(on_redis):
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client() is client  # not a new one per call
    cache.set("restart-probe", 1)

    on_redis.stop()
    on_redis.start()  # its pooled connection is dead now

    cache.set("restart-probe", 2)
    assert cache.get("restart-probe") == 2
    assert cache._cache.get_client() is client


def test_writes_answer_while_redis_is_down(on_redis, client_for, client, buyer_eu, eu_public, caplog):
    caplog.set_level(logging.WARNING)
    buyer = client_for(buyer_eu)
    assert buy(buyer, eu_public).status_code == 201  # Redis up: the normal path
    on_redis.stop()  # connections refused from now on

    trades = [buy(buyer, eu_public) for _ in range(5)]
    deposits = [deposit(buyer) for _ in range(3)]
    good = login(client, buyer_eu.user.username, PASSWORD)
    bad = [login(client, buyer_eu.user.username, "wrong") for _ in range(settings.ELEMENTA_LOGIN_MAX_FAILURES)]
    locked = login(client, buyer_eu.user.username, PASSWORD)

    assert [r.status_code for r in trades] == [201] * 5
    assert {r.json()["status"] for r in trades} == {"checking"}  # accepted; the check waits for the broker
    assert [r.status_code for r in deposits] == [201] * 3
    assert good.status_code == 200 and good.json()["token"]
    assert [r.json()["code"] for r in bad] == ["invalid_credentials"] * settings.ELEMENTA_LOGIN_MAX_FAILURES
    # the lock-out still counts (in this process) while the shared cache is down
    assert locked.status_code == 429 and locked.json()["code"] == "login_locked"
    assert {"cache_unavailable", "broker_unavailable"} <= events(caplog)


def test_frozen_redis_neither_hangs_requests_nor_health(on_redis, client_for, client, buyer_eu, eu_public, caplog):
    caplog.set_level(logging.WARNING)
    buyer = client_for(buyer_eu)
    assert buy(buyer, eu_public).status_code == 201  # pools hold live connections to Redis now
    assert answered(lambda: client.get("/healthz")).status_code == 200
    on_redis.freeze()  # accepts connections, never answers

    trades = [buy(buyer, eu_public) for _ in range(3)]
    deposited = deposit(buyer)
    good = login(client, buyer_eu.user.username, PASSWORD)
    bad = login(client, buyer_eu.user.username, "wrong")
    health = answered(lambda: client.get("/healthz"), unavailable_ok=True)

    assert [r.status_code for r in trades] == [201] * 3
    assert deposited.status_code == 201
    assert good.status_code == 200 and bad.status_code == 400
    assert health.status_code == 503
    body = health.json()
    assert body["database"] == "ok" and body["broker"] == "down" and body["cache"] == "down"
    assert set(body["down"]) == {"broker", "cache"}
    assert {"cache_unavailable", "broker_unavailable"} <= events(caplog)

    on_redis.thaw()
    assert answered(lambda: client.get("/healthz")).json()["down"] == []


@pytest.mark.worker
def test_trades_accepted_during_an_outage_settle_once_redis_is_back(
    on_redis, client_for, buyer_eu, eu_personal, rulepacks,
):
    buyer = client_for(buyer_eu)
    on_redis.stop()
    accepted = [buy(buyer, eu_personal).json()["id"] for _ in range(3)]
    assert Trade.objects.filter(pk__in=accepted, status="checking").count() == 3  # their messages were never sent

    on_redis.start()  # back, empty: nothing queued survived
    log = open(Path(settings.VAR_DIR) / "outage-worker.log", "wb")
    worker = _worker_on_private_redis(log)
    try:
        deadline = time.monotonic() + 30
        while not broker_breaker.allow():  # the publisher retries the broker after ELEMENTA_OUTAGE_RETRY_AFTER
            assert time.monotonic() < deadline
            time.sleep(0.1)
        counts = trades_sweep_stuck(now=timezone.now() + settings.ELEMENTA_STUCK_AFTER + timedelta(seconds=1))

        assert counts["check"] == 3
        for trade_id in accepted:
            final = wait_for_status(trade_id, {"settled", "rejected", "in_review", "needs_documents"}, timeout=90)
            assert final.status == "settled"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


def _worker_on_private_redis(log: Any) -> subprocess.Popen[bytes]:
    """A real `celery worker` consuming from the private Redis, on the test database."""
    env = {**os.environ, "DATABASE_URL": _database_url_for_worker(), "CELERY_BROKER_URL": URL,
           "CELERY_RESULT_BACKEND": URL, "ELEMENTA_SWEEP_INTERVAL": "3600"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "1", "-l", "info", "--without-mingle",
         "--without-gossip", "--without-heartbeat", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
         "-n", f"outage-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def test_a_frozen_amqp_broker_neither_fails_nor_hangs_writes(
    frozen_amqp_broker, client_for, client, buyer_eu, eu_public, caplog,
):
    caplog.set_level(logging.WARNING)
    buyer = client_for(buyer_eu)
    with publishing_to(frozen_amqp_broker, {}):
        trades = [buy(buyer, eu_public) for _ in range(3)]
        health = answered(lambda: client.get("/healthz"), unavailable_ok=True)

    assert [r.status_code for r in trades] == [201] * 3
    assert Trade.objects.filter(pk__in=[r.json()["id"] for r in trades], status="checking").count() == 3
    assert health.status_code == 503 and health.json()["broker"] == "down" and health.json()["database"] == "ok"
    assert "broker_unavailable" in events(caplog)
