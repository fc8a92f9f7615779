"""Rate limits and login lock-out. DRF throttling is a brake on abuse, not a security boundary
(rate-limit at the reverse proxy too); lock-out slows password guessing."""

import hashlib
import time
from typing import Any, cast

from django.conf import settings
from django.core.cache.backends.base import BaseCache
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from config.errors import LoginLockedError
from config.outage import guarded_cache

# Counters live in the shared cache (Redis in production). While it is down or frozen they fall back
# to a per-process memory cache for a few seconds at a time (config/outage.py): every request still
# gets an answer, and guessing passwords stays slowed, per process, instead of a 500 for everyone.
# GuardedCache has the part of the cache API the throttles use, not the whole BaseCache: a cast.
throttle_cache = cast(BaseCache, guarded_cache)


class WriteRateThrottle(UserRateThrottle):
    """Unsafe methods (POST, PATCH, DELETE) per user; reads are not limited here.

    A sliding window estimated from two fixed-window counters (this period's, and the last one's
    weighted by how much of it still overlaps the window), in one cache round trip: DRF's own
    throttle keeps a list of every request's time in the window, read and written back whole on
    each request, which at high limits (the bench's 100000/min) cost milliseconds per request."""

    scope = "write"
    cache = throttle_cache

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS") or self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return True
        now = self.timer()
        period = int(now // duration)
        count, previous = guarded_cache.count_hit(
            f"{self.key}:{period}", f"{self.key}:{period - 1}", timeout=int(duration) * 2
        )
        overlap = 1.0 - (now - period * duration) / duration
        estimate = previous * overlap + count
        self._retry_after = (period + 1) * duration - now
        return estimate <= limit

    def wait(self) -> float | None:
        return max(getattr(self, "_retry_after", 0.0), 0.0)


class PublicCatalogueRateThrottle(AnonRateThrottle):
    """Unauthenticated reads of the public catalogue, per client address (signed-in callers: not here)."""

    scope = "anon"
    cache = throttle_cache


class LoginRateThrottle(AnonRateThrottle):
    scope = "login"
    cache = throttle_cache


def client_address(request: Request) -> str:
    """The caller's address as the throttles see it: REMOTE_ADDR, or with ELEMENTA_TRUSTED_PROXIES
    (DRF's NUM_PROXIES) set, the address that many hops back in X-Forwarded-For. Without trusted
    proxies the header is ignored, so rotating it changes nothing."""
    return LoginRateThrottle().get_ident(request)


def _key(username: str, client: str) -> str:
    # per (account, address): a stranger elsewhere cannot lock the account's owner out. Hashed:
    # usernames are user input, and cache backends restrict key characters.
    raw = f"{username.strip().lower()}\n{client}"
    return "login-failures:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _backoff_seconds(failures: int) -> int:
    """How long an (account, address) must wait after its `failures`-th failure in a row: nothing
    until ELEMENTA_LOGIN_MAX_FAILURES, then ELEMENTA_LOGIN_BACKOFF_SECONDS, doubling with each further
    failure, never more than ELEMENTA_LOGIN_LOCKOUT_SECONDS."""
    over = failures - settings.ELEMENTA_LOGIN_MAX_FAILURES
    if over < 0:
        return 0
    return int(
        min(settings.ELEMENTA_LOGIN_BACKOFF_SECONDS * 2 ** min(over, 30), settings.ELEMENTA_LOGIN_LOCKOUT_SECONDS)
    )


def login_check_locked(*, username: str, client: str) -> None:
    """Refuse (429 login_locked) while this (account, address) is backing off; nothing is counted."""
    until = guarded_cache.get(_key(username, client) + ":until")
    wait = int(until - time.time()) + 1 if until else 0
    if wait > 0:
        raise LoginLockedError(f"Too many failed logins from here; try again in {wait} seconds.", wait=wait)


def login_failed(*, username: str, client: str) -> None:
    """Count a failure (kept ELEMENTA_LOGIN_LOCKOUT_SECONDS) and start the back-off it earns."""
    key = _key(username, client)
    if guarded_cache.add(key, 1, timeout=settings.ELEMENTA_LOGIN_LOCKOUT_SECONDS):
        failures = 1
    else:
        try:
            failures = guarded_cache.incr(key)
        except ValueError:  # expired in between
            guarded_cache.add(key, 1, timeout=settings.ELEMENTA_LOGIN_LOCKOUT_SECONDS)
            failures = 1
    wait = _backoff_seconds(failures)
    if wait:
        guarded_cache.set(key + ":until", time.time() + wait, timeout=wait)


def login_succeeded(*, username: str, client: str) -> None:
    key = _key(username, client)
    guarded_cache.delete(key)
    guarded_cache.delete(key + ":until")
