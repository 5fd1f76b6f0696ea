"""Django's Redis cache, with the master found through Redis Sentinel.

Django's ``RedisCache`` builds its pool from a URL; under Sentinel there is no
fixed URL, so this client takes its pool from the Sentinel-managed client of
``chatstatus.redis_ha`` (every new connection asks the sentinels where the
master is). Used only when ``REDIS_SENTINELS`` is set; otherwise settings use
Django's backend as it is.
"""

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from chatstatus.redis_ha import RedisTarget, sync_client


class SentinelRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], *, sentinels: list[tuple[str, int]], master: str, **options: Any) -> None:
        super().__init__(servers, **options)
        self._target = RedisTarget(url=servers[0], sentinels=tuple(map(tuple, sentinels)), master=master)

    def _get_connection_pool(self, write: bool) -> Any:
        if 0 not in self._pools:
            options = {key: value for key, value in self._pool_options.items() if key != "parser_class"}
            self._pools[0] = sync_client(self._target, **options).connection_pool
        return self._pools[0]


class SentinelRedisCache(RedisCache):
    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self._class = SentinelRedisCacheClient
