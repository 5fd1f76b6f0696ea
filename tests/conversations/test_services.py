"""Rules 6–8 through the services: who gets a conversation, the first reply
takes it, the offline message and the busy timer. Time travels; nothing sleeps."""

import json
import threading

import pytest
from django.db import connection

from accounts.models import Operator, Status
from accounts.services import account_update
from conversations import services
from conversations.models import Conversation, Message
from presence.services import operator_set_status
from presence.store import get_store
from tests.conversations.conftest import conversations_db, go_online, visitor_writes
from tests.factories import make_account, make_group, make_operator

pytestmark = conversations_db


def kinds(conversation) -> list[tuple[str, str]]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("author", "kind"))


def writes_again(account, started, body: str, *, client_id: str):
    """The visitor of ``started`` writes into that conversation (by visitor id)."""
    return services.visitor_message_post(
        account_id=account.id,
        visitor_id=started.conversation.visitor_id,
        conversation_id=started.conversation.id,
        body=body,
        client_id=client_id,
    )


def test_a_visitor_message_starts_a_conversation_and_a_token(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="a1")
    assert started.created and started.visitor_token
    assert started.message.seq == 1 and started.message.author == "visitor"
    conversation = started.conversation
    assert conversation.status == "open" and conversation.waiting_since is not None
    # The same visitor writes again: the same conversation, the next seq.
    again = visitor_writes(account, "Still there?", token=started.visitor_token, client_id="a2")
    assert again.conversation.id == conversation.id and again.message.seq == 2


def test_the_same_client_id_never_makes_a_second_message(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="same")
    posted = writes_again(account, started, "Hi", client_id="same")
    assert not posted.created and posted.message.id == started.message.id
    assert Message.objects.filter(conversation=started.conversation).count() == 1


def test_a_lost_first_answer_is_retried_without_token_and_gets_the_same_message(account, agent, clock):
    go_online(agent)
    first = visitor_writes(account, "Hi", client_id="lost")
    retry = visitor_writes(account, "Hi", client_id="lost")
    assert not retry.created and retry.message.id == first.message.id
    assert retry.visitor_token != first.visitor_token
    assert Conversation.objects.count() == 1


def frames_heard(published, kind: str) -> list[dict]:
    """The conversation frames published to the operators (``operators``) or to the visitor's widgets (``visitor``)."""
    wanted = {"operators": "conversation.frame", "visitor": "widget.visitor"}[kind]
    return [json.loads(message["text"]) for _group, message in published if message["type"] == wanted]


@pytest.mark.parametrize("box", ["online", "offline"])
def test_a_retry_publishes_what_a_process_that_died_before_its_publish_never_did(
    account, agent, clock, published, monkeypatch, box
):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="first")
    if box == "offline":
        # The next message begins an offline stretch: an offline message is stored with it.
        operator_set_status(operator=agent, status=Status.OFFLINE, source="dashboard")
    published.clear()
    # The process that stores the next message dies between its COMMIT and its publish.
    with monkeypatch.context() as dying:
        dying.setattr(services, "_publish", lambda conversation, **kwargs: None)
        lost = writes_again(account, started, "Anyone?", client_id="lost")
    assert frames_heard(published, "operators") == []

    retry = writes_again(account, started, "Anyone?", client_id="lost")

    assert not retry.created and retry.message.id == lost.message.id
    for heard in (frames_heard(published, "operators"), frames_heard(published, "visitor")):
        assert heard[0]["type"] == "conversation" and heard[0]["conversation"]["id"] == started.conversation.id
        messages = [(frame["message"]["seq"], frame["message"]["kind"]) for frame in heard[1:]]
        # With the offline message stored with it, when the box was offline.
        assert messages == [(lost.message.seq, "text")] + (
            [(lost.message.seq + 1, "offline")] if box == "offline" else []
        )
    assert Message.objects.filter(conversation=started.conversation).count() == lost.message.seq + (box == "offline")


def test_a_retried_reply_and_a_retried_first_message_are_published_again(account, agent, clock, published):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="start")
    reply = {"conversation_id": started.conversation.id, "operator": agent, "body": "Hello!", "client_id": "r1"}
    services.operator_message_post(**reply)
    # The conversation closed since: the retry of a stored reply still answers it.
    services.conversation_close(conversation_id=started.conversation.id, actor=agent)
    published.clear()

    again = services.operator_message_post(**reply)
    restarted = visitor_writes(account, "Hi", client_id="start")  # its answer (the token) was lost

    assert not again.created and not restarted.created
    heard = [
        (frame["type"], frame.get("message", {}).get("client_id")) for frame in frames_heard(published, "operators")
    ]
    assert heard == [("conversation", None), ("message", "r1"), ("conversation", None), ("message", "start")]
    # The visitor's widget hears the first message again under its new token.
    to_visitor = [
        (message["visitor"], json.loads(message["text"]))
        for _g, message in published
        if message["type"] == "widget.visitor"
    ]
    new_token = Conversation.objects.get().visitor.token_hash
    assert [
        frame["message"]["client_id"]
        for digest, frame in to_visitor
        if frame["type"] == "message" and digest == new_token
    ] == ["start"]


