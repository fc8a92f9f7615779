"""Django's Redis cache backend, keeping one redis-py client per connection pool.

Django's own client builds a new `redis.Redis` for every cache call, and building one fills a
table of some 250 response callbacks; a POST makes four cache calls (session, throttle, webhook
subscriptions, the e-mail drain's claim), so that alone cost about a millisecond of CPU per request.
A redis-py client is safe to share between threads and holds nothing but its pool, which redis-py
already resets after a fork, so the backend keeps one per pool instead."""

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        this: Any = self  # Django's pool API (private, stable since 4.0) is not in django-stubs
        pool = this._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:  # pools live as long as this object, so their ids are stable keys
            client = self._clients[id(pool)] = this._client(connection_pool=pool)
        return client


class ElementaRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
