"""Publishing through the channel layer, from the server's threads and from a
Celery worker's plain thread (no event loop: ``async_to_sync`` starts one per call)."""

import asyncio
import logging
import os
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from presence import events

GROUP = f"{settings.REDIS_PREFIX}.publish-test"


async def subscribed() -> tuple[object, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return layer, channel


async def receive_all(layer, channel: str, count: int) -> list[dict]:
    async with asyncio.timeout(5):
        return [await layer.receive(channel) for _ in range(count)]


async def test_a_batch_arrives_once_and_in_order():
    layer, channel = await subscribed()
    await sync_to_async(events.publish_many)([(GROUP, {"type": "n", "n": n}) for n in range(5)])
    received = await receive_all(layer, channel, 5)
    assert [message["n"] for message in received] == [0, 1, 2, 3, 4]
    await layer.group_discard(GROUP, channel)


async def test_a_failed_publish_is_logged_and_never_raised(monkeypatch, caplog):
    async def broken(layer, messages):
        raise ConnectionError("layer down")

    monkeypatch.setattr(events, "_send_all", broken)
    with caplog.at_level(logging.ERROR, logger="presence.events"):
        await sync_to_async(events.publish)(GROUP, {"type": "n"})
    assert f"publish to {GROUP} failed" in caplog.text


def redis_sockets_of_this_process() -> int:
    """Established TCP connections from this process to Redis's port."""
    port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as rows:
            for row in rows.read().splitlines()[1:]:
                fields = row.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


@pytest.mark.production_only
async def test_a_worker_thread_publishes_to_other_processes_without_leaking_connections():
    layer, channel = await subscribed()
    before = redis_sockets_of_this_process()
    assert before >= 1  # the subscriber's own connection: the count sees what it should

    def worker():
        # A Celery worker's thread: no event loop, no asgiref context.
        for n in range(30):
            events.publish(GROUP, {"type": "n", "n": n})

    thread = threading.Thread(target=worker)
    thread.start()
    received = await receive_all(layer, channel, 30)
    await asyncio.to_thread(thread.join, 10)
    assert [message["n"] for message in received] == list(range(30))
    assert redis_sockets_of_this_process() == before
    await layer.group_discard(GROUP, channel)
