"""Redis dies (``kill -9``, restarted empty) or freezes (``SIGSTOP``): the
service comes back telling the truth, loses nothing durable, and punishes no
operator for heartbeats the store could not take."""

import threading
import time

import pytest

from accounts.models import Operator, Status
from conversations.models import Message
from presence.models import Source, StatusEvent
from tests.drills.conftest import (
    GRACE_SECONDS,
    SWEEP_SENT,
    SWEEP_SUCCEEDED,
    LogWatch,
    Reply,
    http,
    is_hello,
    is_operator_status,
    is_widget_status,
    report,
    sweeps_finished_at,
    wait_until,
    widget_status,
)
from tests.factories import make_account, make_operator, make_token, owner_of

# Real processes and a Redis of the drill's own: not part of the embedded-mode pass.
pytestmark = pytest.mark.production_only

# The promise: every client tells the truth again within this long.
RECOVERY_SECONDS = 30
FREEZE_SECONDS = 20


def test_every_socket_tells_the_truth_again_after_redis_is_killed_and_restarted_empty(drill, sockets):
    cluster = drill.start(webs=("web", "web-2"))
    (web, web_2), worker, beat = cluster.webs, cluster.worker, cluster.beat
    # A website whose agent uses the app (a socket), and one whose operator
    # uses a phone on the REST API; each watched by its owner's dashboard and
    # by a visitor's widget.
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    agent = make_operator(account=account)
    agent_app = sockets.operator(web, make_token(agent))
    dashboard = sockets.operator(web, make_token(owner_of(account)))
    widget = sockets.widget(web, account.widget_key)
    other = make_account(stale_after_seconds=GRACE_SECONDS)
    phone_user = make_operator(account=other)
    phone = {"Authorization": f"Token {make_token(phone_user, is_mobile=True)}"}
    other_dashboard = sockets.operator(web, make_token(owner_of(other)))
    other_widget = sockets.widget(web, other.widget_key)
    for socket in (agent_app, dashboard, other_dashboard):
        socket.wait_for(is_hello, timeout=15, what="every operator socket's hello")
    agent_app.send({"type": "set_status", "status": "online"})
    widget.wait_for(is_widget_status("online"), timeout=10, what="the widget showing the agent online")
    dashboard.wait_for(is_operator_status(agent.id, "online"), timeout=10, what="the dashboard showing the agent")
    # The phone talks to the second web process, which thereby holds a
    # connection to the channel layer from before the outage.
    assert http(web_2, "PUT", "/api/v1/me/status", body={"status": "online"}, headers=phone).status == 200
    other_widget.wait_for(is_widget_status("online"), timeout=10, what="the other widget showing the phone user")
    other_dashboard.wait_for(is_operator_status(phone_user.id, "online"), timeout=10, what="the phone user online")
    events_before = set(StatusEvent.objects.values_list("id", flat=True))

    drill.redis.kill()
    killed = time.monotonic()
    # While Redis is gone the public status still answers (what it says is
    # reported: without the store nobody is known present).
    during = http(web, "GET", f"/widget/v1/{account.widget_key}/status")
    # A visitor leaves a message, the agent switches offline from the app and
    # the phone user from the phone: durable facts, the database is up.
    message = http(
        web,
        "POST",
        f"/widget/v1/{account.widget_key}/messages",
        body={"name": "Visitor", "email": "visitor@example.com", "message": "Anyone there?"},
    )
    switch_sent = time.monotonic()
    agent_app.send({"type": "set_status", "status": "offline"})
    wait_until(
        lambda: Operator.objects.filter(id=agent.id, status=Status.OFFLINE).exists(),
        timeout=30,
        what="the agent's switch to offline stored during the outage",
    )
    switch_stored = time.monotonic() - switch_sent
    phone_switch = http(web, "PUT", "/api/v1/me/status", body={"status": "offline"}, headers=phone)
    phone_heartbeat = http(web, "POST", "/api/v1/me/heartbeat", body={}, headers=phone)
    worker_log, beat_log = LogWatch(worker), LogWatch(beat)
    drill.redis.start()
    restarted, restarted_wall = time.monotonic(), time.time()

    # Nothing failed for want of Redis: the message and both switches were taken.
    assert message.status == 201, message
    assert phone_switch.status == 200, phone_switch
    assert phone_heartbeat.status in (200, 503), phone_heartbeat

    # The open sockets were not closed: the server must bring them the truth.
    truths = [
        (widget, is_widget_status("offline"), "the widget learning the agent went offline"),
        (dashboard, is_operator_status(agent.id, "offline"), "the dashboard learning the agent went offline"),
        (other_widget, is_widget_status("offline"), "the other widget learning the phone user went offline"),
        (other_dashboard, is_operator_status(phone_user.id, "offline"), "the other dashboard learning it"),
    ]
    told = [
        socket.wait_for(check, timeout=RECOVERY_SECONDS - (time.monotonic() - restarted), what=what)[0]
        for socket, check, what in truths
    ]
    assert widget_status(web, account.widget_key) == "offline"
    assert widget_status(web_2, other.widget_key) == "offline"

    # A change after the restart reaches every observer, from either web process.
    changed = time.monotonic()
    agent_app.send({"type": "set_status", "status": "online"})
    assert http(web_2, "PUT", "/api/v1/me/status", body={"status": "online"}, headers=phone).status == 200
    news = [
        (widget, is_widget_status("online"), "the widget after the restart"),
        (dashboard, is_operator_status(agent.id, "online"), "the dashboard after the restart"),
        (other_widget, is_widget_status("online"), "the other widget after the restart"),
        (other_dashboard, is_operator_status(phone_user.id, "online"), "the other dashboard after the restart"),
    ]
    delivered = [socket.wait_for(check, timeout=10, what=what)[0] for socket, check, what in news]
    assert widget_status(web, account.widget_key) == "online"

    # Nothing is wedged: the servers answer and accept new sockets, beat and worker sweep again.
    newcomer = sockets.widget(web_2, account.widget_key)
    newcomer.wait_for(is_widget_status("online"), timeout=10, what="a new widget socket after the restart")
    assert http(web, "GET", "/widget.js").status == 200
    beat_log.wait_for(SWEEP_SENT, timeout=RECOVERY_SECONDS, what="beat sending sweeps after the restart")
    worker_log.wait_for(SWEEP_SUCCEEDED, timeout=RECOVERY_SECONDS, what="the worker sweeping after the restart")
    assert drill.store().client.exists(f"{drill.store().prefix}:epoch"), "no sweep ran on the restarted Redis"
    first_sweep = min(sweeps_finished_at(worker_log.new()))

    # Nothing durable was lost, and nobody was swept for the outage.
    assert events_before <= set(StatusEvent.objects.values_list("id", flat=True))
    assert StatusEvent.objects.filter(operator=agent, old=Status.ONLINE, new=Status.OFFLINE).count() == 1
    assert StatusEvent.objects.filter(operator=phone_user, new=Status.OFFLINE, source=Source.MOBILE).count() == 1
    assert Message.objects.filter(conversation__account=account, body="Anyone there?").exists()
    assert not StatusEvent.objects.filter(source=Source.STALE_SWEEP).exists()
    sockets_opened = [socket.opens for socket in (agent_app, dashboard, widget, other_dashboard, other_widget)]
    assert sockets_opened == [1] * 5, "the server closed sockets"
    report(
        "redis kill -9 and restart",
        outage_seconds=restarted - killed,
        status_during_outage=(during.body or {}).get("status"),
        app_switch_stored_during_outage_after=switch_stored,
        phone_heartbeat_during_outage=phone_heartbeat.status,
        all_sockets_told_the_truth_after_restart=max(told) - restarted,
        change_after_restart_delivered_to_all=max(delivered) - changed,
        first_sweep_after_restart=first_sweep - restarted_wall,
    )


