"""A web process dies with ``kill -9``: no disconnect handler runs for its
sockets, yet their operators go offline after the grace period, and the other
web process keeps serving."""

import time

import pytest

from accounts.models import Operator, Status
from presence.models import Source, StatusEvent
from tests.drills.conftest import (
    GRACE_SECONDS,
    SWEEP_SECONDS,
    is_hello,
    is_operator_status,
    is_widget_status,
    report,
    wait_until,
    widget_status,
)
from tests.factories import make_account, make_operator, make_token, owner_of

# Real processes and a Redis of the drill's own: not part of the embedded-mode pass.
pytestmark = pytest.mark.production_only

# The bound: grace + sweep period + 5 s of slack.
OFFLINE_WITHIN = GRACE_SECONDS + SWEEP_SECONDS + 5


def test_operators_of_a_killed_web_process_go_offline_after_grace_while_the_other_keeps_serving(drill, sockets):
    doomed, survivor = drill.start(webs=("web-a", "web-b")).webs
    # The agent's only device is on the process that will die; the dashboard
    # and the visitor's widget are on the one that survives.
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    agent = make_operator(account=account)
    agent_app = sockets.operator(doomed, make_token(agent))
    dashboard = sockets.operator(survivor, make_token(owner_of(account)))
    widget = sockets.widget(survivor, account.widget_key)
    # Another account's operator has a device on each process: one survives.
    other = make_account(stale_after_seconds=GRACE_SECONDS)
    roamer = make_operator(account=other)
    roamer_token = make_token(roamer)
    roamer_on_doomed = sockets.operator(doomed, roamer_token)
    roamer_on_survivor = sockets.operator(survivor, roamer_token)
    for socket in (agent_app, dashboard, roamer_on_doomed, roamer_on_survivor):
        socket.wait_for(is_hello, timeout=15, what="every operator socket's hello")
    agent_app.send({"type": "set_status", "status": "online"})
    roamer_on_doomed.send({"type": "set_status", "status": "online"})
    widget.wait_for(is_widget_status("online"), timeout=10, what="the widget showing the agent online")
    wait_until(
        lambda: Operator.objects.filter(id__in=[agent.id, roamer.id], status=Status.ONLINE).count() == 2,
        timeout=10,
        what="both operators online",
    )

    doomed.kill()
    killed, killed_wall = time.monotonic(), time.time()

    went_offline, _ = dashboard.wait_for(
        is_operator_status(agent.id, "offline", Source.STALE_SWEEP),
        timeout=OFFLINE_WITHIN + 5,
        what="the dashboard on the surviving process seeing the agent swept offline",
    )
    widget_saw, _ = widget.wait_for(
        is_widget_status("offline"), timeout=10, what="the widget on the surviving process seeing the chat box close"
    )
    event = StatusEvent.objects.get(operator=agent, source=Source.STALE_SWEEP)
    assert event.at.timestamp() - killed_wall <= OFFLINE_WITHIN
    # Not before the grace period either (the connection TTL alone would have
    # swept at 3 s): the last heartbeat was a moment before the kill.
    assert event.at.timestamp() - killed_wall >= GRACE_SECONDS - 5
    assert widget_status(survivor, account.widget_key) == "offline"

    # The roamer's device on the surviving process keeps it present: by the
    # time the agent was swept the roamer's dead connection had expired too,
    # yet the roamer stays online, a heartbeat (and a sweep) later too.
    roamer_on_survivor.wait_for(lambda m: m.get("type") == "heartbeat_ack", timeout=5, what="the roamer heartbeating")
    assert Operator.objects.get(id=roamer.id).status == Status.ONLINE
    assert not StatusEvent.objects.filter(operator=roamer, source=Source.STALE_SWEEP).exists()
    report(
        "daphne kill -9",
        grace_seconds=GRACE_SECONDS,
        kill_to_offline_event=event.at.timestamp() - killed_wall,
        kill_to_dashboard=went_offline - killed,
        kill_to_widget=widget_saw - killed,
    )
