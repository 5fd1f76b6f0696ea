"""The FAQ bot through the services: when it speaks, when it keeps quiet,
what the visitor's feedback does, and that it never costs a visitor their
message. Time travels; nothing sleeps."""

import itertools
import json
import logging

import pytest
from django.core.exceptions import ValidationError

from accounts.models import BotMode
from accounts.services import account_update
from conversations import services
from conversations.faq import selectors as faq_selectors
from conversations.faq import services as faq
from conversations.models import Conversation, FaqAnswer, FaqMiss, Message
from groups.services import group_delete
from presence.store import get_store
from tests.conversations.conftest import conversations_db, go_online
from tests.conversations.conftest import visitor_writes as _visitor_writes
from tests.factories import make_account, make_group, make_operator

pytestmark = conversations_db

HOURS = "We are open Mon–Fri 8:00–18:00."
_ids = itertools.count(1)


def visitor_writes(account, body, **fields):
    return _visitor_writes(account, body, client_id=f"v{next(_ids)}", **fields)


@pytest.fixture
def hours_entry(account):
    return faq.faq_entry_create(
        account=account,
        question="What are your opening hours?",
        phrasings=["When are you open?"],
        answer=HOURS,
        language="en",
    )


def kinds(conversation) -> list[tuple[str, str]]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("author", "kind"))


def set_mode(account, mode: str) -> None:
    account_update(account=account, bot_mode=mode)


def test_an_offline_box_gets_the_offline_message_then_the_bot_answer(account, hours_entry, clock, published):
    started = visitor_writes(account, "oteviraci... sorry, what are your opening hours?")
    # It should answer right after the automatic message.
    assert kinds(started.conversation) == [("visitor", "text"), ("system", "offline"), ("bot", "faq")]
    bot = Message.objects.get(conversation=started.conversation, author="bot")
    assert bot.body == HOURS and bot.client_id == "auto:faq:1"
    answer = FaqAnswer.objects.get(message=bot)
    assert answer.entry == hours_entry and answer.score >= 0.35 and answer.feedback == ""
    frames = [json.loads(message["text"]) for _group, message in published if "text" in message]
    assert any(f.get("message", {}).get("author") == "bot" for f in frames)
    assert any(f.get("message", {}).get("faq") == {"entry_id": hours_entry.id, "feedback": ""} for f in frames)


def test_an_online_box_with_no_busy_message_due_is_not_matched(account, agent, hours_entry, clock, monkeypatch):
    go_online(agent)
    calls = []
    monkeypatch.setattr(faq, "faq_match", lambda **kw: calls.append(kw) or (None, None))
    started = visitor_writes(account, "What are your opening hours?")
    # It should not even try: the operators are there.
    assert calls == [] and kinds(started.conversation) == [("visitor", "text")]


def test_the_busy_message_is_followed_by_the_bot_answer(account, agent, hours_entry, clock):
    go_online(agent)
    started = visitor_writes(account, "Hi, when are you open on Friday?")
    clock.shift(46)
    services.timers_fire()
    assert kinds(started.conversation) == [("visitor", "text"), ("system", "busy"), ("bot", "faq")]


def test_busy_timers_of_an_account_with_no_entry_make_no_bot_try(account, agent, clock, monkeypatch):
    go_online(agent)
    tries = []
    monkeypatch.setattr(faq, "faq_bot_answer_safely", lambda **kw: tries.append(kw))
    for n in range(5):
        visitor_writes(account, f"Question {n}?")
    clock.shift(46)
    services.timers_fire()

    # It should send the five busy messages and not try the bot on any of them.
    assert Message.objects.filter(conversation__account=account, kind="busy").count() == 5
    assert tries == []


def test_first_mode_answers_at_once_and_the_wait_ends(account, agent, hours_entry, clock):
    set_mode(account, BotMode.FIRST)
    go_online(agent)
    started = visitor_writes(account, "opening hours?")
    conversation = Conversation.objects.get(id=started.conversation.id)
    assert kinds(conversation) == [("visitor", "text"), ("bot", "faq")]
    # It should leave nobody waiting, so no busy message comes.
    assert conversation.waiting_since is None
    clock.shift(60)
    services.timers_fire()
    assert not Message.objects.filter(kind="busy").exists()


def test_first_mode_stays_quiet_once_an_operator_has_the_conversation(account, agent, hours_entry, clock):
    set_mode(account, BotMode.FIRST)
    go_online(agent)
    started = visitor_writes(account, "Hello")
    services.operator_message_post(conversation_id=started.conversation.id, operator=agent, body="Hi!", client_id="o1")
    visitor_writes(account, "what are your opening hours?", token=started.visitor_token)
    assert not Message.objects.filter(author="bot").exists()


def test_off_means_off(account, hours_entry, clock):
    set_mode(account, BotMode.OFF)
    started = visitor_writes(account, "What are your opening hours?")
    assert kinds(started.conversation) == [("visitor", "text"), ("system", "offline")]


def test_the_same_entry_is_never_answered_twice(account, hours_entry, clock):
    started = visitor_writes(account, "What are your opening hours?")
    visitor_writes(account, "opening hours??", token=started.visitor_token)
    assert Message.objects.filter(author="bot").count() == 1


