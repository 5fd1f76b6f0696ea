"""widget.asgi.with_widget_status answers the status read exactly as the Django view does."""

from datetime import UTC, datetime

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator

from accounts.models import Status
from chatstatus.asgi import django_asgi_app
from presence.services import operator_set_status
from tests.factories import make_account, make_group, make_operator
from tests.widget.helpers import (
    HOST,
    asgi_get,
    comparable,
    make_open_monday_nine_to_five_with_someone_online,
    make_present,
    status_url,
)
from widget.asgi import with_widget_status

pytestmark = pytest.mark.django_db(transaction=True)

# Django alone (its view serves the same path) and Django behind the fast path.
router = django_asgi_app
fast = with_widget_status(django_asgi_app)
db = database_sync_to_async


@pytest.fixture
def shop():
    account = make_account(name="Shop", language="cs")
    seller = make_operator(account=account, status=Status.ONLINE)
    make_group(account=account, key="sales", members=[seller])
    make_present(seller)
    return account


@pytest.mark.parametrize("group", [None, "sales", "nope", "g" * 51])
async def test_it_answers_like_the_django_view(shop, group):
    account = await db(lambda: shop)()
    path = status_url(account, group)

    django_answer = await asgi_get(router, path)
    fast_answer = await asgi_get(fast, path)

    assert comparable(fast_answer) == comparable(django_answer)
    assert fast_answer["status"] == (200 if group in (None, "sales") else 404)


async def test_it_answers_304_like_the_django_view(shop):
    account = await db(lambda: shop)()
    etag = (await asgi_get(fast, status_url(account)))["headers"][b"etag"]

    django_answer = await asgi_get(router, status_url(account), (b"if-none-match", etag.encode()))
    fast_answer = await asgi_get(fast, status_url(account), (b"if-none-match", etag.encode()))

    assert fast_answer["status"] == 304
    assert comparable(fast_answer) == comparable(django_answer)


async def test_an_unknown_key_answers_and_is_logged_like_the_django_view(caplog):
    django_answer = await asgi_get(router, "/widget/v1/no-such-key/status")
    fast_answer = await asgi_get(fast, "/widget/v1/no-such-key/status")

    assert fast_answer["status"] == 404
    assert comparable(fast_answer) == comparable(django_answer)
    logged = [(r.levelname, r.status_code, r.getMessage()) for r in caplog.records if r.name == "django.request"]
    assert logged == [("WARNING", 404, "Not Found: /widget/v1/no-such-key/status")] * 2


async def test_a_host_django_would_refuse_is_left_to_django(shop):
    account = await db(lambda: shop)()
    communicator = HttpCommunicator(fast, "GET", status_url(account), headers=[(b"host", b"evil.example")])

    response = await communicator.get_response(timeout=3)

    assert response["status"] == 400


async def test_other_requests_reach_django_unchanged(shop):
    account = await db(lambda: shop)()

    script = await asgi_get(fast, "/widget.js")
    answers = []
    for app in (fast, router):
        post = HttpCommunicator(app, "POST", status_url(account), headers=[HOST])
        answers.append((await post.get_response(timeout=3))["status"])

    assert script["status"] == 200
    assert script["headers"][b"content-type"] == "text/javascript; charset=utf-8"
    assert answers[0] == answers[1] != 200


async def test_a_read_right_after_a_change_shows_it(shop):
    account = await db(lambda: shop)()
    seller = await db(lambda: account.operators.get(memberships__group__key="sales"))()
    before = await asgi_get(fast, status_url(account, "sales"))

    await db(operator_set_status)(operator=seller, status=Status.OFFLINE, source="api")
    after = await asgi_get(fast, status_url(account, "sales"))

    assert b'"status":"online"' in before["body"]
    assert b'"status":"offline"' in after["body"]
    assert after["headers"][b"etag"] != before["headers"][b"etag"]


async def test_an_answer_follows_a_schedule_flip_without_any_write():
    with time_machine.travel(datetime(2026, 3, 2, 8, 59, 59, tzinfo=UTC), tick=False) as traveller:
        account = await db(make_open_monday_nine_to_five_with_someone_online)()
        closed = await asgi_get(fast, status_url(account))
        traveller.move_to(datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC))
        opened = await asgi_get(fast, status_url(account))

    assert b'"reason":"closed"' in closed["body"]
    assert b'"status":"online"' in opened["body"]
