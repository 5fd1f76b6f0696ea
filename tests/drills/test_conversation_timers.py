"""The busy message's timer survives the faults of a real deployment: a
worker killed with the timer due, and a Redis restart that loses every timer.
Each time the visitor gets the busy message exactly once."""

import time

import pytest
from django.test import override_settings

from conversations.models import Conversation, Message
from tests.drills.conftest import BUSY_AFTER_SECONDS, is_hello, is_operator_status, ready, report, wait_until
from tests.factories import make_account, make_operator, make_token

pytestmark = [pytest.mark.production_only, pytest.mark.usefixtures("busy_after")]


@pytest.fixture
def busy_after():
    # This process writes through the services too: the children's delay.
    with override_settings(CONVERSATION_BUSY_AFTER_SECONDS=BUSY_AFTER_SECONDS):
        yield


def online_agent(web, sockets):
    account = make_account()
    agent = make_operator(account=account)
    app = sockets.operator(web, make_token(agent))
    app.wait_for(is_hello, timeout=15, what="the agent's hello")
    app.send({"type": "set_status", "status": "online"})
    app.wait_for(is_operator_status(agent.id, "online"), timeout=10, what="the agent online")
    return account, agent, app


def visitor_writes(web, account, body: str, client_id: str) -> dict:
    from tests.drills.conftest import http

    reply = http(
        web,
        "POST",
        f"/widget/v1/{account.widget_key}/conversations",
        body={"body": body, "client_id": client_id},
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 201, reply
    return reply.body


def busy_messages(conversation_id: int) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id, kind=Message.Kind.BUSY))


def automatic_messages(conversation_id: int) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id, author=Message.Author.SYSTEM))


def test_a_worker_killed_with_a_busy_timer_due_sends_it_once_after_restart(drill, sockets):
    cluster = drill.start()
    account, _agent, app = online_agent(cluster.web, sockets)
    # Before the fault: how precise the timer is on this machine.
    first = visitor_writes(cluster.web, account, "Anyone?", "drill-1")
    conversation_id = first["conversation"]["id"]
    wait_until(lambda: busy_messages(conversation_id), timeout=BUSY_AFTER_SECONDS + 10, what="the first busy message")
    (busy,) = busy_messages(conversation_id)
    waited = Conversation.objects.get(id=conversation_id).messages.get(seq=1).created_at
    lateness = (busy.created_at - waited).total_seconds() - BUSY_AFTER_SECONDS

    # The worker dies; a visitor writes and the timer falls due with no worker at all.
    cluster.worker.kill()
    killed = time.monotonic()
    second = visitor_writes(cluster.web, account, "Hello?", "drill-2")
    other_id = second["conversation"]["id"]
    assert other_id != conversation_id
    time.sleep(BUSY_AFTER_SECONDS + 2)  # the fault itself: the timer is due while no worker runs
    assert busy_messages(other_id) == []
    worker = ready(drill.celery("worker", "worker-restarted"))
    restarted = time.monotonic()
    wait_until(lambda: busy_messages(other_id), timeout=30, what="the busy message after the worker restart")
    delivered_after_restart = time.monotonic() - restarted
    # Beat keeps firing every second: a while later there is still exactly one.
    time.sleep(3)  # give any duplicate the chance to appear
    assert len(busy_messages(other_id)) == 1
    assert len(busy_messages(conversation_id)) == 1
    assert "timers_fire" in worker.log()
    report(
        "busy timer, worker killed",
        busy_lateness_before_fault=lateness,
        worker_down_seconds=restarted - killed,
        busy_sent_after_worker_restart=delivered_after_restart,
        busy_messages=len(busy_messages(other_id)),
    )
    assert -0.5 <= lateness <= 2.5, lateness


def test_a_redis_restart_with_busy_timers_due_sends_each_once(drill, sockets):
    cluster = drill.start()
    account, _agent, _app = online_agent(cluster.web, sockets)
    started = [visitor_writes(cluster.web, account, f"Question {n}", f"redis-{n}") for n in range(3)]
    ids = [item["conversation"]["id"] for item in started]
    assert drill.store().client.zcard(f"{drill.store().prefix}:timers") == 3

    drill.redis.kill()
    drill.redis.start()
    restarted = time.monotonic()
    # The agent's app keeps its socket and heartbeats: presence comes back in the new Redis.

    wait_until(
        lambda: all(automatic_messages(conversation_id) for conversation_id in ids),
        timeout=BUSY_AFTER_SECONDS + 30,
        what="every automatic message after the Redis restart",
    )
    sent_after = time.monotonic() - restarted
    time.sleep(3)  # give any duplicate the chance to appear
    kinds = [[m.kind for m in automatic_messages(conversation_id)] for conversation_id in ids]
    # The agent stayed online: the busy message, once each (the offline one only
    # if presence had not come back yet when the timer fired).
    assert all(len(found) == 1 for found in kinds), kinds
    report(
        "busy timers, redis restarted",
        timers=len(ids),
        all_sent_after_restart=sent_after,
        kinds=sorted({kind for found in kinds for kind in found}),
    )
