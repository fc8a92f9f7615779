"""Which organisations have an active webhook endpoint at all, cached per process.

Every domain event of a trade (five per settled trade) used to look its parties' endpoints up in
SQL, almost always to find none. Each process now keeps the set of organisations that have at
least one active endpoint, tagged with a version token kept in the shared cache (Redis in
production, the file cache in the embedded set-up). Any save or delete of an endpoint, in any
process, replaces the token once its transaction commits, and clears this process's copy at once;
a process that finds a token other than its copy's reloads the set (one query).

The set only ever lets a fan-out *skip* its query: an organisation in it still has its endpoints
read in SQL at fan-out time, so a stale entry (an endpoint deleted without a signal, rows rolled
back) costs one query and never a delivery to a missing endpoint. A missing entry could lose an
event, so the token is read on every fan-out (a cache GET, not SQL), and a cache that fails
means no caching: every fan-out queries, as before.
"""

import logging
import threading
import uuid
from typing import Any
from uuid import UUID

from django.db import transaction

from marketplace.models import WebhookEndpoint

logger = logging.getLogger(__name__)

TOKEN_KEY = "webhooks:subscriptions:token"


class _Subscriptions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._organisations: frozenset[UUID] = frozenset()

    def clear(self) -> None:
        with self._lock:
            self._token = None

    def _shared_token(self) -> str | None:
        """The current token, made if there is none; None if the cache cannot be used."""
        from django.core.cache import caches

        from config.outage import _cache_errors, cache_breaker

        if not cache_breaker.allow():
            return None
        cache = caches["default"]
        try:
            token = cache.get(TOKEN_KEY)
            if token is None:
                cache.add(TOKEN_KEY, uuid.uuid4().hex, None)
                token = cache.get(TOKEN_KEY)
        except _cache_errors():
            return None
        return token if isinstance(token, str) else None

    def may_have_endpoints(self, organisation_ids: list[UUID]) -> bool:
        """False only if none of these organisations had an active endpoint at the last reload."""
        token = self._shared_token()
        if token is None:
            return True
        try:  # callers pass UUIDs or their strings; the set holds UUIDs
            organisation_ids = [org if isinstance(org, UUID) else UUID(str(org)) for org in organisation_ids]
        except ValueError:
            return True
        with self._lock:
            if self._token == token:
                known = self._organisations
                return any(org in known for org in organisation_ids)
        # Read the token before the rows: an endpoint change committed in between replaces the
        # token again, so this copy is reloaded on the next fan-out.
        organisations = frozenset(
            WebhookEndpoint.objects.filter(active=True).values_list("organisation_id", flat=True).distinct()
        )
        with self._lock:
            self._token, self._organisations = token, organisations
        return any(org in organisations for org in organisation_ids)


subscriptions = _Subscriptions()


def _bump_token() -> None:
    from django.core.cache import caches

    from config.outage import _cache_errors

    try:
        caches["default"].set(TOKEN_KEY, uuid.uuid4().hex, None)
    except _cache_errors():  # the cache is down: readers query SQL until it answers again
        logger.warning("could not replace the webhook subscriptions token", exc_info=True)
    subscriptions.clear()


def on_endpoint_changed(sender: Any, **kwargs: Any) -> None:
    """post_save / post_delete of a WebhookEndpoint: forget this process's copy now (it may be read
    again inside this transaction), and tell every process once the change is committed."""
    subscriptions.clear()
    transaction.on_commit(_bump_token, robust=True)
