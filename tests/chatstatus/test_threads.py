"""Django's sync code runs on a few reused threads, one request's code on one thread."""

import asyncio
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async

from chatstatus.threads import THREADS, pooled_threads_supported, with_pooled_threads


async def django_like(scope, receive, send):
    """What Django's ASGI handler does: its own context, sync code in it (twice)."""
    async with ThreadSensitiveContext():
        first = await sync_to_async(threading.get_ident)()
        await asyncio.sleep(scope.get("pause", 0))
        second = await sync_to_async(threading.get_ident)()
    await send({"threads": (first, second)})


async def requests(app, n: int, *, pause: float = 0) -> list[tuple[int, int]]:
    answers = []

    async def one():
        async def send(message):
            answers.append(message["threads"])

        await app({"type": "http", "pause": pause}, None, send)

    await asyncio.gather(*(one() for _ in range(n)))
    return answers


def test_the_asgiref_in_use_lets_a_context_keep_its_executor():
    assert pooled_threads_supported()


def test_requests_reuse_a_few_threads_instead_of_one_each():
    app = with_pooled_threads(django_like)

    answers = asyncio.run(requests(app, 50))

    # It should run each request's sync code on one thread, and all on at most THREADS threads.
    assert all(first == second for first, second in answers)
    assert len({first for first, _ in answers}) <= THREADS
    assert app.pool.busy == [0] * THREADS


def test_requests_in_flight_together_get_threads_of_their_own():
    app = with_pooled_threads(django_like)

    answers = asyncio.run(requests(app, 3, pause=0.05))

    # It should give three overlapping requests three different threads.
    assert len({first for first, _ in answers}) == 3


def test_requests_one_after_another_run_on_the_same_thread():
    app = with_pooled_threads(django_like)

    async def one_by_one():
        return [answer for _ in range(10) for answer in await requests(app, 1)]

    # It should start no new thread for a request when one is idle.
    assert len({first for first, _ in asyncio.run(one_by_one())}) == 1
