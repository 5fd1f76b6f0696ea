"""POST /widget/v1/{key}/messages, the offline form of older widget scripts: the
visitor's message starts a conversation, and the admins are e-mailed."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from accounts.models import Operator
from conversations.models import Conversation, Message
from tests.factories import make_account, make_group, make_operator, owner_of
from tests.widget.helpers import messages_url

VALID = {"name": "Ann Visitor", "email": "ann@example.com", "message": "Do you ship to Brno?"}


def stored(response) -> tuple[Conversation, Message]:
    """The conversation the form started, and the visitor's message in it."""
    conversation = Conversation.objects.select_related("visitor", "group").get(id=response.json()["id"])
    return conversation, conversation.messages.get(seq=1)


def post(client, account, data, **extra):
    # Raw UTF-8 like a browser's JSON.stringify, not \u escapes.
    body = data if isinstance(data, (str, bytes)) else json.dumps(data, ensure_ascii=False).encode()
    return client.post(messages_url(account), data=body, content_type="application/json", **extra)


@pytest.mark.django_db
def test_a_valid_message_is_stored_and_acknowledged_with_its_id(client):
    account = make_account()
    make_group(account=account, key="sales")

    response = post(client, account, {**VALID, "group": "sales", "page_url": "https://shop.example/cart"})

    assert response.status_code == 201
    conversation, message = stored(response)
    assert conversation.account_id == account.id
    assert conversation.group.key == "sales"
    visitor = conversation.visitor
    assert (visitor.name, visitor.email, message.body) == (VALID["name"], VALID["email"], VALID["message"])
    assert conversation.page_url == "https://shop.example/cart"
    # Nobody is online: the visitor also got the offline message, as in the chat.
    assert conversation.messages.filter(kind="offline").count() == 1


@pytest.mark.django_db
def test_a_message_for_an_unknown_group_is_kept_for_the_account(client):
    account = make_account()

    response = post(client, account, {**VALID, "group": "gone"})

    assert response.status_code == 201
    assert stored(response)[0].group is None


@pytest.mark.django_db
@pytest.mark.parametrize("page_url", ["javascript:alert(1)", "not a url", 42, "https://x.example/" + "a" * 500])
def test_an_unusable_page_url_is_dropped_not_refused(client, page_url):
    response = post(client, make_account(), {**VALID, "page_url": page_url})

    assert response.status_code == 201
    assert stored(response)[0].page_url == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": 42}, "name"),
        ({"name": ["Ann"]}, "name"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a" * 245 + "@example.com"}, "email"),
        ({"email": "ann@example.com\nBcc: all@example.com"}, "email"),
        ({"message": ""}, "message"),
        ({"message": "m" * 4001}, "message"),
        ({"message": "bell\x07"}, "message"),
        ({"message": "null\x00byte"}, "message"),
        ({"group": "g" * 51}, "group"),
    ],
)
def test_invalid_fields_are_refused_with_field_errors(client, change, field):
    response = post(client, make_account(), {**VALID, **change})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == [field]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_missing_fields_are_each_named(client):
    response = post(client, make_account(), {})

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"name", "email", "message"}


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "null", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_refused(client, body):
    response = post(client, make_account(), body)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json"}


@pytest.mark.django_db
def test_the_longest_valid_message_fits_the_body_limit(client):
    # Three UTF-8 bytes per character: the most a browser's maxlength lets through.
    longest = {
        "name": "漢" * 100,
        "email": "a" * 64 + "@" + "b" * 60 + ".example.com",
        "message": "漢" * 4000,
        "group": "g" * 50,
        "page_url": "https://shop.example/" + "p" * 470,
    }

    response = post(client, make_account(), longest)

    assert response.status_code == 201


