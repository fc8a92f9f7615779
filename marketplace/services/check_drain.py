"""The check drain: one worker task checks every trade waiting in `checking`, instead of one task each.

A trade entering `checking` asks for a drain (trade_transitions.trade_check_request); while one
drain is asked for and has not started, the trades after it ask for none (a claim in the shared
cache, for ELEMENTA_CHECK_DRAIN_SECONDS at most), and a running drain takes every trade committed
before it started. Each trade is still checked and settled in its own transaction by the same code as
before (trade_compliance._decide), so the unit of failure stays one trade: a trade whose check
raises is handed to the sweeper and the others go on. What is shared is the task: its message, its
acknowledgement and the worker's machinery.

Several drains may run at once (one per worker process that is free, as trades keep arriving,
and a companion when a drain finds a backlog). Each finds and locks its next trade in one
statement that skips rows another transaction holds (trade_lock_next_checking), so concurrent
drains take different trades and never decide a trade twice; only when every waiting trade is
held does a drain wait for the oldest.

A trade whose check raises has its re-drive count raised, as the sweeper does for a lost task:
drains no longer take it, and the sweeper (services/sweeper.py) re-drives it as a task of its own
with its back-off, then hands it to an officer. A database error that may pass (a dropped
connection) ends the drain, and its task retries it; any trade still waiting is taken then."""

import logging
import time
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError
from django.db.models import F

from config.enqueue import enqueue
from config.logging import log_context
from marketplace.models import Trade
from marketplace.services.trade_compliance import trade_check_next
from marketplace.services.trade_transitions import CHECK_DRAIN_KEY

logger = logging.getLogger(__name__)


def trades_check_drain(*, limit: int = 1000, seconds: float = 20.0) -> dict[str, int]:
    """Release the drain claim, then check and settle the trades waiting in `checking`, oldest
    first, until none is left, or `limit` are done or `seconds` have passed (then a fresh drain is
    published for the rest: well inside the task's time limit, so the limit never interrupts a
    trade's check). Returns counts: decided, failed.

    When every waiting trade is held by another transaction, the drain waits for the oldest, as a
    task for that one trade would: the holder may be another drain (the trade is then passed over
    once it is decided) or a request that locks a trade without deciding it (a buyer adding a
    document), after which the trade still needs this check. A drain that finds a second trade
    waiting publishes one companion drain, so a backlog that built up while it sat in the queue is
    shared with the worker's other processes rather than left to one."""
    from config.outage import guarded_cache

    guarded_cache.delete(CHECK_DRAIN_KEY)  # from here on, a trade that commits requests a drain of its own
    counts = {"decided": 0, "failed": 0}
    deadline = time.monotonic() + seconds
    wait = False
    while counts["decided"] + counts["failed"] < limit and time.monotonic() < deadline:
        taken: list[UUID] = []
        try:
            trade = trade_check_next(settle=True, taken=taken, wait=wait)
        except (OperationalError, InterfaceError, SoftTimeLimitExceeded):
            raise  # the connection or the worker, not the trade: the task retries (or the sweeper re-drives)
        except Exception:
            if not taken:
                raise  # no trade to blame: the drain itself is broken
            _hand_to_sweeper(taken[-1])
            counts["failed"] += 1
            continue
        if trade is None:
            if wait:
                break  # nothing waits in `checking`, held or not
            wait = True  # every trade still waiting is held elsewhere: wait for the oldest
            continue
        wait = False
        counts["decided"] += 1
        if counts["decided"] == 2:
            enqueue("marketplace.trades_check_drain")  # a backlog: a companion for another process
    else:
        enqueue("marketplace.trades_check_drain")  # out of turns or time with trades left: a fresh drain goes on
    if any(counts.values()):
        logger.info("check drain: %s", counts)
    return counts


def _hand_to_sweeper(trade_id: UUID) -> None:
    with log_context(trade=str(trade_id)):
        logger.exception("trade %s: the check raised; left to the sweeper", trade_id)
    Trade.objects.filter(pk=trade_id, status=Trade.Status.CHECKING, redrives=0).update(redrives=F("redrives") + 1)
