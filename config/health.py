"""GET /healthz: are the database, the broker and the cache answering?

Each check runs in its own daemon thread and the page waits for all of them at most
ELEMENTA_HEALTH_TIMEOUT seconds in total: a frozen dependency (accepts connections, never replies)
shows as "down" instead of hanging the page. A check still running past the deadline finishes on
its own (the sockets it uses have short timeouts). Answers 503 when a dependency listed in
ELEMENTA_HEALTH_REQUIRED is down (database and broker by default: without the cache the API keeps
working, see config/outage.py), 200 otherwise; the body names every dependency and its state.
"""

import contextvars
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, JsonResponse

from config.celery_app import app

logger = logging.getLogger(__name__)


def _check_database() -> None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connections["default"].close()  # this thread's own connection: don't leave it open


def _check_broker() -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=settings.ELEMENTA_HEALTH_TIMEOUT)
        conn.default_channel  # noqa: B018  (Redis: opening a channel is the first round trip)


def _check_cache() -> None:
    caches["default"].get("elementa-healthz")


CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "broker": _check_broker, "cache": _check_cache}


def _run(name: str, check: Callable[[], None], results: dict[str, str]) -> None:
    try:
        check()
    except Exception as exc:  # report, don't raise: this is the page that says what is down
        logger.warning("health: %s down: %s", name, exc, extra={"event": f"health_{name}_down"})
        results[name] = "down"
    else:
        results[name] = "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(_run, name, check, results),
                                name=f"healthz-{name}", daemon=True)  # copy_context: log lines keep the request id
               for name, check in CHECKS.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + settings.ELEMENTA_HEALTH_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    checks = {name: results.get(name, "down") for name in CHECKS}  # still running: as good as down
    for name in CHECKS:
        if name not in results:
            logger.warning("health: %s down: no answer within %.1f s", name, settings.ELEMENTA_HEALTH_TIMEOUT,
                           extra={"event": f"health_{name}_down"})
    down = [name for name, state in checks.items() if state != "ok"]
    failed = [name for name in down if name in settings.ELEMENTA_HEALTH_REQUIRED]
    body = {"status": "ok" if not down else "degraded", **checks, "down": down}
    return JsonResponse(body, status=503 if failed else 200)