@pytest.mark.django_db
def test_a_body_over_16_kb_is_refused_unread(client):
    oversized = {**VALID, "message": "m" * 17_000}

    response = post(client, make_account(), oversized)

    assert response.status_code == 413
    assert response.json() == {"error": "too_large"}
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_unknown_key_is_a_404_like_the_status(client):
    response = client.post("/widget/v1/no-such-key/messages", data=json.dumps(VALID), content_type="application/json")

    assert response.status_code == 404
    assert response.content == b'{"error":"not_found"}'


@pytest.mark.django_db
def test_only_post_is_allowed(client):
    assert client.get(messages_url(make_account())).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(
    "hostile",
    [
        "<img src=x onerror=alert(1)>",
        "<script>alert('x')</script>",
        "'; DROP TABLE conversations_message; --",
        "{{ settings.SECRET_KEY }}",
        "Ř\u202eevil\u200b 🙂",
    ],
)
def test_hostile_texts_are_stored_verbatim(client, hostile):
    response = post(client, make_account(), {**VALID, "name": hostile[:100], "message": hostile})

    assert response.status_code == 201
    conversation, message = stored(response)
    assert conversation.visitor.name == " ".join(hostile[:100].split())
    assert message.body == hostile


# --- rate limit ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sixth_message_in_a_minute_is_refused_with_retry_after(client):
    account = make_account()
    with time_machine.travel(datetime(2026, 3, 2, 10, 0, 15, tzinfo=UTC), tick=False):
        codes = [post(client, account, VALID).status_code for _ in range(5)]
        refused = post(client, account, VALID)

    assert codes == [201] * 5
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate_limited"}
    assert refused["Retry-After"] == "45"
    assert Conversation.objects.count() == 5


@pytest.mark.django_db
def test_the_limit_is_per_address_and_resets_with_the_next_minute(client):
    account = make_account()
    start = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(5):
            post(client, account, VALID)
        other_address = post(client, account, VALID, REMOTE_ADDR="192.0.2.77")
        traveller.move_to(start + timedelta(minutes=1))
        next_minute = post(client, account, VALID)

    assert other_address.status_code == 201
    assert next_minute.status_code == 201


@pytest.mark.django_db
def test_thirty_messages_an_hour_is_the_most_one_address_may_send(client):
    account = make_account()
    start = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        codes = []
        for minute in range(7):
            traveller.move_to(start + timedelta(minutes=minute))
            codes += [post(client, account, VALID).status_code for _ in range(5)]
        refused = post(client, account, VALID)

    assert codes == [201] * 30 + [429] * 5
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 3600 - 6 * 60


# --- e-mail ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_owner_and_admins_are_emailed_after_commit(client, django_capture_on_commit_callbacks):
    account = make_account()
    admin = make_operator(account=account, role=Operator.Role.ADMIN)
    make_operator(account=account, role=Operator.Role.AGENT)
    retired = make_operator(account=account, role=Operator.Role.ADMIN)
    Operator.objects.filter(id=retired.id).update(is_active=False)
    make_group(account=account, key="sales")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, account, {**VALID, "name": "Ann\nVisitor", "group": "sales"})

    assert response.status_code == 201
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sorted(sent.to) == sorted([owner_of(account).email, admin.email])
    assert sent.reply_to == [VALID["email"]]
    assert sent.subject == "New message from Ann Visitor"
    assert VALID["message"] in sent.body
    assert "Sales" in sent.body


@pytest.mark.django_db
def test_no_email_is_sent_before_the_message_is_committed(client, django_capture_on_commit_callbacks):
    account = make_account()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, account, VALID)

    assert response.status_code == 201
    assert callbacks
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_failing_mail_server_is_logged_and_the_message_kept(
    client, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    with caplog.at_level(logging.ERROR, logger="conversations.mail"), django_capture_on_commit_callbacks(execute=True):
        response = post(client, make_account(), VALID)

    assert response.status_code == 201
    assert Conversation.objects.filter(id=response.json()["id"]).exists()
    assert "notification e-mail failed" in caplog.text
