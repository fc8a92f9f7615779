"""Surviving an outage of Redis (the cache) or the broker: requests keep answering.

Two circuit breakers, one per dependency. After a failed call the dependency is skipped for
ELEMENTA_OUTAGE_RETRY_AFTER seconds, so a frozen Redis costs one request one socket timeout,
not every request (and not several timeouts in one request). Each trip logs one warning whose
message starts with a stable event name (`cache_unavailable`, `broker_unavailable`) and carries
it as the record's `event` attribute (a field of its own in the JSON logs).

- `guarded_cache`: what the throttles and the login lock-out count in. The shared cache while it
  answers; a per-process memory cache while it does not (see docs/decisions.md, "Throttles and
  lock-out while the cache is down").
- `broker_breaker`: consulted by every task publish (config/celery_app.py, GuardedTask). While
  open, a publish fails at once; callers already treat a failed publish as "the sweeper will
  re-drive it" (marketplace/services/sweeper.py, webhooks sweep).

No model imports: the Celery app imports this module before Django is set up.
"""

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT

logger = logging.getLogger("elementa.outage")


class CircuitBreaker:
    """Closed: calls go through. Open (after a failure): calls are skipped until retry_after has
    passed; then the next call probes the dependency again."""

    def __init__(self, dependency: str) -> None:
        self.dependency = dependency
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    @property
    def event(self) -> str:
        return f"{self.dependency}_unavailable"

    def allow(self) -> bool:
        return time.monotonic() >= self._open_until

    def failed(self, exc: BaseException) -> None:
        retry_after = float(getattr(settings, "ELEMENTA_OUTAGE_RETRY_AFTER", 5.0))
        with self._lock:
            self._open_until = time.monotonic() + retry_after
            self._down = True
        logger.warning("%s: %s call failed (%s: %s); skipping it for %.1f s", self.event, self.dependency,
                       type(exc).__name__, exc, retry_after, extra={"event": self.event})

    def succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            event = f"{self.dependency}_recovered"
            logger.warning("%s: %s answers again", event, self.dependency, extra={"event": event})

    def reset(self) -> None:
        """Forget past failures (the tests start each case with a closed breaker)."""
        with self._lock:
            self._open_until, self._down = 0.0, False


cache_breaker = CircuitBreaker("cache")
broker_breaker = CircuitBreaker("broker")


def _cache_errors() -> tuple[type[BaseException], ...]:
    """What a cache that is down raises: redis-py's errors (refused, timed out, reset) and OSError
    (the file-based cache on a full or missing disk). Not ValueError: incr() of a missing key."""
    errors: tuple[type[BaseException], ...] = (OSError,)
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis ships with celery[redis]
        return errors
    return (*errors, RedisError)


class GuardedCache:
    """The subset of the cache API the throttles and the lock-out use, falling back to a
    per-process memory cache while the shared one is unavailable."""

    def __init__(self) -> None:
        self._errors = _cache_errors()
        self._local: Any = None
        self._local_lock = threading.Lock()

    @property
    def local(self) -> Any:
        if self._local is None:
            with self._local_lock:
                if self._local is None:
                    from django.core.cache.backends.locmem import LocMemCache

                    self._local = LocMemCache("elementa-outage-fallback", {"OPTIONS": {"MAX_ENTRIES": 10000}})
        return self._local

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        if cache_breaker.allow():
            from django.core.cache import caches

            try:
                result = getattr(caches["default"], op)(*args, **kwargs)
            except self._errors as exc:
                cache_breaker.failed(exc)
            else:
                cache_breaker.succeeded()
                return result
        return getattr(self.local, op)(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> None:
        self._call("set", key, value, timeout)

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool:
        return bool(self._call("add", key, value, timeout))

    def add_shared(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool | None:
        """add() on the shared cache only: None while it is unavailable, for a caller whose claim
        means nothing unless every process sees it (a per-process claim would hold back the others)."""
        if cache_breaker.allow():
            from django.core.cache import caches

            try:
                result = caches["default"].add(key, value, timeout)
            except self._errors as exc:
                cache_breaker.failed(exc)
            else:
                cache_breaker.succeeded()
                return bool(result)
        return None

    def incr(self, key: str, delta: int = 1) -> int:
        return int(self._call("incr", key, delta))

    def delete(self, key: str) -> bool:
        return bool(self._call("delete", key))

    def delete_many(self, keys: list[str]) -> None:
        self._call("delete_many", keys)

    def count_hit(self, key: str, previous_key: str, timeout: int) -> tuple[int, int]:
        """Add one to the counter `key` (kept `timeout` seconds) and read the counter `previous_key`:
        (new count, previous count). One round trip on Redis (a pipeline of INCR, EXPIRE, GET);
        the other caches do add, incr and get."""
        if cache_breaker.allow():
            from django.core.cache import caches

            try:
                result = _count_hit(caches["default"], key, previous_key, timeout)
            except self._errors as exc:
                cache_breaker.failed(exc)
            else:
                cache_breaker.succeeded()
                return result
        return _count_hit(self.local, key, previous_key, timeout)


def _count_hit(cache: Any, key: str, previous_key: str, timeout: int) -> tuple[int, int]:
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        current, previous = cache.make_and_validate_key(key), cache.make_and_validate_key(previous_key)
        # Django's RedisCache has no pipeline API: its client wrapper (private, stable since 4.0) does.
        pipe = cache._cache.get_client(current, write=True).pipeline(transaction=False)  # type: ignore[attr-defined]
        pipe.incr(current)
        pipe.expire(current, timeout)
        pipe.get(previous)
        count, _, before = pipe.execute()
        return int(count), int(before or 0)
    cache.add(key, 0, timeout)
    try:
        count = cache.incr(key)
    except ValueError:  # expired in between
        cache.add(key, 1, timeout)
        count = 1
    return int(count), int(cache.get(previous_key) or 0)


guarded_cache = GuardedCache()
