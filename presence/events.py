"""Channel-layer group names and publishing. Only services call ``publish``."""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from chatstatus.metrics import PUBLISH_FAILURES, PUBLISH_RETRIES, PUBLISH_SECONDS, PUSHES_PUBLISHED, group_kind
from presence.pipeline import publish_batch

logger = logging.getLogger(__name__)


def account_group(account_id: int) -> str:
    """Every operator socket (dashboards, apps) of one account."""
    return f"{settings.REDIS_PREFIX}.acct.{account_id}"


def operator_group(operator_id: int) -> str:
    """Every device of one operator."""
    return f"{settings.REDIS_PREFIX}.op.{operator_id}"


def widget_group(account_id: int) -> str:
    """Every visitor widget of one account."""
    return f"{settings.REDIS_PREFIX}.widget.{account_id}"


def publish(group: str, message: dict) -> None:
    """Send once to a group. A failed publish is logged, never raised: state is
    already stored, and clients resync from it on reconnect."""
    publish_many([(group, message)])


def publish_many(messages: list[tuple[str, dict]]) -> None:
    """Send several (group, message) pairs in order, as one batch.

    From a thread without an event loop (a Celery worker) every
    ``async_to_sync`` call starts a loop, and the pub/sub layer opens (and, when
    that loop closes, closes) its own Redis connection for it; one call per
    batch keeps a sweep that flips many operators from paying that per message.
    """
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    started = time.perf_counter()
    try:
        async_to_sync(_send_all)(layer, messages)
    except Exception:
        _failed(messages)
        return
    _counted(messages, started=started)


async def apublish_many(messages: list[tuple[str, dict]]) -> None:
    """``publish_many`` from an event loop (a write served there): no hop to a thread."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    started = time.perf_counter()
    try:
        await _send_all(layer, messages)
    except Exception:
        _failed(messages)
        return
    _counted(messages, started=started)


def _failed(messages: list[tuple[str, dict]]) -> None:
    PUBLISH_FAILURES.inc()
    logger.exception("publish to %s failed", ", ".join(sorted({group for group, _message in messages})))


def _counted(messages: list[tuple[str, dict]], *, started: float) -> None:
    PUBLISH_SECONDS.observe(time.perf_counter() - started)
    for group, _message in messages:
        PUSHES_PUBLISHED.labels(kind=group_kind(group)).inc()


async def _send_all(layer: BaseChannelLayer, messages: list[tuple[str, dict]]) -> None:
    try:
        await publish_batch(layer, messages)
    except RedisConnectionError:
        # The pub/sub layer's publishing connection is pooled without
        # retries: after a Redis restart its first use fails (and drops it),
        # which would lose these pushes. Once more, on a fresh connection
        # (a message already out goes twice; receivers ignore repeats).
        PUBLISH_RETRIES.inc()
        await publish_batch(layer, messages)
