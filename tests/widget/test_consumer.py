"""WS /ws/widget/{key}/: the status on connect, a push on every change, and its guards."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

import widget.consumers
import widget.hub
from accounts.models import Status
from chatstatus.asgi import router
from groups.models import Group
from groups.services import group_delete
from presence import events
from presence import services as presence_services
from presence.services import operator_set_status
from tests.factories import make_account, make_group, make_operator
from tests.widget.helpers import make_present
from widget.consumers import CONNECT_LIMIT
from widget.hub import widget_hub
from widget.ratelimit import LocalLimiter

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


def socket(account_or_key, *, group: str | None = None, origin: str | None = None, client: str = "198.51.100.7"):
    key = getattr(account_or_key, "widget_key", account_or_key)
    path = f"/ws/widget/{key}/" + (f"?group={group}" if group else "")
    headers = [(b"origin", origin.encode())] if origin else []
    communicator = WebsocketCommunicator(router, path, headers=headers)
    communicator.scope["client"] = [client, 50000]
    return communicator


async def refused_with(communicator) -> int:
    """A refused socket is accepted first so that a browser can read the close code."""
    connected, _ = await communicator.connect()
    assert connected
    closing = await communicator.receive_output(timeout=2)
    assert closing["type"] == "websocket.close"
    await communicator.disconnect()
    return closing["code"]


async def test_it_sends_the_status_on_connect():
    account = await db(make_account)(language="cs")
    communicator = socket(account)

    connected, _ = await communicator.connect()
    message = await communicator.receive_json_from(timeout=2)
    await communicator.disconnect()

    assert connected
    assert message["type"] == "status"
    assert (message["status"], message["reason"]) == ("offline", "no_operator_online")
    assert message["next_change_at"] is None
    assert isinstance(message["version"], int)
    assert message["language"] == "cs"


async def test_it_pushes_an_operator_going_online_and_offline():
    account = await db(make_account)()
    operator = await db(make_operator)(account=account)
    await db(make_present)(operator)
    communicator = socket(account)
    await communicator.connect()
    first = await communicator.receive_json_from(timeout=2)

    await db(operator_set_status)(operator=operator, status=Status.ONLINE, source="api")
    online = await communicator.receive_json_from(timeout=2)
    await db(operator_set_status)(operator=operator, status=Status.OFFLINE, source="api")
    offline = await communicator.receive_json_from(timeout=2)
    await communicator.disconnect()

    assert first["status"] == "offline"
    assert online["status"] == "online"
    assert offline["status"] == "offline"
    assert first["version"] < online["version"] < offline["version"]


async def test_a_group_socket_follows_its_group():
    account = await db(make_account)()
    seller = await db(make_operator)(account=account)
    await db(make_group)(account=account, key="sales", members=[seller])
    await db(make_present)(seller)
    sales, plain = socket(account, group="sales"), socket(account)
    for communicator in (sales, plain):
        await communicator.connect()
        await communicator.receive_json_from(timeout=2)

    await db(operator_set_status)(operator=seller, status=Status.ONLINE, source="api")
    sales_push = await sales.receive_json_from(timeout=2)
    for communicator in (sales, plain):
        await communicator.disconnect()

    assert sales_push["status"] == "online"


async def test_a_change_published_while_the_socket_reads_its_first_snapshot_is_not_lost(monkeypatch):
    account = await db(make_account)()
    operator = await db(make_operator)(account=account)
    await db(make_present)(operator)
    read_snapshot = presence_services.achat_box_read

    async def snapshot_then_a_change(**kwargs):
        stale = await read_snapshot(**kwargs)
        await db(operator_set_status)(operator=operator, status=Status.ONLINE, source="api")
        return stale

    monkeypatch.setattr(presence_services, "achat_box_read", snapshot_then_a_change)
    communicator = socket(account)
    await communicator.connect()
    received = [await communicator.receive_json_from(timeout=2)]
    while received[-1]["status"] != "online":
        received.append(await communicator.receive_json_from(timeout=2))
    await communicator.disconnect()

    # It should end on the change: after the stale status, or at once when the
    # push overtook the read (the hub keeps the newer of the two).
    versions = [message["version"] for message in received]
    assert [message["status"] for message in received] in (["offline", "online"], ["online"])
    assert versions == sorted(set(versions))


async def test_the_sockets_of_an_account_share_one_layer_channel_per_process(monkeypatch):
    account = await db(make_account)()
    group = events.widget_group(account.id)
    layer = get_channel_layer()
    created = []
    new_channel = layer.new_channel

    async def counting_new_channel(*args, **kwargs):
        created.append(await new_channel(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(layer, "new_channel", counting_new_channel)
    sockets = [socket(account, client=f"198.51.100.{n}") for n in range(5)]
    for communicator in sockets:
        await communicator.connect()
    first = [await communicator.receive_json_from(timeout=2) for communicator in sockets]

    assert len(created) == 1
    assert widget_hub().listeners(group) == 5
    newer = {**first[0], "version": first[0]["version"] + 1, "status": "online", "reason": "operators_online"}
    await layer.group_send(group, {"type": "widget.snapshot", "snapshot": newer})
    pushed = [await communicator.receive_json_from(timeout=2) for communicator in sockets]
    assert {message["version"] for message in pushed} == {newer["version"]}

    for communicator in sockets:
        await communicator.disconnect()
    assert widget_hub().listeners(group) == 0


async def test_a_socket_that_fails_to_connect_leaves_no_subscription_behind(monkeypatch):
    account = await db(make_account)()

    async def store_down(**kwargs):
        raise ConnectionError("store went away")

    monkeypatch.setattr(presence_services, "achat_box_read", store_down)
    communicator = socket(account)
    with pytest.raises(ConnectionError):
        await communicator.connect()

    assert widget_hub().listeners(events.widget_group(account.id)) == 0
    assert events.widget_group(account.id) not in widget_hub()._rooms


async def test_older_or_equal_versions_are_never_sent():
    account = await db(make_account)()
    communicator = socket(account)
    await communicator.connect()
    current = await communicator.receive_json_from(timeout=2)
    stale = {
        "status": "online",
        "reason": "operators_online",
        "next_change_at": None,
        "groups": {},
        "version": current["version"],
    }

    await get_channel_layer().group_send(
        events.widget_group(account.id), {"type": "widget.snapshot", "snapshot": stale}
    )
    await get_channel_layer().group_send(
        events.widget_group(account.id),
        {"type": "widget.snapshot", "snapshot": {**stale, "version": current["version"] - 1}},
    )

    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@pytest.mark.parametrize("group", [None, "no-such-group"])
async def test_an_unknown_key_or_group_is_closed_with_4404(group):
    account = await db(make_account)()
    key = "no-such-key" if group is None else account.widget_key

    assert await refused_with(socket(key, group=group)) == 4404


async def test_a_deleted_group_closes_its_sockets_with_4404():
    account = await db(make_account)()
    group = await db(make_group)(account=account, key="sales")
    communicator = socket(account, group="sales")
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)

    await db(group_delete)(group=await db(Group.objects.get)(id=group.id))
    closing = await communicator.receive_output(timeout=2)

    assert closing == {"type": "websocket.close", "code": 4404}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://shop.example", True),
        ("https://www.shop.example", True),
        ("https://evil.example", False),
        ("http://shop.example", False),
        (None, False),
    ],
)
async def test_origins_are_checked_when_the_account_lists_any(origin, allowed):
    account = await db(make_account)(allowed_origins=["https://shop.example", "https://www.shop.example"])
    communicator = socket(account, origin=origin)

    if allowed:
        await communicator.connect()
        assert (await communicator.receive_json_from(timeout=2))["type"] == "status"
        await communicator.disconnect()
    else:
        assert await refused_with(communicator) == 4403


async def test_any_origin_may_connect_when_the_account_lists_none():
    account = await db(make_account)()
    communicator = socket(account, origin="https://anywhere.example")

    await communicator.connect()
    message = await communicator.receive_json_from(timeout=2)
    await communicator.disconnect()

    assert message["type"] == "status"


async def test_connects_are_rate_limited_per_address(monkeypatch):
    account = await db(make_account)()
    # A bucket whose clock stands still, with all but one of its tokens spent
    # (widget/ratelimit.py's tests count them one by one).
    limiter = LocalLimiter(limit=CONNECT_LIMIT, clock=lambda: 1000.0)
    monkeypatch.setattr(widget.consumers, "connect_limiter", limiter)
    for _ in range(CONNECT_LIMIT.count - 1):
        limiter.hit("203.0.113.9")
    last = socket(account, client="203.0.113.9")
    await last.connect()
    assert (await last.receive_json_from(timeout=2))["type"] == "status"
    await last.disconnect()

    too_many = await refused_with(socket(account, client="203.0.113.9"))
    elsewhere = socket(account, client="203.0.113.10")
    await elsewhere.connect()
    other_address = await elsewhere.receive_json_from(timeout=2)
    await elsewhere.disconnect()

    assert too_many == 4429
    assert other_address["type"] == "status"


async def test_what_a_visitor_sends_is_ignored():
    account = await db(make_account)()
    communicator = socket(account)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)

    await communicator.send_to(text_data='{"type":"set_status","status":"online"}')

    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


def counting_reads(monkeypatch) -> list[int]:
    reads: list[int] = []
    read_snapshot = presence_services.achat_box_read

    async def counted(**kwargs):
        reads.append(kwargs["account_id"])
        return await read_snapshot(**kwargs)

    monkeypatch.setattr(presence_services, "achat_box_read", counted)
    return reads


async def test_sockets_joining_an_account_already_here_get_its_snapshot_without_a_store_read(monkeypatch):
    account = await db(make_account)()
    reads = counting_reads(monkeypatch)
    first = socket(account, client="198.51.100.1")
    await first.connect()
    status = await first.receive_json_from(timeout=2)
    others = [socket(account, client=f"198.51.100.{n}") for n in range(2, 12)]
    for communicator in others:
        await communicator.connect()
    statuses = [await communicator.receive_json_from(timeout=2) for communicator in others]

    # It should read the store once, for the first socket, and give the others the same status.
    assert reads == [account.id]
    assert {message["version"] for message in statuses} == {status["version"]}
    for communicator in [first, *others]:
        await communicator.disconnect()


async def test_a_pushed_snapshot_is_what_the_next_socket_gets(monkeypatch):
    account = await db(make_account)()
    operator = await db(make_operator)(account=account)
    await db(make_present)(operator)
    first = socket(account, client="198.51.100.1")
    await first.connect()
    assert (await first.receive_json_from(timeout=2))["status"] == "offline"
    await db(operator_set_status)(operator=operator, status=Status.ONLINE, source="api")
    pushed = await first.receive_json_from(timeout=2)
    reads = counting_reads(monkeypatch)

    second = socket(account, client="198.51.100.2")
    await second.connect()
    status = await second.receive_json_from(timeout=2)

    # It should hand the new socket the pushed status, with no store read.
    assert (status["status"], status["version"]) == ("online", pushed["version"])
    assert reads == []
    for communicator in (first, second):
        await communicator.disconnect()


async def test_a_snapshot_kept_too_long_is_read_again(monkeypatch):
    account = await db(make_account)()
    first = socket(account, client="198.51.100.1")
    await first.connect()
    await first.receive_json_from(timeout=2)
    monkeypatch.setattr(widget.hub, "SNAPSHOT_FRESH_SECONDS", 0.0)
    reads = counting_reads(monkeypatch)

    second = socket(account, client="198.51.100.2")
    await second.connect()
    await second.receive_json_from(timeout=2)

    assert reads == [account.id]
    for communicator in (first, second):
        await communicator.disconnect()