def test_not_confident_means_silent_and_the_question_is_kept(account, hours_entry, clock):
    started = visitor_writes(account, "Do you sell kids' bikes?")
    assert kinds(started.conversation) == [("visitor", "text"), ("system", "offline")]
    miss = FaqMiss.objects.get()
    assert miss.question == "Do you sell kids' bikes?" and miss.conversation_id == started.conversation.id


def test_an_account_without_entries_keeps_no_unanswered_questions(account, clock):
    visitor_writes(account, "Do you sell kids' bikes?")
    assert not FaqMiss.objects.exists()


def test_greetings_are_not_kept_as_unanswered_questions(account, hours_entry, clock):
    visitor_writes(account, "Dobrý den!")
    assert not FaqMiss.objects.exists() and not Message.objects.filter(author="bot").exists()


def test_a_matcher_failure_costs_the_visitor_nothing(account, hours_entry, clock, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(faq, "faq_match", broken)
    with caplog.at_level(logging.ERROR):
        started = visitor_writes(account, "What are your opening hours?")
    # It should store and route the message, stay silent and log the error.
    assert kinds(started.conversation) == [("visitor", "text"), ("system", "offline")]
    assert "FAQ bot failed" in caplog.text and "index exploded" in caplog.text


def test_a_failing_hook_does_not_fail_the_write(account, hours_entry, clock, monkeypatch, caplog):
    monkeypatch.setattr(faq, "faq_bot_consider", lambda **kw: 1 / 0)
    with caplog.at_level(logging.ERROR):
        started = visitor_writes(account, "What are your opening hours?")
    assert Message.objects.filter(conversation=started.conversation, author="visitor").count() == 1
    assert "FAQ bot hook" in caplog.text


def test_a_group_entry_answers_only_its_groups_conversations(account, clock):
    sales = make_group(account=account, key="sales")
    faq.faq_entry_create(
        account=account, question="Do you ship to Slovakia?", answer="Yes.", language="en", group_id=sales.id
    )
    visitor_writes(account, "do you ship to slovakia?")
    assert not Message.objects.filter(author="bot").exists()
    visitor_writes(account, "do you ship to slovakia?", group_key="sales")
    assert Message.objects.filter(author="bot").count() == 1


def test_deleting_a_group_takes_its_entries_out_of_the_index_so_an_account_wide_one_answers(account, clock):
    sales = make_group(account=account, key="sales")
    faq.faq_entry_create(
        account=account, question="Do you ship to Slovakia?", answer="Sales: yes.", language="en", group_id=sales.id
    )
    everyone = faq.faq_entry_create(
        account=account, question="Do you ship abroad?", answer="Yes, across the EU.", language="en"
    )
    account.refresh_from_db()
    matched, _nearest = faq_selectors.faq_match(account=account, text="do you ship to slovakia?", any_group=True)
    assert matched is not None and matched.entry.group_id == sales.id  # the index holds the group's entry

    group_delete(group=sales)

    account.refresh_from_db()
    matched, _nearest = faq_selectors.faq_match(account=account, text="do you ship to slovakia?", any_group=True)
    assert matched is not None and matched.entry == everyone


def feedback(started, message, value):
    return faq.faq_feedback_give(
        account_id=started.conversation.account_id,
        token_digest=started.conversation.visitor.token_hash,
        conversation_id=started.conversation.id,
        message_id=message.id,
        feedback=value,
    )


def test_that_helped_is_recorded_once_and_ends_the_wait(account, agent, hours_entry, clock):
    go_online(agent)
    started = visitor_writes(account, "When are you open?")
    clock.shift(46)
    services.timers_fire()
    bot = Message.objects.get(author="bot")
    feedback(started, bot, "helpful")
    feedback(started, bot, "talk_to_person")  # the first choice is kept
    assert FaqAnswer.objects.get().feedback == "helpful"
    assert Conversation.objects.get().waiting_since is None


def test_talk_to_a_person_makes_the_conversation_wait_and_silences_the_bot(account, agent, hours_entry, clock):
    set_mode(account, BotMode.FIRST)
    go_online(agent)
    started = visitor_writes(account, "opening hours?")
    bot = Message.objects.get(author="bot")
    message = feedback(started, bot, "talk_to_person")
    assert message.faq_answer.feedback == "talk_to_person"
    conversation = Conversation.objects.get()
    assert conversation.waiting_since is not None
    # It should set the busy timer like any unanswered stretch.
    clock.shift(46)
    services.timers_fire()
    assert Message.objects.filter(kind="busy").count() == 1
    faq.faq_entry_create(account=account, question="Do you ship abroad?", answer="Yes.", language="en")
    visitor_writes(account, "do you ship abroad?", token=started.visitor_token)
    assert Message.objects.filter(author="bot").count() == 1


def test_feedback_on_another_visitors_conversation_is_not_found(account, hours_entry, clock):
    started = visitor_writes(account, "What are your opening hours?")
    bot = Message.objects.get(author="bot")
    with pytest.raises(services.ConversationNotFound):
        faq.faq_feedback_give(
            account_id=account.id,
            token_digest="0" * 64,
            conversation_id=started.conversation.id,
            message_id=bot.id,
            feedback="helpful",
        )
    with pytest.raises(faq.FeedbackNotFound):
        feedback(started, started.message, "helpful")


def test_an_edited_entry_is_matched_at_once(account, hours_entry, clock):
    account.refresh_from_db()
    before = faq_selectors.faq_index(account_id=account.id, version=account.faq_version)
    faq.faq_entry_update(entry=hours_entry, question="When is the shop open?", phrasings=["Store hours"])
    account.refresh_from_db()
    after = faq_selectors.faq_index(account_id=account.id, version=account.faq_version)
    assert after is not before and after.best("store hours", any_group=True).entry_id == hours_entry.id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"question": "  "}, "question"),
        ({"question": "x" * 301}, "question"),
        ({"answer": ""}, "answer"),
        ({"answer": "See <a href='https://x.example'>here</a>"}, "answer"),
        ({"answer": "x" * 2001}, "answer"),
        ({"question": "<script>alert(1)</script>"}, "question"),
        ({"phrasings": ["ok", "<b>bold</b>"]}, "phrasings"),
        ({"phrasings": "not a list"}, "phrasings"),
        ({"phrasings": ["p"] * 21}, "phrasings"),
        ({"language": "de"}, "language"),
    ],
)
def test_bad_entries_are_refused_naming_the_field(account, fields, field):
    values = {"question": "Opening hours?", "answer": "9 to 5, see https://shop.example/hours", "language": "en"}
    with pytest.raises(ValidationError) as refused:
        faq.faq_entry_create(account=account, **{**values, **fields})
    assert field in refused.value.message_dict


