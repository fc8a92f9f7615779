"""A worker killed in the middle of a trade's check: with the default settings (sweep every 10 s,
stuck after 30 s) the trade is decided and settled within about a minute, once, by the worker that
takes its place (on RabbitMQ the broker redelivers at once; on Redis the sweeper re-drives it)."""

import os
import signal
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from config.celery_app import app
from config.queues import task_queue
from marketplace.models import Trade
from tests.conftest import _database_url_for_worker, wait_for_status
from tests.factories import TradeFactory
from tests.invariants import invariant_violations
from tests.ops.processes import celery, stop_group, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def lock_waiters() -> int:
    """Backends of the test database waiting for a row lock (the worker's check, blocked by us)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_trade_whose_worker_was_killed_mid_check_settles_with_the_default_sweep(rulepacks, buyer_eu, eu_personal):
    if settings.CELERY_BROKER_IS_FILESYSTEM:
        pytest.skip("needs a network broker the worker and beat share (CI's Redis and RabbitMQ passes)")
    var = Path(settings.VAR_DIR)
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-recovery"
    env = {k: v for k, v in os.environ.items() if k not in ("ELEMENTA_SWEEP_INTERVAL", "ELEMENTA_STUCK_AFTER")}
    env.update({"DATABASE_URL": _database_url_for_worker(), "ELEMENTA_CELERY_QUEUE": queue})
    trade = TradeFactory(dataset=eu_personal, buyer=buyer_eu.organisation)  # in `checking`, nothing enqueued yet
    logs = {name: var / f"recovery-{name}.log" for name in ("first", "second", "beat")}
    for log in logs.values():
        log.write_bytes(b"")
    worker_args = ("-c", "1", "--without-mingle", "--without-gossip", "--without-heartbeat", "-Q", queue)
    first = celery("worker", env, logs["first"], *worker_args, "-n", f"recovery-1-{os.getpid()}@%h")
    beat = celery("beat", env, logs["beat"], "-s", str(var / "recovery-beat-schedule"), "--pidfile=")
    second = None
    locked, release = threading.Event(), threading.Event()

    def hold_the_trade_row() -> None:
        with transaction.atomic():
            Trade.objects.select_for_update().get(pk=trade.pk)
            locked.set()
            release.wait(120)
        connections.close_all()

    holder = threading.Thread(target=hold_the_trade_row)
    holder.start()
    try:
        locked.wait(30)
        wait_until(lambda: b"ready." in logs["first"].read_bytes(), 60, "the first worker to be ready")
        app.send_task(
            "marketplace.trade_check_compliance",
            args=[str(trade.id)],
            queue=task_queue(queue, settings.CELERY_BROKER_URL),
        )
        wait_until(lambda: lock_waiters() > 0, 30, "the worker's check to block on the trade row")

        os.killpg(first.pid, signal.SIGKILL)  # main process and pool child, mid-task
        first.wait(timeout=10)
        release.set()
        holder.join(timeout=30)
        second = celery("worker", env, logs["second"], *worker_args, "-n", f"recovery-2-{os.getpid()}@%h")

        settled = wait_for_status(trade.id, {"settled"}, timeout=90)

        assert settled.status == "settled"
        assert invariant_violations([trade.id]) == []
    finally:
        release.set()
        holder.join(timeout=30)
        for proc in (first, second, beat):
            if proc is not None:
                stop_group(proc)
