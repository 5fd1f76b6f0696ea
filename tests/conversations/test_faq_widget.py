"""The bot in the widget's endpoints: the answer comes with the conversation,
and the visitor's "That helped" / "Talk to a person" is recorded."""

import json

import pytest
from django.test import Client

from conversations.faq.services import faq_entry_create
from conversations.models import FaqAnswer
from tests.conversations.conftest import conversations_db
from tests.factories import make_account

pytestmark = conversations_db


@pytest.fixture
def client():
    return Client(REMOTE_ADDR="203.0.113.7")


@pytest.fixture
def shop():
    account = make_account(language="cs")
    faq_entry_create(
        account=account,
        question="Jaká je otevírací doba?",
        phrasings=["Kdy máte otevřeno?"],
        answer="Po–Pá 8–18, více na https://shop.example/hodiny",
        language="cs",
    )
    return account


def post(client, path, data, token=None):
    headers = {"HTTP_X_VISITOR_TOKEN": token} if token else {}
    return client.post(path, json.dumps(data), content_type="application/json", **headers)


def ask(client, account, body="oteviraci doba?"):
    started = post(client, f"/widget/v1/{account.widget_key}/conversations", {"body": body, "client_id": "q1"})
    token = started.json()["visitor_token"]
    current = client.get(f"/widget/v1/{account.widget_key}/conversations/current", HTTP_X_VISITOR_TOKEN=token)
    return token, current.json()


def test_the_bot_answer_is_in_the_conversation_with_its_buttons(client, shop):
    _token, current = ask(client, shop)
    bot = current["messages"][-1]
    # It should come after the offline message, as the bot, with what the buttons need.
    assert [m["kind"] for m in current["messages"]] == ["text", "offline", "faq"]
    assert bot["author"] == "bot" and bot["faq"]["feedback"] == ""
    assert bot["body"].startswith("Po–Pá")


def test_that_helped_is_recorded(client, shop):
    token, current = ask(client, shop)
    bot = current["messages"][-1]
    path = f"/widget/v1/{shop.widget_key}/conversations/{bot['conversation_id']}/messages/{bot['id']}/feedback"
    answer = post(client, path, {"helpful": True}, token=token)
    assert answer.status_code == 200 and answer.json()["faq"]["feedback"] == "helpful"
    assert FaqAnswer.objects.get().feedback == "helpful"
    # The first choice is kept.
    assert post(client, path, {"talk_to_person": True}, token=token).json()["faq"]["feedback"] == "helpful"


@pytest.mark.parametrize("body", [{}, {"helpful": "yes"}, {"helpful": True, "talk_to_person": True}, {"x": 1}])
def test_a_feedback_that_is_not_one_choice_is_a_400(client, shop, body):
    token, current = ask(client, shop)
    bot = current["messages"][-1]
    path = f"/widget/v1/{shop.widget_key}/conversations/{bot['conversation_id']}/messages/{bot['id']}/feedback"
    answer = post(client, path, body, token=token)
    assert answer.status_code == 400 and "feedback" in answer.json()["fields"]


def test_feedback_without_the_visitors_token_or_on_another_message_is_a_404(client, shop):
    token, current = ask(client, shop)
    bot, first = current["messages"][-1], current["messages"][0]
    base = f"/widget/v1/{shop.widget_key}/conversations/{bot['conversation_id']}/messages"
    assert post(client, f"{base}/{bot['id']}/feedback", {"helpful": True}).status_code == 404
    other = make_account()
    assert (
        post(
            client,
            f"/widget/v1/{other.widget_key}/conversations/{bot['conversation_id']}/messages/{bot['id']}/feedback",
            {"helpful": True},
            token=token,
        ).status_code
        == 404
    )
    assert post(client, f"{base}/{first['id']}/feedback", {"helpful": True}, token=token).status_code == 404
    assert post(client, f"{base}/999999/feedback", {"helpful": True}, token=token).status_code == 404
