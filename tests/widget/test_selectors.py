"""offline_message_list: the dashboard inbox's read."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Account
from presence.services import achat_box_read
from presence.store import dumps, get_store
from tests.factories import make_account, make_group, make_operator, owner_of
from widget.models import OfflineMessage
from widget.selectors import awidget_account, offline_message_list, widget_account_forget

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def leave(account, *, minutes_ago: int, group=None, name: str = "") -> OfflineMessage:
    return OfflineMessage.objects.create(
        account=account,
        group=group,
        name=name or f"{minutes_ago} min ago",
        email="visitor@example.com",
        message="Hello",
        created_at=NOON - timedelta(minutes=minutes_ago),
    )


@pytest.mark.django_db
def test_my_groups_messages_come_first_then_the_rest_newest_first():
    account = make_account()
    me = make_operator(account=account)
    sales = make_group(account=account, key="sales", members=[me])
    support = make_group(account=account, key="support")
    old_mine = leave(account, minutes_ago=50, group=sales)
    new_theirs = leave(account, minutes_ago=1, group=support)
    new_mine = leave(account, minutes_ago=10, group=sales)
    ungrouped = leave(account, minutes_ago=5)

    messages = list(offline_message_list(operator=me))

    assert messages == [new_mine, old_mine, new_theirs, ungrouped]
    assert [message.for_my_groups for message in messages] == [True, True, False, False]


@pytest.mark.django_db
def test_an_operator_in_no_group_sees_every_message_newest_first():
    account = make_account()
    make_group(account=account, key="sales")
    older = leave(account, minutes_ago=30, group=account.groups.get())
    newer = leave(account, minutes_ago=3)

    assert list(offline_message_list(operator=owner_of(account))) == [newer, older]


@pytest.mark.django_db
def test_other_accounts_messages_are_never_listed():
    mine, theirs = make_account(), make_account()
    leave(theirs, minutes_ago=1)

    assert list(offline_message_list(operator=owner_of(mine))) == []


@pytest.mark.django_db
def test_it_reads_the_inbox_in_one_query(django_assert_num_queries):
    account = make_account()
    me = make_operator(account=account)
    group = make_group(account=account, key="sales", members=[me])
    for minutes in range(5):
        leave(account, minutes_ago=minutes, group=group if minutes % 2 else None)

    with django_assert_num_queries(1):
        names = [(message.name, message.group and message.group.name) for message in offline_message_list(operator=me)]

    assert len(names) == 5


# --- the socket's reads from the event loop ------------------------------------------


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
