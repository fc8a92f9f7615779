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
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class ElementaRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
