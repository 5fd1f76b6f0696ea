"""The widget's reads: the key memo and the snapshot a socket reads."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Account
from presence.services import achat_box_read
from presence.store import dumps, get_store
from tests.factories import make_account
from widget import selectors
from widget.selectors import awidget_account, widget_account_forget

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
async def test_a_known_widget_key_is_answered_from_the_memo_without_a_query():
    account = await sync_to_async(make_account)()
    widget_account_forget()
    first = await awidget_account(widget_key=account.widget_key)
    # Renamed in the database: the memo still answers (for its short while), so no query ran.
    await sync_to_async(Account.objects.filter(id=account.id).update)(name="Renamed")
    again = await awidget_account(widget_key=account.widget_key)
    widget_account_forget(widget_key=account.widget_key)
    fresh = await awidget_account(widget_key=account.widget_key)

    assert first == again
    assert first.account_id == account.id
    assert fresh.name == "Renamed"
    assert await awidget_account(widget_key="no-such-key") is None


@pytest.mark.django_db(transaction=True)
async def test_a_storm_of_connects_missing_the_memo_makes_one_look_up(monkeypatch):
    account = await sync_to_async(make_account)()
    widget_account_forget()
    look_ups = []
    look_up = selectors.widget_account

    def counted(**kwargs):
        look_ups.append(kwargs["widget_key"])
        return look_up(**kwargs)

    monkeypatch.setattr(selectors, "widget_account", counted)
    answers = await asyncio.gather(*(awidget_account(widget_key=account.widget_key) for _ in range(50)))

    assert look_ups == [account.widget_key]
    assert {answer.account_id for answer in answers} == {account.id}


@pytest.mark.django_db(transaction=True)
async def test_the_socket_reads_the_stored_snapshot_and_recomputes_a_missing_or_due_one():
    account = await sync_to_async(make_account)()
    store = get_store()
    store.account_drop(account_id=account.id)

    computed = await achat_box_read(account_id=account.id)  # missing: computed and stored
    assert computed["status"] == "offline"
    assert await achat_box_read(account_id=account.id) == computed

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    stale = {"status": "online", "reason": "operators_online", "next_change_at": past, "groups": {}}
    version = store.snapshot_store(account_id=account.id, body=dumps(stale), due_at=None, now=time.time())
    recomputed = await achat_box_read(account_id=account.id)  # past its flip: recomputed

    assert recomputed["status"] == "offline"
    assert recomputed["version"] > version
