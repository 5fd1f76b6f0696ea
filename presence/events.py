"""Channel-layer group names and publishing. Only services call ``publish``."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

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
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        logger.exception("publish to %s failed", group)