def test_offline_box_answers_with_the_offline_message_once_per_stretch(account, clock):
    started = visitor_writes(account, "Anyone?", client_id="o1")
    assert kinds(started.conversation) == [("visitor", "text"), ("system", "offline")]
    offline = Message.objects.get(conversation=started.conversation, kind="offline")
    assert offline.asks_email and "e-mail" in offline.body
    visitor_writes(account, "Hello??", token=started.visitor_token, client_id="o2")
    assert kinds(started.conversation)[-1] == ("visitor", "text")
    assert Message.objects.filter(kind="offline").count() == 1


def test_the_offline_message_is_in_czech_for_a_czech_account(clock):
    account = make_account(language="cs")
    started = visitor_writes(account, "Haló", client_id="cs")
    offline = Message.objects.get(conversation=started.conversation, kind="offline")
    assert offline.body  # translated text (catalogue permitting) — and never empty


def test_busy_message_after_the_delay_exactly_once(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="b1")
    clock.shift(44)
    assert services.timers_fire() == 0
    clock.shift(1)
    assert services.timers_fire() == 1
    assert kinds(started.conversation)[-1] == ("system", "busy")
    # More visitor messages in the same unanswered stretch: no second busy message.
    visitor_writes(account, "Hello?", token=started.visitor_token, client_id="b2")
    clock.shift(60)
    services.timers_fire()
    assert Message.objects.filter(kind="busy").count() == 1


def test_a_reply_before_the_delay_cancels_the_busy_message(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="r1")
    clock.shift(30)
    services.operator_message_post(
        conversation_id=started.conversation.id, operator=agent, body="Hello!", client_id="op1"
    )
    clock.shift(30)
    services.timers_fire()
    assert not Message.objects.filter(kind="busy").exists()
    # A new unanswered stretch gets its own busy message.
    visitor_writes(account, "One more thing", token=started.visitor_token, client_id="r2")
    clock.shift(45)
    services.timers_fire()
    assert Message.objects.filter(kind="busy").count() == 1


@pytest.mark.parametrize("shift", [10, 25])  # the new moment still ahead; already past
def test_a_shorter_busy_delay_moves_the_timers_of_conversations_already_waiting(account, agent, clock, shift):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="short")
    assert services.timers_fire() == 0  # and the timers' periodic reseed from the database is done for a minute
    clock.shift(shift)
    account_update(account=account, busy_after_seconds=20)
    clock.shift(max(0, 20 - shift))  # 20 s (or more) after the message: due under the new delay, not the old 45 s
    assert services.timers_fire() == 1
    assert kinds(started.conversation)[-1] == ("system", "busy")
    clock.shift(60)
    services.timers_fire()
    assert Message.objects.filter(kind="busy").count() == 1


def test_a_longer_busy_delay_holds_back_the_timers_of_conversations_already_waiting(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="long")
    account_update(account=account, busy_after_seconds=90)
    clock.shift(45)
    services.timers_fire()
    assert not Message.objects.filter(kind="busy").exists()
    clock.shift(45)
    assert services.timers_fire() == 1
    assert kinds(started.conversation)[-1] == ("system", "busy")


def test_one_firing_stores_each_conversation_as_decided_busy_offline_or_nothing(account, clock):
    sales, night, late = (make_operator(account=account) for _ in range(3))
    for key, member in (("sales", sales), ("night", night), ("late", late)):
        make_group(account=account, key=key, members=[member])
        go_online(member)
    busy = visitor_writes(account, "Hi", client_id="f1", group_key="sales")
    gone = visitor_writes(account, "Hi", client_id="f2", group_key="night")
    told = visitor_writes(account, "Hi", client_id="f3", group_key="late")
    for member in (night, late):
        operator_set_status(operator=member, status=Status.OFFLINE, source="dashboard")
    # Written while its box is offline: the offline message comes at once, the busy timer finds nothing to add.
    visitor_writes(account, "Hello?", token=told.visitor_token, client_id="f4", group_key="late")
    clock.shift(46)
    assert services.timers_fire() == 3
    assert kinds(busy.conversation)[1:] == [("system", "busy")]
    assert kinds(gone.conversation)[1:] == [("system", "offline")]
    assert kinds(told.conversation)[1:] == [("visitor", "text"), ("system", "offline")]
    for started, offline_notified in ((busy, False), (gone, True), (told, True)):
        stored = Conversation.objects.get(id=started.conversation.id)
        assert stored.busy_sent_seq == stored.waiting_seq == 1
        assert stored.last_seq == Message.objects.filter(conversation=stored).count()
        last = Message.objects.filter(conversation=stored).order_by("seq").last()
        assert stored.last_message_at == last.created_at
        assert stored.offline_notified is offline_notified
    clock.shift(60)
    services.timers_fire()
    assert kinds(busy.conversation)[1:] == [("system", "busy")]


