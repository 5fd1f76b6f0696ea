"""Settings of the baseline ASGI app: the project's settings, plus a core
``channels_redis`` layer beside the project's pub/sub layer."""

from chatstatus.settings import *  # noqa: F403
from chatstatus.settings import REDIS_PREFIX, REDIS_URL

CHANNEL_LAYERS = {
    # The layer the project uses (RedisPubSubChannelLayer), for the bare-consumer baselines.
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:baseline"},
    },
    # The classic list-based layer: one message per subscriber through Redis.
    "core": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py's default pool (100 connections) fails fast when exhausted; a
        # burst of thousands of connects must not fail the baseline for that.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 5000}], "prefix": f"{REDIS_PREFIX}:core"},
    },
}
