"""Fixed-window rate limits on Django's cache (Redis in production, memory when embedded).

A window is ``period`` seconds long and aligned to the epoch, so every process
counts into the same key. A fixed window lets a burst of 2 × limit straddle a
boundary; for abuse control of public endpoints that is good enough and costs
one round trip per limit.
"""

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)


# One cache client per process. ``django.core.cache.cache`` is one per async
# context, and every widget socket is its own context: each kept a Redis
# connection of its own (41 → 30 KiB per idle socket without them).
_client = None


def _cache():
    global _client
    if _client is None:
        _client = caches.create_connection(DEFAULT_CACHE_ALIAS)
    return _client


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs: object) -> None:
    global _client
    if setting == "CACHES":
        _client = None


@dataclass(frozen=True)
class Limit:
    count: int
    period: int  # seconds


def ratelimit_hit(*, scope: str, ident: str, limits: tuple[Limit, ...]) -> int | None:
    """Count one hit of ``ident`` against every limit of ``scope``.

    Returns None when allowed, else the seconds until the exceeded window ends
    (for ``Retry-After``). An unreachable cache allows the hit: losing abuse
    protection for a moment is better than refusing every visitor.
    """
    now = time.time()
    # Hashed: client addresses never appear in cache keys.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:24]
    retry_after = None
    for limit in limits:
        window = int(now // limit.period)
        key = f"rl:{scope}:{limit.period}:{window}:{digest}"
        cache = _cache()
        try:
            cache.add(key, 0, timeout=limit.period + 1)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=limit.period + 1)
                count = 1
        except Exception:
            logger.warning("rate-limit cache unavailable; allowing %s", scope, exc_info=True)
            return None
        if count > limit.count:
            wait = max(1, math.ceil((window + 1) * limit.period - now))
            retry_after = max(retry_after or 0, wait)
    return retry_after
