"""The check drain (marketplace/services/check_drain.py): trades entering `checking` share one
worker task while one is waiting to start, each trade is still decided in its own transaction,
a trade whose check raises does not hold up the others, and a trade another worker holds is
passed by, never decided twice."""

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.outage import cache_breaker, guarded_cache
from marketplace.models import Settlement, Trade
from marketplace.services.check_drain import trades_check_drain
from marketplace.services.trade_transitions import CHECK_DRAIN_KEY
from marketplace.services.trades import trade_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr("config.enqueue.send", lambda name, args, countdown, queue: sent.append((name, args)))
    guarded_cache.delete(CHECK_DRAIN_KEY)
    return sent


def _buy(buyer, dataset, callbacks) -> Trade:
    with callbacks(execute=True):
        return trade_create(membership=buyer, dataset_id=dataset.id, repeat=True)


def test_trades_entering_checking_share_one_drain_until_it_starts(
    rulepacks, buyer_eu, eu_personal, published, django_capture_on_commit_callbacks
):
    first = [_buy(buyer_eu, eu_personal, django_capture_on_commit_callbacks) for _ in range(5)]
    assert published == [("marketplace.trades_check_drain", [])]  # one task for five trades

    counts = trades_check_drain()  # the drain releases its claim, then takes all five

    assert counts == {"decided": 5, "failed": 0}
    assert {t.status for t in Trade.objects.filter(pk__in=[t.id for t in first])} == {Trade.Status.SETTLED}
    assert Settlement.objects.filter(trade__in=first).count() == 5
    # it found a backlog, so it published one companion for another worker process
    assert [name for name, _ in published] == ["marketplace.trades_check_drain"] * 2
    _buy(buyer_eu, eu_personal, django_capture_on_commit_callbacks)  # after it started: a drain of its own
    assert [name for name, _ in published] == ["marketplace.trades_check_drain"] * 3
    assert trades_check_drain()["decided"] == 1
    assert trades_check_drain() == {"decided": 0, "failed": 0}  # a duplicate delivery: nothing


def test_with_the_drain_off_each_trade_gets_its_own_task_and_with_the_cache_down_a_drain_without_claim(
    rulepacks, buyer_eu, eu_personal, published, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.ELEMENTA_CHECK_DRAIN_SECONDS = 0
    one = _buy(buyer_eu, eu_personal, django_capture_on_commit_callbacks)
    settings.ELEMENTA_CHECK_DRAIN_SECONDS = 5
    monkeypatch.setattr(cache_breaker, "allow", lambda: False)  # the shared cache is down
    for _ in range(2):  # no claim anyone else could see, so none that would hold anyone back
        _buy(buyer_eu, eu_personal, django_capture_on_commit_callbacks)

    assert published == [("marketplace.trade_check_compliance", [str(one.id)]),
                         ("marketplace.trades_check_drain", []), ("marketplace.trades_check_drain", [])]


def test_a_broker_that_refuses_the_drain_leaves_no_claim_behind(
    rulepacks, buyer_eu, eu_personal, published, django_capture_on_commit_callbacks, monkeypatch
):
    def refused(name, args, countdown, queue):
        raise OSError("connection refused")

    monkeypatch.setattr("config.enqueue.send", refused)
    _buy(buyer_eu, eu_personal, django_capture_on_commit_callbacks)
    monkeypatch.setattr("config.enqueue.send", lambda name, args, countdown, queue: published.append((name, args)))
    _buy(buyer_eu, eu_personal, django_capture_on_commit_callbacks)

    assert published == [("marketplace.trades_check_drain", [])]  # the next trade publishes at once


def test_a_trade_whose_check_raises_is_passed_by_and_left_to_the_sweeper(
    rulepacks, buyer_eu, eu_personal, published, monkeypatch, settings
):
    from marketplace.services import trade_compliance
    from marketplace.services.sweeper import trades_sweep_stuck

    trades = [trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True) for _ in range(3)]
    poison = trades[1].id
    real = trade_compliance.compliance_check_perform
    tried: list[Any] = []

    def perform(**kwargs):
        tried.append(kwargs["subject_id"])
        if kwargs["subject_id"] == poison:
            raise RuntimeError("a bug in one trade's facts")
        return real(**kwargs)

    monkeypatch.setattr(trade_compliance, "compliance_check_perform", perform)
    counts = trades_check_drain()

    assert counts == {"decided": 2, "failed": 1}
    statuses = {t.id: (t.status, t.redrives) for t in Trade.objects.filter(pk__in=[t.id for t in trades])}
    assert statuses == {trades[0].id: ("settled", 0), poison: ("checking", 1), trades[2].id: ("settled", 0)}
    assert tried.count(poison) == 1
    fresh = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    tried.clear()
    assert trades_check_drain()["decided"] == 1
    assert tried == [fresh.id]  # drains leave it to the sweeper

    later = timezone.now() + settings.ELEMENTA_STUCK_AFTER * 4
    assert trades_sweep_stuck(now=later)["check"] == 1  # re-driven as a task of its own
    assert ("marketplace.trade_check_compliance", [str(poison)]) in published


