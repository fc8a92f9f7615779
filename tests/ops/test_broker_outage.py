"""The worker survives its Redis broker being killed again and again (config/broker.py explains the
kombu crash this guards against), and no trade is lost or charged twice.

Everything runs against a redis-server started here on a private port (ELEMENTA_TEST_REDIS_PORT,
default 6390): the worker, beat and this process (the API) all use it; only it is killed."""

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from config.celery_app import app
from marketplace.models import Trade
from tests.conftest import _database_url_for_worker
from tests.invariants import invariant_violations
from tests.ops.processes import PrivateRedis, alive, celery, private_redis, stop_group, wait_until

REDIS_PORT = int(os.environ.get("ELEMENTA_TEST_REDIS_PORT", "6390"))
SETTLED_OR_WAITING = {"settled", "rejected", "cancelled", "needs_documents", "in_review"}


@pytest.fixture
def redis_broker() -> Iterator[PrivateRedis]:
    server = private_redis(REDIS_PORT, Path(settings.VAR_DIR))
    yield server
    server.stop()


def test_a_channel_left_open_by_a_lost_connection_fails_as_a_connection_error(redis_broker):
    """kombu's own sequence, without a worker: two channels hold an unacknowledged message each,
    Redis dies, the connection is collected (one channel cannot be closed: Redis is down), Redis comes
    back and the leftover channel is closed, restoring its message. Upstream that raises
    AttributeError ('NoneType' object has no attribute 'hostname'), which kills a Celery worker."""
    queue = Queue("outage-guard", Exchange("outage-guard"), "outage-guard")
    conn = Connection(redis_broker.url)
    with conn.Producer() as producer:
        for _ in range(2):
            producer.publish({"n": 1}, exchange=queue.exchange, routing_key="outage-guard", declare=[queue])
    channels = [conn.channel(), conn.channel()]
    for channel in channels:
        assert channel.basic_get("outage-guard", no_ack=False) is not None
    redis_broker.kill()
    conn.collect()
    redis_broker.start()

    leftover = [c for c in channels if not c.closed]
    assert leftover, "kombu closed every channel: the situation this guards against did not arise"
    with pytest.raises(conn.connection_errors):
        leftover[0].close()


def test_an_ack_a_frozen_redis_cannot_answer_still_frees_the_consumers_slot(redis_broker):
    """Redis frozen (SIGSTOP: connections stay open, nothing answers) while a consumer acknowledges:
    the ack fails as a connection error (Celery logs "Couldn't ack" and carries on), and once Redis
    answers again the consumer can take the next message. Upstream the delivery stayed counted
    against the prefetch limit, and a freeze never drops the connection that would have reset it:
    a worker whose every slot leaked this way stayed alive and took no more tasks. (The ack's
    commands may still land when Redis wakes, from the socket's buffer; if they do not, Redis
    redelivers the message after the visibility timeout, and the tasks are idempotent.)"""
    queue = Queue("ack-guard", Exchange("ack-guard"), "ack-guard")
    conn = Connection(redis_broker.url, transport_options={"socket_timeout": 0.5, "socket_connect_timeout": 0.5})
    with conn.Producer() as producer:
        for n in range(2):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="ack-guard", declare=[queue])
    channel = conn.channel()
    channel.basic_qos(0, 1, False)  # one message in flight, as a worker process with prefetch 1
    message = channel.basic_get("ack-guard", no_ack=False)
    assert message is not None and not channel.qos.can_consume()

    redis_broker.kill(signal.SIGSTOP)
    try:
        with pytest.raises(conn.connection_errors):
            message.ack()
    finally:
        redis_broker.kill(signal.SIGCONT)

    assert channel.qos.can_consume()
    assert channel.basic_get("ack-guard", no_ack=False).payload == {"n": 1}
    conn.release()


@pytest.fixture
def api_publishes_to(redis_broker: PrivateRedis) -> Iterator[None]:
    """This process (the API) publishes to the private Redis too, failing fast while it is down."""
    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = redis_broker.url
    app.conf.broker_transport_options = {"visibility_timeout": 300, "socket_timeout": 3, "socket_connect_timeout": 2}
    app._pool = app.amqp._producer_pool = None
    yield
    app.conf.broker_url, app.conf.broker_transport_options = saved
    app._pool = app.amqp._producer_pool = None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_outlives_redis_killed_five_times_while_trades_are_posted(
        api_publishes_to, redis_broker, rulepacks, client_for, buyer_eu, eu_personal):
    var = Path(settings.VAR_DIR)
    env = {**os.environ, "DATABASE_URL": _database_url_for_worker(), "CELERY_BROKER_URL": redis_broker.url,
           "ELEMENTA_SWEEP_INTERVAL": "2", "ELEMENTA_STUCK_AFTER": "3", "CELERY_VISIBILITY_TIMEOUT": "30"}
    worker_log, beat_log = var / "outage-worker.log", var / "outage-beat.log"
    worker_log.write_bytes(b"")
    worker = celery("worker", env, worker_log, "-c", "2", "--without-mingle", "--without-gossip", "--without-heartbeat",
                    "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-n", f"outage-{os.getpid()}@%h")
    beat = celery("beat", env, beat_log, "-s", str(var / "outage-beat-schedule"), "--pidfile=")
    try:
        wait_until(lambda: b"ready." in worker_log.read_bytes(), 60, "the worker to be ready")
        buyer = client_for(buyer_eu)
        statuses: list[int] = []
        ids: list[str] = []

        def post(n: int) -> None:
            for _ in range(n):
                response = buyer.post(
                    "/api/v1/trades/", {"dataset": str(eu_personal.id), "repeat": True}, format="json"
                )
                statuses.append(response.status_code)
                if response.status_code == 201:
                    ids.append(response.json()["id"])

        rng = random.Random(7)
        for _ in range(5):
            post(3)  # Redis up: these are picked up while Redis is killed under them
            time.sleep(rng.uniform(0.05, 0.6))
            redis_broker.kill(signal.SIGKILL)
            post(2)  # Redis down: accepted, published later by the sweeper
            time.sleep(rng.uniform(0.5, 2))
            redis_broker.start()
            time.sleep(rng.uniform(0.5, 2))

        assert statuses == [201] * 25
        wait_until(lambda: set(Trade.objects.filter(pk__in=ids).values_list("status", flat=True)) <= SETTLED_OR_WAITING,
                   90, "every trade to be decided after the outages")
        assert worker.poll() is None and alive(worker.pid), worker_log.read_text()[-3000:]
        assert beat.poll() is None
        assert b"Unrecoverable error" not in worker_log.read_bytes()
        assert invariant_violations(ids) == []
        assert Trade.objects.filter(pk__in=ids, status="settled").count() == 25
    finally:
        stop_group(worker)
        stop_group(beat)
