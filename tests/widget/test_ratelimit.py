"""The fixed-window counter behind the widget's rate limits."""

import asyncio
from datetime import UTC, datetime, timedelta

import time_machine

from presence.store import StoreUnavailable, get_store
from widget.ratelimit import Limit, aratelimit_hit, ratelimit_hit

LIMITS = (Limit(count=2, period=60), Limit(count=4, period=3600))
START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def test_it_allows_up_to_the_limit_and_says_how_long_to_wait_after():
    with time_machine.travel(START + timedelta(seconds=20), tick=False):
        answers = [ratelimit_hit(scope="t", ident="a", limits=LIMITS) for _ in range(3)]

    assert answers == [None, None, 40]


def test_the_longest_exceeded_window_decides_the_wait():
    with time_machine.travel(START, tick=False) as traveller:
        for minute in range(2):
            traveller.move_to(START + timedelta(minutes=minute))
            first = ratelimit_hit(scope="t", ident="a", limits=LIMITS)
            second = ratelimit_hit(scope="t", ident="a", limits=LIMITS)
        answer = ratelimit_hit(scope="t", ident="a", limits=LIMITS)

    assert (first, second) == (None, None)
    assert answer == 3600 - 60


def test_scopes_and_identities_count_separately():
    with time_machine.travel(START, tick=False):
        for _ in range(2):
            ratelimit_hit(scope="t", ident="a", limits=LIMITS)

        assert ratelimit_hit(scope="t", ident="b", limits=LIMITS) is None
        assert ratelimit_hit(scope="other", ident="a", limits=LIMITS) is None
        assert ratelimit_hit(scope="t", ident="a", limits=LIMITS) is not None


def test_an_unreachable_store_lets_visitors_through(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise StoreUnavailable("store down")

    async def abroken(*args, **kwargs):
        raise StoreUnavailable("store down")

    monkeypatch.setattr(get_store(), "count", broken)
    monkeypatch.setattr(get_store(), "acount", abroken)

    assert ratelimit_hit(scope="t", ident="a", limits=LIMITS) is None
    assert asyncio.run(aratelimit_hit(scope="t", ident="a", limits=LIMITS)) is None
    assert "rate-limit store unavailable" in caplog.text


def test_sockets_and_requests_count_into_the_same_windows():
    with time_machine.travel(START + timedelta(seconds=20), tick=False):
        first = asyncio.run(aratelimit_hit(scope="t", ident="a", limits=LIMITS))
        second = ratelimit_hit(scope="t", ident="a", limits=LIMITS)
        third = asyncio.run(aratelimit_hit(scope="t", ident="a", limits=LIMITS))

    assert (first, second, third) == (None, None, 40)