def test_a_frozen_redis_sends_no_wave_of_false_offline_events_when_it_resumes(drill, sockets):
    cluster = drill.start()
    web, worker = cluster.web, cluster.worker
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    agents = [make_operator(account=account) for _ in range(3)]
    apps = [sockets.operator(web, make_token(agent)) for agent in agents]
    dashboard = sockets.operator(web, make_token(owner_of(account)))
    widget = sockets.widget(web, account.widget_key)
    # The dashboard hears of switches only once it has joined the account's
    # group (its hello says so): a switch made before that is not pushed to it.
    dashboard.wait_for(is_hello, timeout=15, what="the dashboard's hello")
    for app in apps:
        app.wait_for(is_hello, timeout=15, what="an agent's hello")
        app.send({"type": "set_status", "status": "online"})
    # The switches come on three sockets, handled side by side: their pushes may come in any order.
    seen_online: set[int] = set()

    def every_agent_seen_online(message: dict) -> bool:
        if message.get("type") == "operator_status" and message.get("status") == "online":
            seen_online.add(message["operator_id"])
        return seen_online >= {agent.id for agent in agents}

    dashboard.wait_for(every_agent_seen_online, timeout=30, what="every agent online")
    widget.wait_for(is_widget_status("online"), timeout=10, what="the widget showing the team online")

    # While Redis is frozen a visitor asks for the status: the answer may be
    # late, but it must come.
    answers = []

    def ask() -> None:
        try:
            answers.append(http(web, "GET", f"/widget/v1/{account.widget_key}/status", timeout=90))
        except OSError as exc:  # reported below, like an answer
            answers.append(exc)

    asker = threading.Thread(target=ask)
    drill.redis.freeze()
    frozen_at = time.time()
    asker.start()
    time.sleep(FREEZE_SECONDS)  # the fault itself lasts this long; the apps keep heartbeating meanwhile
    drill.redis.thaw()
    thawed = time.monotonic()
    asker.join(60)

    # Before the freeze every agent was present until (last heartbeat + grace);
    # wait until sweeps have run past that instant: a store that missed the
    # heartbeats of the freeze would have them swept by then.
    doomed_at = frozen_at + GRACE_SECONDS
    wait_until(
        lambda: any(finished > doomed_at + 1 for finished in sweeps_finished_at(worker.log())),
        timeout=GRACE_SECONDS + 30,
        what="a sweep after the instant the frozen heartbeats would have expired",
        every=0.5,
    )
    swept = list(StatusEvent.objects.filter(source=Source.STALE_SWEEP).values_list("operator_id", "at"))
    assert swept == [], f"operators swept for the freeze: {swept}"
    statuses = dict(Operator.objects.filter(account=account).values_list("id", "status"))
    assert [statuses.get(agent.id) for agent in agents] == [Status.ONLINE] * len(agents), statuses
    assert not [m for m in dashboard.drain() if m.get("type") == "operator_status" and m["status"] == "offline"]
    assert not [m for m in widget.drain() if m.get("status") == "offline"]
    assert widget_status(web, account.widget_key) == "online"
    # The visitor who asked during the freeze got an answer (once Redis was back).
    (answer,) = answers
    assert isinstance(answer, Reply) and answer.status == 200, answer
    report(
        "redis frozen 20 s",
        freeze_seconds=FREEZE_SECONDS,
        status_answer_during_freeze_took=answer.seconds,
        status_during_freeze=answer.body["status"],
        observed_after_thaw=time.monotonic() - thawed,
    )