def test_another_accounts_group_is_an_unknown_group(account):
    other = make_group(account=make_account(), key="sales")
    with pytest.raises(ValidationError) as refused:
        faq.faq_entry_create(account=account, question="Q?", answer="A.", language="en", group_id=other.id)
    assert refused.value.message_dict == {"group": ["Unknown group."]}


def test_the_store_keeps_no_bot_state(account, hours_entry, clock):
    # The bot's facts live in the database: a store wipe changes nothing of them.
    visitor_writes(account, "opening hours?")
    get_store().reset()
    assert FaqAnswer.objects.count() == 1


def test_the_operator_suggestion_is_the_best_entry_for_the_last_question(account, agent, hours_entry, clock):
    go_online(agent)
    started = visitor_writes(account, "when are you open tomorrow?")
    conversation = Conversation.objects.select_related("account", "group").get(id=started.conversation.id)
    suggestion = faq_selectors.faq_suggestion(conversation=conversation)
    assert suggestion["entry_id"] == hours_entry.id and suggestion["answer"] == HOURS
    make_operator(account=account)  # nothing to do with it: just another reader
    visitor_writes(account, "thanks, bye", token=started.visitor_token)
    assert faq_selectors.faq_suggestion(conversation=conversation) is None


def test_a_question_an_operator_answered_is_not_suggested_any_more(account, agent, hours_entry, clock):
    go_online(agent)
    started = visitor_writes(account, "when are you open tomorrow?")
    conversation = Conversation.objects.select_related("account", "group").get(id=started.conversation.id)
    services.operator_message_post(conversation_id=conversation.id, operator=agent, body="9 to 5.", client_id="r")
    assert faq_selectors.faq_suggestion(conversation=conversation) is None
    # Asked again after the answer: offered again.
    visitor_writes(account, "and when are you open on Saturday?", token=started.visitor_token)
    assert faq_selectors.faq_suggestion(conversation=conversation)["entry_id"] == hours_entry.id


def test_first_mode_queues_the_try_off_the_request(account, agent, hours_entry, clock, monkeypatch):
    from conversations import tasks

    set_mode(account, BotMode.FIRST)
    go_online(agent)
    queued = []
    monkeypatch.setattr(tasks.faq_answer, "apply_async", lambda kwargs, expires: queued.append((kwargs, expires)))
    started = visitor_writes(account, "opening hours?")
    # It should leave the match to a worker: nothing answered in the request.
    assert kinds(started.conversation) == [("visitor", "text")]
    assert queued == [({"conversation_id": started.conversation.id, "from_seq": 1, "upto_seq": 1}, 60)]
    # The worker's run answers.
    tasks.faq_answer(**queued[0][0])
    assert kinds(started.conversation) == [("visitor", "text"), ("bot", "faq")]


def test_a_broker_that_refuses_the_task_leaves_the_answer_to_the_request(
    account, agent, hours_entry, clock, monkeypatch
):
    from conversations import tasks

    def refused(**kwargs):
        raise ConnectionError("broker down")

    set_mode(account, BotMode.FIRST)
    go_online(agent)
    monkeypatch.setattr(tasks.faq_answer, "apply_async", refused)
    started = visitor_writes(account, "opening hours?")
    assert kinds(started.conversation) == [("visitor", "text"), ("bot", "faq")]