def test_a_drain_of_many_trades_costs_each_trade_its_own_statements_and_little_more(
    rulepacks, buyer_eu, eu_personal, published
):
    from tests.marketplace.test_worker_budget import CHECK_AND_SETTLE_BUDGET

    warm = trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)
    trades_check_drain()
    assert Trade.objects.get(pk=warm.id).status == Trade.Status.SETTLED
    for _ in range(10):
        trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)

    with CaptureQueriesContext(connection) as queries:
        assert trades_check_drain()["decided"] == 10

    statements = [q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # each trade's own (its lock finds it), and the two that find nothing left (held or not)
    assert len(statements) <= 10 * CHECK_AND_SETTLE_BUDGET[connection.vendor] + 2


@pytest.mark.django_db(transaction=True)
def test_a_held_trade_is_passed_by_first_then_waited_for_and_decided_once(rulepacks, buyer_eu, eu_personal, published):
    # Another transaction holds the oldest trade without deciding it (a buyer adding a document):
    # the drain decides the newer trade first, then waits for the held one, as its own task would.
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SQLite has one writer at a time: no row is ever held by another transaction")
    held, free = (trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True) for _ in range(2))
    locked = threading.Event()

    def other_request() -> None:
        try:
            with transaction.atomic():
                Trade.objects.select_for_update().get(pk=held.id)
                locked.set()
                time.sleep(1.0)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_request)
    thread.start()
    try:
        assert locked.wait(30)
        counts = trades_check_drain()
    finally:
        thread.join(30)

    assert counts == {"decided": 2, "failed": 0}
    settled = {t.id: t for t in Trade.objects.filter(pk__in=[held.id, free.id])}
    assert {t.status for t in settled.values()} == {Trade.Status.SETTLED}
    assert settled[free.id].settled_at < settled[held.id].settled_at  # passed by first, then waited for
    assert Settlement.objects.filter(trade_id__in=[held.id, free.id]).count() == 2


def test_a_drain_out_of_turns_or_time_hands_the_rest_to_a_fresh_drain(rulepacks, buyer_eu, eu_personal, published):
    # The task's time limit must never interrupt a trade's check: the drain stops well before it.
    for _ in range(3):
        trade_create(membership=buyer_eu, dataset_id=eu_personal.id, repeat=True)

    assert trades_check_drain(limit=2) == {"decided": 2, "failed": 0}
    assert published == [("marketplace.trades_check_drain", [])] * 2  # its companion, and its successor
    assert trades_check_drain(seconds=0) == {"decided": 0, "failed": 0}
    assert len(published) == 3
    assert trades_check_drain()["decided"] == 1
    assert Trade.objects.filter(status=Trade.Status.CHECKING).count() == 0
