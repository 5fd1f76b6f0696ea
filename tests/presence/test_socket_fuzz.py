"""Property-based fuzzing of both sockets: whatever a client sends, the socket
answers as documented and stays open, and only a valid switch changes anything.

The operator socket answers every frame: ``heartbeat_ack``, nothing for a
switch (its push comes through the channel layer), or ``{"type": "error"}``
with ``invalid_json``, ``unknown_type`` or ``invalid_status``. Its one close
code for a frame is 1009 for one over 64 KiB (tested in
``test_operator_socket.py``). The widget socket only listens: it answers no
frame and keeps pushing the status.
"""

import datetime as dt
import itertools
import json
import math

import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from accounts.models import Operator, Status
from chatstatus.asgi import router
from presence import services
from presence.models import Source, StatusEvent
from tests.factories import make_account, make_operator, make_token
from tests.fuzzing import FUZZ, encoded, nesting, surrogates, texts, values, weighted
from tests.presence.conftest import Socket, committed_db, token_headers
from tests.widget.helpers import make_present

pytestmark = committed_db

# --- frames ----------------------------------------------------------------------------------------

protocol = st.fixed_dictionaries(
    {"type": st.sampled_from(["heartbeat", "set_status"]), "status": st.sampled_from(["online", "offline"]) | values},
    optional={"extra": values},
)
odd = st.fixed_dictionaries({"type": texts | values}, optional={"status": values}) | values
messages = weighted((2, protocol), (1, odd))
# Text frames arrive as str. Over the wire they are valid UTF-8 (the server
# closes a socket on anything else before the app sees it), so a lone
# surrogate comes escaped; the test client also hands one over raw.
text_frames = weighted(
    (4, st.builds(lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only), messages, st.booleans())),
    (1, st.text(max_size=30) | surrogates),
    (1, st.sampled_from(['{"type": "set_status", "status": NaN}', '{"type": "heartbeat", "at": -Infinity}'])),
    # Depth 30,000 fits in 60 KB, under the 64 KiB frame limit.
    (1, nesting(max_depth=30_000).map(lambda raw: raw.decode())),
)
byte_frames = st.builds(encoded, messages, st.booleans()) | st.binary(max_size=40)
frames = weighted((3, text_frames), (1, byte_frames))


def _no_constant(name: str) -> None:
    raise ValueError(name)


