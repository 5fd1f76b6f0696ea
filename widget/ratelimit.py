"""Rate limits of the public widget endpoints.

Two mechanisms, each for what it fits:

* ``ratelimit_hit`` / ``aratelimit_hit``: fixed-window counters in the presence
  store (Redis in production, process memory when embedded), shared by every
  process. A window is ``period`` seconds long and aligned to the epoch, so
  every process counts into the same key. A fixed window lets a burst of
  2 × limit straddle a boundary; for abuse control of public endpoints that is
  good enough and costs one round trip per request, whatever the number of
  limits (``ratelimit_hits``). For what is rarer and costs a database write (a
  visitor's message, an operator's reply, an offline message). An unreachable
  store lets the hit through.
* ``LocalLimiter``: a token bucket per client in this process's memory. For
  what is frequent and cheap (a widget socket's connect): no Redis round trip
  per connect, and nothing to lose when the store is slow or down — the limit
  holds, it never turns into "allow everything". Each web process keeps its
  own buckets, so the budget of one address over the whole site is the
  per-process budget times the number of processes behind the balancer; the
  per-process budget is set for what one process can take.

Clients are counted by address; an IPv6 client by its /64, which is what one
household or device gets (``client_key``).
"""

import hashlib
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from presence.store import StoreUnavailable, get_store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    period: int  # seconds


@dataclass(frozen=True)
class Hit:
    """One client (``ident``) counted against the limits of ``scope``."""

    scope: str
    ident: str
    limits: tuple[Limit, ...]


# An ASGI scope key: a request's hits were already counted in front of Django
# (``conversations.asgi``, ``api.asgi``), which then handed the request over;
# its value is the wait they gave (None: allowed). Daphne makes each request's
# scope: no client can set it.
COUNTED_SCOPE_KEY = "chatstatus.ratelimit_counted"


def counted_in_front(request: object) -> tuple[bool, int | None]:
    """(True, wait) when ``request``'s hits were counted in front of Django: counted once, never twice."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and COUNTED_SCOPE_KEY in scope:
        return True, scope[COUNTED_SCOPE_KEY]
    return False, None


def ratelimit_hit(*, scope: str, ident: str, limits: tuple[Limit, ...]) -> int | None:
    """Count one hit of ``ident`` against every limit of ``scope``.

    Returns None when allowed, else the seconds until the exceeded window ends
    (for ``Retry-After``). An unreachable store allows the hit: losing abuse
    protection for a moment is better than refusing every visitor.
    """
    return ratelimit_hits([Hit(scope, ident, limits)])


def ratelimit_hits(hits: list[Hit]) -> int | None:
    """``ratelimit_hit`` for several scopes at once, in one round trip to the
    store (a visitor's message is counted by address and by visitor): None
    when every one allows it, else the longest wait."""
    now = time.time()
    try:
        counts = get_store().count_many(_counters(hits, now=now), now=now)
    except StoreUnavailable:
        logger.warning("rate-limit store unavailable; allowing %s", ", ".join(hit.scope for hit in hits))
        return None
    return _longest_wait(hits, counts=counts, now=now)


async def aratelimit_hits(hits: list[Hit]) -> int | None:
    """``ratelimit_hits`` from an event loop."""
    now = time.time()
    try:
        counts = await get_store().acount_many(_counters(hits, now=now), now=now)
    except StoreUnavailable:
        logger.warning("rate-limit store unavailable; allowing %s", ", ".join(hit.scope for hit in hits))
        return None
    return _longest_wait(hits, counts=counts, now=now)


def _counters(hits: list[Hit], *, now: float) -> list[tuple[str, int]]:
    return [
        (key, limit.period + 1)
        for hit in hits
        for limit, key in _windows(scope=hit.scope, ident=hit.ident, limits=hit.limits, now=now)
    ]


def _longest_wait(hits: list[Hit], *, counts: list[int], now: float) -> int | None:
    waits = []
    for hit in hits:
        scope_counts, counts = counts[: len(hit.limits)], counts[len(hit.limits) :]
        waits.append(_retry_after(limits=hit.limits, counts=scope_counts, now=now))
    return max((wait for wait in waits if wait is not None), default=None)


async def aratelimit_hit(*, scope: str, ident: str, limits: tuple[Limit, ...]) -> int | None:
    """``ratelimit_hit`` from an event loop."""
    now = time.time()
    counts = []
    try:
        for limit, key in _windows(scope=scope, ident=ident, limits=limits, now=now):
            counts.append(await get_store().acount(key, now=now, ttl=limit.period + 1))
    except StoreUnavailable:
        logger.warning("rate-limit store unavailable; allowing %s", scope)
        return None
    return _retry_after(limits=limits, counts=counts, now=now)


def _windows(*, scope: str, ident: str, limits: tuple[Limit, ...], now: float) -> Iterator[tuple[Limit, str]]:
    # Hashed: client addresses never appear in keys.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:24]
    for limit in limits:
        yield limit, f"rl:{scope}:{limit.period}:{int(now // limit.period)}:{digest}"


def _retry_after(*, limits: tuple[Limit, ...], counts: list[int], now: float) -> int | None:
    waits = [
        max(1, math.ceil((int(now // limit.period) + 1) * limit.period - now))
        for limit, count in zip(limits, counts, strict=True)
        if count > limit.count
    ]
    return max(waits, default=None)


def client_key(address: str) -> str:
    """The identity a client is counted by: its IPv4 address, or its IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class LocalLimiter:
    """Token buckets per client, in this process: ``limit.count`` hits at once,
    refilled at ``limit.count`` per ``limit.period`` seconds.

    At most ``max_clients`` buckets are kept, least recently used dropped
    first, so a flood from many addresses costs bounded memory (a dropped
    bucket starts full again: the cost of the bound). Thread-safe; on an event
    loop a hit is a few dictionary operations and never waits.
    """

    def __init__(self, *, limit: Limit, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.max_clients = max_clients
        self.clock = clock
        self._rate = limit.count / limit.period
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self._lock = threading.Lock()

    def hit(self, ident: str) -> int | None:
        """Spend one token of ``ident``'s bucket: None when allowed, else the
        whole seconds until a token is back (for ``Retry-After``)."""
        key = client_key(ident)
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.limit.count), now))
            tokens = min(float(self.limit.count), tokens + (now - at) * self._rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        if allowed:
            return None
        return max(1, math.ceil((1 - tokens) / self._rate))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
