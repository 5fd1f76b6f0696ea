"""The widget's rate limits: the store's fixed-window counter, and the in-process token bucket."""

import asyncio
from datetime import UTC, datetime, timedelta

import time_machine

from presence.store import StoreUnavailable, get_store
from widget.consumers import CONNECT_LIMIT
from widget.ratelimit import Hit, Limit, LocalLimiter, aratelimit_hit, client_key, ratelimit_hit, ratelimit_hits

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


def test_several_scopes_are_counted_at_once_and_the_longest_wait_wins():
    address, visitor = (Limit(count=3, period=60),), (Limit(count=1, period=60), Limit(count=5, period=3600))
    with time_machine.travel(START + timedelta(seconds=20), tick=False):
        answers = [ratelimit_hits([Hit("ip", "10.0.0.1", address), Hit("v", "token", visitor)]) for _ in range(2)]
        # Each scope counted its hit: the address has one left, the visitor none.
        alone = ratelimit_hit(scope="ip", ident="10.0.0.1", limits=address)
        over = ratelimit_hit(scope="ip", ident="10.0.0.1", limits=address)

    assert answers == [None, 40]
    assert (alone, over) == (None, 40)


def test_an_unreachable_store_lets_visitors_through(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise StoreUnavailable("store down")

    async def abroken(*args, **kwargs):
        raise StoreUnavailable("store down")

    monkeypatch.setattr(get_store(), "count", broken)
    monkeypatch.setattr(get_store(), "count_many", broken)
    monkeypatch.setattr(get_store(), "acount", abroken)

    assert ratelimit_hit(scope="t", ident="a", limits=LIMITS) is None
    assert ratelimit_hits([Hit("t", "a", LIMITS), Hit("u", "b", LIMITS)]) is None
    assert asyncio.run(aratelimit_hit(scope="t", ident="a", limits=LIMITS)) is None
    assert "rate-limit store unavailable" in caplog.text


def test_sockets_and_requests_count_into_the_same_windows():
    with time_machine.travel(START + timedelta(seconds=20), tick=False):
        first = asyncio.run(aratelimit_hit(scope="t", ident="a", limits=LIMITS))
        second = ratelimit_hit(scope="t", ident="a", limits=LIMITS)
        third = asyncio.run(aratelimit_hit(scope="t", ident="a", limits=LIMITS))

    assert (first, second, third) == (None, None, 40)


# --- the in-process token bucket of widget socket connects ---------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_address_may_open_300_widget_sockets_at_once_and_the_301st_waits_a_moment():
    limiter = LocalLimiter(limit=CONNECT_LIMIT, clock=Clock())

    answers = [limiter.hit("198.51.100.7") for _ in range(301)]

    # It should let an office or a carrier's address open 300 at once, then hold it.
    assert answers[:300] == [None] * 300
    assert answers[300] == 1


def test_a_flood_from_one_address_is_held_to_the_refill_rate():
    clock = Clock()
    limiter = LocalLimiter(limit=CONNECT_LIMIT, clock=clock)
    for _ in range(300):
        limiter.hit("198.51.100.7")

    allowed = 0
    for _ in range(600):  # one attempt every 10 ms for 6 s
        clock.now += 0.01
        allowed += limiter.hit("198.51.100.7") is None

    # It should allow 5 a second (300 a minute), not 100 a second (29 or 30: floating-point time).
    assert 29 <= allowed <= 30


def test_a_full_minute_refills_the_bucket_and_other_addresses_are_not_touched():
    clock = Clock()
    limiter = LocalLimiter(limit=CONNECT_LIMIT, clock=clock)
    for _ in range(301):
        limiter.hit("198.51.100.7")

    other = limiter.hit("198.51.100.8")
    clock.now += 60
    again = [limiter.hit("198.51.100.7") for _ in range(300)]

    assert other is None
    assert again == [None] * 300


def test_an_ipv6_client_is_counted_by_its_64():
    limiter = LocalLimiter(limit=Limit(count=2, period=60), clock=Clock())

    answers = [limiter.hit("2001:db8:1:2::1"), limiter.hit("2001:db8:1:2::ffff"), limiter.hit("2001:db8:1:2:a::9")]
    elsewhere = limiter.hit("2001:db8:1:3::1")

    assert answers == [None, None, 30]
    assert elsewhere is None
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_the_buckets_are_bounded_in_number():
    limiter = LocalLimiter(limit=CONNECT_LIMIT, max_clients=100, clock=Clock())

    for n in range(1000):
        limiter.hit(f"10.0.{n // 256}.{n % 256}")

    assert len(limiter._buckets) == 100


def test_the_connect_limit_needs_no_store_and_holds_while_the_store_is_down(monkeypatch):
    def broken(*args, **kwargs):
        raise StoreUnavailable("store down")

    monkeypatch.setattr(get_store(), "count", broken)
    monkeypatch.setattr(get_store(), "acount", broken)
    limiter = LocalLimiter(limit=Limit(count=3, period=60), clock=Clock())

    answers = [limiter.hit("198.51.100.7") for _ in range(4)]

    # It should neither fail nor let everything through.
    assert answers == [None, None, None, 20]
