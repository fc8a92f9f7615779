"""A short-lived cache of verified session tokens: digest → the AuthToken row with its user,
membership and organisation, so a request with a known token reads no table at all.

Keys are the token's SHA-512 digest (never the token). Entries live ELEMENTA_AUTH_CACHE_SECONDS
(default 30; 0 turns the cache off) and never past the token's expiry, which is still checked on
every request. They are dropped at once (and again after commit, so a request racing the change
cannot put the old row back) when the token is deleted (logout, revocation, a password change,
purges) and when the user, its membership or its organisation is saved or deleted
(marketplace.receivers). A change made with a bulk `update()` elsewhere shows within the TTL.
With knox's AUTO_REFRESH on, tokens are not cached (each use may push the expiry out).
Cache errors fall back to the database (config/outage.py's breaker)."""

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.outage import guarded_cache

PREFIX = "auth:session:"


def _seconds() -> int:
    return int(getattr(settings, "ELEMENTA_AUTH_CACHE_SECONDS", 30))


def auth_cache_get(digest: str) -> Any:
    if _seconds() <= 0:
        return None
    return guarded_cache.get(PREFIX + digest)


def auth_cache_put(digest: str, token: Any) -> None:
    ttl = _seconds()
    if ttl <= 0:
        return
    if token.expiry is not None:
        ttl = min(ttl, int((token.expiry - timezone.now()).total_seconds()))
    if ttl > 0:
        guarded_cache.set(PREFIX + digest, token, timeout=ttl)


def _forget_now(digests: list[str]) -> None:
    guarded_cache.delete_many([PREFIX + d for d in digests])


def auth_cache_forget(digests: Iterable[str]) -> None:
    """Drop these tokens' entries now and once more after the surrounding transaction commits."""
    keys = list(digests)
    if not keys:
        return
    _forget_now(keys)
    transaction.on_commit(partial(_forget_now, keys), robust=True)


def auth_cache_forget_users(user_ids: Iterable[Any]) -> None:
    """Drop every cached session of these users (their account, membership or organisation changed)."""
    from knox.models import AuthToken

    ids = [u for u in user_ids if u is not None]
    if ids and _seconds() > 0:
        auth_cache_forget(AuthToken.objects.filter(user_id__in=ids).values_list("digest", flat=True))