def _has_lone_surrogate(value: object) -> bool:
    """Walked without recursion: a frame may nest thousands of levels deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= char <= "\udfff" for char in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def expected_answer(frame: str | bytes) -> str:
    """What the operator socket must answer, from the protocol (ARCHITECTURE §4)."""
    try:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
        message = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return "invalid_json"
    if _has_lone_surrogate(message):
        return "invalid_json"
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "heartbeat":
        return "heartbeat_ack"
    if kind == "set_status":
        return "switch" if message.get("status") in Status.values else "invalid_status"
    return "unknown_type"


# The security findings, always tried: depth 30,000 in a 60 KB frame (a
# RecursionError closed the socket with 1011), a lone surrogate (parsed, then
# unencodable), each followed by a frame that must still be answered.
FINDINGS = [
    "[" * 30_000 + "]" * 30_000,
    '{"type": "heartbeat", "name": "\\ud800"}',
    '{"type": "set_status", "status": "online", "device": "\ud800"}',
    '{"type": "heartbeat"}',
]


# --- time: each example in a window of its own, so the status limit never interferes ----------------

_windows = itertools.count(1)
_FIRST = math.ceil(timezone.now().timestamp() / 10) * 10


def fresh_window() -> dt.datetime:
    return dt.datetime.fromtimestamp(_FIRST + 10 * next(_windows), tz=dt.UTC)


# --- the operator socket ---------------------------------------------------------------------------

PUSHES = ("operator_status", "chat_box")


async def send(communicator: WebsocketCommunicator, frame: str | bytes) -> None:
    # As the server hands a frame over; ``send_to`` would refuse an empty one.
    kind = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", kind: frame})


async def answers_to(socket: Socket, frame: str | bytes, *, acks: int) -> list[dict]:
    """What the socket answered to ``frame``. Frames are handled in order, so
    a heartbeat sent right after is answered after it: everything up to that
    ack (the ``acks``-th), less the ack itself and the pushes of status
    changes, which come at any time. A closed socket fails the receive."""
    await send(socket.comm, frame)
    await socket.send({"type": "heartbeat"})
    answered: list[dict] = []
    while acks:
        message = await socket.receive(timeout=10)
        if message["type"] == "heartbeat_ack":
            acks -= 1
        if message["type"] not in PUSHES:
            answered.append(message)
    return answered[:-1]


@database_sync_to_async
def operator_with_token() -> tuple[Operator, str]:
    operator = make_operator(account=make_account(), name="Alice")
    return operator, make_token(operator, is_mobile=True)


@database_sync_to_async
def state_of(operator: Operator) -> tuple[str, int]:
    status = Operator.objects.values_list("status", flat=True).get(id=operator.id)
    return status, StatusEvent.objects.filter(operator=operator).count()


@FUZZ
@given(sent=st.lists(frames, min_size=1, max_size=6))
@example(sent=FINDINGS)
async def test_the_operator_socket_answers_any_frame_and_stays_open(sent):
    operator, key = await operator_with_token()
    status, recorded = await state_of(operator)
    with time_machine.travel(fresh_window(), tick=False):
        socket = Socket(token_headers(key))
        assert await socket.connect()
        await socket.receive_until(lambda m: m["type"] == "hello")
        for frame in sent:
            expected = expected_answer(frame)
            event(expected)

            answered = await answers_to(socket, frame, acks=2 if expected == "heartbeat_ack" else 1)

            # It should answer as the protocol says, and change only what a switch asks for.
            if expected == "switch":
                assert answered == [], frame
                new = json.loads(frame)["status"]
                recorded += new != status
                status = new
            elif expected == "heartbeat_ack":
                assert answered == [{"type": "heartbeat_ack"}], frame
            else:
                assert answered == [{"type": "error", "error": expected}], frame
        await socket.close()
    # It should have changed the status, and recorded events, for the valid switches alone.
    assert await state_of(operator) == (status, recorded)


# --- the widget socket -----------------------------------------------------------------------------

_addresses = itertools.count(1)


@database_sync_to_async
def present_operator() -> Operator:
    operator = make_operator(account=make_account(), name="Alice")
    make_present(operator)
    return operator


@settings(FUZZ, max_examples=50)
@given(sent=st.lists(frames, min_size=1, max_size=6))
@example(sent=FINDINGS)
async def test_the_widget_socket_ignores_any_frame_and_keeps_pushing(sent):
    with time_machine.travel(fresh_window(), tick=False):
        operator = await present_operator()
        account = await database_sync_to_async(lambda: operator.account)()
        widget = WebsocketCommunicator(router, f"/ws/widget/{account.widget_key}/")
        # An address of its own each time: the connect limit is per address.
        n = next(_addresses)
        widget.scope["client"] = [f"10.1.{n >> 8 & 255}.{n & 255}", 50000]
        connected, _code = await widget.connect(timeout=5)
        assert connected
        assert (await widget.receive_json_from(timeout=5))["status"] == Status.OFFLINE

        for frame in sent:
            await send(widget, frame)
        await database_sync_to_async(services.operator_set_status)(
            operator=operator, status=Status.ONLINE, source=Source.API
        )

        # It should answer nothing, stay open and push the change.
        pushed = await widget.receive_json_from(timeout=5)
        assert (pushed["type"], pushed["status"]) == ("status", Status.ONLINE)
        assert await widget.receive_nothing(timeout=0.05)
        await widget.disconnect()
