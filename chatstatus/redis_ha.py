"""Where Redis is: one server (``REDIS_URL``), or a master that Redis Sentinel names.

Every Redis user of chatstatus — the presence store, the channel layer, the
Celery broker, Django's cache — asks this module for its connection, so that a
Sentinel set-up (``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER``) is honoured
by all of them or none. With Sentinel, ``REDIS_URL`` still gives the database
number and the password; its host and port are not used: each new connection
asks the sentinels where the master is, so after a failover reconnecting is
enough.

No Django imports: settings build the channel layer, cache and broker
configuration from it, and the store its clients.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.connection import parse_url

# How long a sentinel may take to answer "where is the master?" before the next one is asked.
SENTINEL_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class RedisTarget:
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def db_and_auth(self) -> dict[str, Any]:
        """The database number and credentials of ``url`` (the master's, under Sentinel)."""
        parsed = parse_url(self.url) if self.url.startswith(("redis://", "rediss://", "unix://")) else {}
        return {key: parsed[key] for key in ("db", "username", "password") if parsed.get(key) is not None}


def _sentinel_options(target: RedisTarget) -> dict[str, Any]:
    auth = {key: value for key, value in target.db_and_auth().items() if key != "db"}
    return {
        "sentinel_kwargs": {
            "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
            "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        },
        # ``connection_kwargs`` of the sentinels' own clients, also given to the master's.
        **auth,
    }


def sync_client(target: RedisTarget, **options: Any) -> redis.Redis:
    """A redis-py client of the master with ``options`` (timeouts, retries)."""
    if not target.uses_sentinel:
        return redis.Redis.from_url(target.url, **options)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), **_sentinel_options(target))
    return sentinel.master_for(target.master, redis_class=redis.Redis, **{**target.db_and_auth(), **options})


class BlockingSentinelConnectionPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """A Sentinel pool that makes a burst wait for a connection, as the
    ``BlockingConnectionPool`` of a single server does, instead of failing
    with "Too many connections"."""


def async_client(target: RedisTarget, *, max_connections: int, timeout: float, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client of the master with a bounded, blocking pool."""
    if not target.uses_sentinel:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            target.url, max_connections=max_connections, timeout=timeout, **options
        )
        return redis.asyncio.Redis(connection_pool=pool)
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.sentinels), **_sentinel_options(target))
    return sentinel.master_for(
        target.master,
        redis_class=redis.asyncio.Redis,
        connection_pool_class=BlockingSentinelConnectionPool,
        max_connections=max_connections,
        timeout=timeout,
        **{**target.db_and_auth(), **options},
    )


def channel_layer_host(target: RedisTarget) -> str | dict[str, Any]:
    """One entry of channels_redis's ``hosts``: its pub/sub layer builds a
    ``SentinelConnectionPool`` from a dict with ``sentinels`` and ``master_name``."""
    if not target.uses_sentinel:
        return target.url
    return {
        "sentinels": list(target.sentinels),
        "master_name": target.master,
        "sentinel_kwargs": _sentinel_options(target)["sentinel_kwargs"],
        **target.db_and_auth(),
    }


def celery_broker(target: RedisTarget) -> tuple[str, dict[str, Any]]:
    """Celery's ``broker_url`` and ``broker_transport_options`` (kombu's
    ``sentinel://`` transport: one URL per sentinel, the master by name)."""
    if not target.uses_sentinel:
        return target.url, {}
    auth = target.db_and_auth()
    password = f":{auth['password']}@" if auth.get("password") else ""
    db = auth.get("db", 0)
    urls = ";".join(f"sentinel://{password}{_host(host)}:{port}/{db}" for host, port in target.sentinels)
    return urls, {"master_name": target.master, "sentinel_kwargs": _sentinel_options(target)["sentinel_kwargs"]}


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def describe(sentinels: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"{_host(host)}:{port}" for host, port in sentinels)
