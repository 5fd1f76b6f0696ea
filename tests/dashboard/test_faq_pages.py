"""The FAQ bot's dashboard pages (admins): entries, trying a question, the
bot's mode, the report; and the inbox's suggested reply."""

import pytest
from django.test import Client
from django.urls import reverse

from conversations.faq import services as faq
from conversations.models import FaqEntry
from tests.conversations.conftest import visitor_writes
from tests.factories import make_group, make_operator

pytestmark = pytest.mark.django_db

HOURS = "Mon–Fri 8–18, see https://shop.example/hours"


def signed_in(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def entry(account):
    return faq.faq_entry_create(
        account=account,
        question="What are your opening hours?",
        phrasings=["When are you open?"],
        answer=HOURS,
        language="en",
    )


def test_agents_get_the_403_page(agent):
    client = signed_in(agent)
    for name in ("faq", "faq_create", "faq_report"):
        assert client.get(reverse(f"dashboard:{name}")).status_code == 403


def test_an_admin_adds_an_entry_through_the_form(owner, account):
    client = signed_in(owner)
    response = client.post(
        reverse("dashboard:faq_create"),
        {"question": "Do you ship abroad?", "phrasings": "International shipping\n\nShip to Germany", "answer": "Yes.",
         "language": "en", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    entry = FaqEntry.objects.get(account=account)
    assert entry.phrasings == ["International shipping", "Ship to Germany"] and entry.enabled
    # It should list the entry.
    assert "Do you ship abroad?" in signed_in(owner).get(reverse("dashboard:faq")).content.decode()


def test_html_in_an_answer_comes_back_as_a_field_error(owner):
    response = signed_in(owner).post(
        reverse("dashboard:faq_create"),
        {"question": "Hours?", "answer": "<script>alert(1)</script>", "language": "en"},
    )
    assert response.status_code == 200
    assert "Plain text only" in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert not FaqEntry.objects.exists()


def test_an_admin_edits_and_deletes_an_entry(owner, entry):
    client = signed_in(owner)
    url = reverse("dashboard:faq_edit", args=[entry.id])
    assert client.get(url).status_code == 200
    response = client.post(url, {"question": "Store hours?", "phrasings": "", "answer": "9–5", "language": "en"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.question, entry.phrasings, entry.enabled) == ("Store hours?", [], False)
    assert client.post(reverse("dashboard:faq_delete", args=[entry.id])).status_code == 302
    assert not FaqEntry.objects.exists()


def test_another_accounts_entry_is_a_404(owner, other_account):
    theirs = faq.faq_entry_create(account=other_account, question="Q?", answer="A.", language="en")
    client = signed_in(owner)
    assert client.get(reverse("dashboard:faq_edit", args=[theirs.id])).status_code == 404
    assert client.post(reverse("dashboard:faq_delete", args=[theirs.id])).status_code == 404
    assert FaqEntry.objects.filter(id=theirs.id).exists()


def test_trying_a_question_shows_the_answer_and_its_score(owner, entry):
    page = signed_in(owner).get(reverse("dashboard:faq"), {"q": "openning hours?"}).content.decode()
    assert "The bot answers" in page and "https://shop.example/hours" in page and "score 1.00" in page
    silent = signed_in(owner).get(reverse("dashboard:faq"), {"q": "do you sell bikes"}).content.decode()
    assert "The bot stays silent" in silent


def test_the_bot_mode_is_set_on_the_faq_page(owner, account):
    client = signed_in(owner)
    assert client.post(reverse("dashboard:faq_mode"), {"bot_mode": "first"}).status_code == 302
    account.refresh_from_db()
    assert account.bot_mode == "first"
    client.post(reverse("dashboard:faq_mode"), {"bot_mode": "always"})
    account.refresh_from_db()
    assert account.bot_mode == "first"


def test_the_report_shows_answers_helpful_rates_and_unanswered_questions(
    owner, account, entry, django_capture_on_commit_callbacks
):
    # The bot answers after commit: the callbacks run as a commit would run them.
    with django_capture_on_commit_callbacks(execute=True):
        started = visitor_writes(account, "when are you open?", client_id="r1")
        visitor_writes(account, "do you sell <b>bikes</b>?", token=started.visitor_token, client_id="r2")
    bot = started.conversation.messages.get(author="bot")
    faq.faq_feedback_give(
        account_id=account.id,
        token_digest=started.conversation.visitor.token_hash,
        conversation_id=started.conversation.id,
        message_id=bot.id,
        feedback="helpful",
    )
    page = signed_in(owner).get(reverse("dashboard:faq_report")).content.decode()
    assert "when are you open?" in page and "100 %" in page
    # The visitor's HTML is shown as text, never as markup.
    assert "do you sell &lt;b&gt;bikes&lt;/b&gt;?" in page and "<b>bikes</b>" not in page


def test_the_inbox_offers_the_best_entry_as_a_reply(account, entry):
    agent = make_operator(account=account)
    make_group(account=account, key="sales", members=[agent])
    started = visitor_writes(account, "hi, when are you open on monday?", client_id="i1", group_key="sales")
    url = reverse("dashboard:inbox_conversation_json", args=[started.conversation.id])
    data = signed_in(agent).get(url).json()
    assert data["suggestion"]["entry_id"] == entry.id and data["suggestion"]["answer"] == HOURS
    assert 0 < data["suggestion"]["score"] <= 1


def test_no_suggestion_when_nothing_answers_or_the_matcher_fails(account, agent, entry, monkeypatch):
    started = visitor_writes(account, "my parcel is wet", client_id="n1")
    url = reverse("dashboard:inbox_conversation_json", args=[started.conversation.id])
    assert signed_in(agent).get(url).json()["suggestion"] is None

    def broken(**kwargs):
        raise RuntimeError("no index")

    monkeypatch.setattr("dashboard.views.inbox.faq_suggestion", broken)
    answer = signed_in(agent).get(url)
    assert answer.status_code == 200 and answer.json()["suggestion"] is None