def test_a_busy_timer_fired_twice_sends_once(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="t1")
    clock.shift(46)
    assert services.conversation_busy_fire(conversation_id=started.conversation.id) is not None
    assert services.conversation_busy_fire(conversation_id=started.conversation.id) is None
    assert Message.objects.filter(kind="busy").count() == 1


def test_busy_timers_come_back_from_the_database_when_the_store_lost_them(account, agent, clock, running_store):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="lost-timer")
    running_store.reset()  # a Redis restart: every timer gone
    go_online(agent)
    clock.shift(46)
    services.timers_fire()
    assert Message.objects.filter(conversation=started.conversation, kind="busy").count() == 1


def test_the_first_reply_takes_the_conversation(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="f1")
    colleague = make_operator(account=account)
    services.operator_message_post(conversation_id=started.conversation.id, operator=agent, body="Me", client_id="x1")
    services.operator_message_post(
        conversation_id=started.conversation.id, operator=colleague, body="Me too", client_id="x2"
    )
    conversation = Conversation.objects.get(id=started.conversation.id)
    assert conversation.assignee_id == agent.id and conversation.waiting_since is None
    assert [seq for seq in conversation.messages.values_list("seq", flat=True).order_by("seq")] == [1, 2, 3]


@pytest.mark.production_only  # row locks race only on PostgreSQL
def test_two_operators_replying_at_once_one_assignee_both_replies(account, agent):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="race")
    colleague = make_operator(account=account)
    barrier = threading.Barrier(2)
    errors = []

    def reply(operator: Operator, client_id: str) -> None:
        try:
            barrier.wait(5)
            services.operator_message_post(
                conversation_id=started.conversation.id, operator=operator, body="Here", client_id=client_id
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reply, args=(op, f"r{op.id}")) for op in (agent, colleague)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    conversation = Conversation.objects.get(id=started.conversation.id)
    assert conversation.assignee_id in (agent.id, colleague.id)
    assert conversation.messages.filter(author="operator").count() == 2
    assert sorted(conversation.messages.values_list("seq", flat=True)) == [1, 2, 3]


def test_rule_6_agents_of_another_group_cannot_reply(clock):
    account = make_account()
    sales_agent, support_agent = make_operator(account=account), make_operator(account=account)
    make_group(account=account, key="sales", members=[sales_agent])
    make_group(account=account, key="support", members=[support_agent])
    go_online(sales_agent)
    started = visitor_writes(account, "Price?", client_id="g1", group_key="sales")
    with pytest.raises(services.ConversationNotFound):
        services.operator_message_post(
            conversation_id=started.conversation.id, operator=support_agent, body="?", client_id="s1"
        )
    services.operator_message_post(
        conversation_id=started.conversation.id, operator=sales_agent, body="10", client_id="s2"
    )


def test_a_visitor_writing_to_a_closed_conversation_reopens_it(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="c1")
    services.conversation_close(conversation_id=started.conversation.id, actor=agent)
    writes_again(account, started, "Wait", client_id="c2")
    assert Conversation.objects.get(id=started.conversation.id).status == "open"
    with pytest.raises(services.ConversationNotFound):
        services.conversation_close(
            conversation_id=started.conversation.id, actor=make_operator(account=make_account())
        )


def test_timers_live_in_the_store(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="ts")
    claimed = get_store().timers_claim(now=(clock.time() if hasattr(clock, "time") else 0) + 10**10, limit=10, lease=1)
    assert [name for name, _until in claimed] == [f"busy:{started.conversation.id}"]


def test_a_visitor_message_costs_three_queries(account, agent, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="q1")
    services.operator_message_post(conversation_id=started.conversation.id, operator=agent, body="Yes?", client_id="q2")
    from tests.presence.conftest import count_queries

    with count_queries() as queries:
        writes_again(account, started, "A question", client_id="q3")
    # Transaction control is not a query.
    statements = [sql for sql in queries.sql if not sql.upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    assert len(statements) <= 3, statements
