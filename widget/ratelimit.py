"""Fixed-window rate limits, counted in the presence store (Redis in
production, process memory when embedded).

A window is ``period`` seconds long and aligned to the epoch, so every process
counts into the same key. A fixed window lets a burst of 2 × limit straddle a
boundary; for abuse control of public endpoints that is good enough and costs
one round trip per limit. ``aratelimit_hit`` counts from an event loop (each
widget socket's connect) without a hop to a thread.
"""

import hashlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from presence.store import StoreUnavailable, get_store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    period: int  # seconds


def ratelimit_hit(*, scope: str, ident: str, limits: tuple[Limit, ...]) -> int | None:
    """Count one hit of ``ident`` against every limit of ``scope``.

    Returns None when allowed, else the seconds until the exceeded window ends
    (for ``Retry-After``). An unreachable store allows the hit: losing abuse
    protection for a moment is better than refusing every visitor.
    """
    now = time.time()
    counts = []
    try:
        for limit, key in _windows(scope=scope, ident=ident, limits=limits, now=now):
            counts.append(get_store().count(key, now=now, ttl=limit.period + 1))
    except StoreUnavailable:
        logger.warning("rate-limit store unavailable; allowing %s", scope)
        return None
    return _retry_after(limits=limits, counts=counts, now=now)


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
