"""The automatic messages' settings page: admins set the busy delay and the
two texts through the account service; nothing typed is lost to an error."""

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AUTO_MESSAGE_MAX, BUSY_AFTER_MAX, BUSY_AFTER_MIN, Account, Operator
from accounts.services import account_update
from tests.factories import make_operator

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:automatic_messages")


def signed_in(operator: Operator, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(operator)
    return client


def textarea(html: str, name: str) -> str:
    match = re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', html, re.S)
    assert match, name
    return unescape(match.group(1))


def placeholder(html: str, name: str) -> str:
    match = re.search(rf'<textarea name="{name}"[^>]*placeholder="([^"]*)"', html)
    assert match, name
    return unescape(match.group(1))


def number(html: str, name: str) -> str:
    match = re.search(rf'<input type="number" name="{name}"[^>]*>', html)
    assert match, name
    value = re.search(r'value="([^"]*)"', match.group(0))
    return unescape(value.group(1)) if value else ""


def test_the_page_shows_the_stored_settings_and_the_built_in_texts_as_placeholders(owner, account):
    account_update(account=account, busy_after_seconds=90, offline_message="Back on Monday.")
    html = signed_in(owner).get(URL).content.decode()

    # It should show the delay in seconds and each text, the empty one as the built-in text it stands for.
    assert number(html, "busy_after_seconds") == "90"
    assert textarea(html, "offline_message") == "Back on Monday."
    assert textarea(html, "busy_message") == ""
    assert placeholder(html, "busy_message") == "Sorry, we're busy at the moment. We'll be with you shortly."
    assert placeholder(html, "offline_message") == "We're offline right now."
    assert f'href="{URL}" aria-current="page"' in html  # the nav marks this page


def test_the_placeholders_are_in_the_accounts_language_whatever_the_operators(owner, account):
    account_update(account=account, language="cs")
    html = signed_in(owner, HTTP_ACCEPT_LANGUAGE="en").get(URL).content.decode()

    assert placeholder(html, "offline_message") == "Právě nejsme online."


def test_an_admin_saves_the_delay_and_the_texts(owner, account):
    response = signed_in(owner).post(
        URL, {"busy_after_seconds": "30", "busy_message": "  One moment, please.  ", "offline_message": ""}
    )

    assert response.status_code == 302 and response.url == URL
    account.refresh_from_db()
    assert (account.busy_after_seconds, account.busy_message, account.offline_message) == (
        30,
        "One moment, please.",
        "",
    )


@pytest.mark.parametrize("seconds", ["", "abc", "20.5", str(BUSY_AFTER_MIN - 1), str(BUSY_AFTER_MAX + 1), "-5"])
def test_a_delay_outside_the_range_is_refused_clearly_and_nothing_typed_is_lost(owner, account, seconds):
    typed = {"busy_after_seconds": seconds, "busy_message": "Hold on <b>tight</b>", "offline_message": "Later!"}
    response = signed_in(owner).post(URL, typed)

    # It should answer with the page, the error at the field, and every value as typed.
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Enter a whole number of seconds from {BUSY_AFTER_MIN} to {BUSY_AFTER_MAX}." in html
    assert number(html, "busy_after_seconds") == seconds
    assert textarea(html, "busy_message") == "Hold on <b>tight</b>"
    assert textarea(html, "offline_message") == "Later!"
    account.refresh_from_db()
    assert (account.busy_after_seconds, account.busy_message, account.offline_message) == (45, "", "")


def test_a_text_longer_than_the_limit_is_refused_and_kept(owner, account):
    long = "x" * (AUTO_MESSAGE_MAX + 1)
    response = signed_in(owner).post(URL, {"busy_after_seconds": "45", "busy_message": long, "offline_message": ""})

    html = response.content.decode()
    assert response.status_code == 200
    assert f"at most {AUTO_MESSAGE_MAX} characters" in html
    assert textarea(html, "busy_message") == long
    assert Account.objects.get(id=account.id).busy_message == ""


def test_an_error_of_the_account_service_shows_at_its_field(owner, account, monkeypatch):
    """A limit the form does not know (the service's full_clean) still shows at its field."""
    from django.core.exceptions import ValidationError

    def refuse(**kwargs):
        raise ValidationError({"offline_message": ["Not that."]})

    monkeypatch.setattr("accounts.services.account_update", refuse)
    response = signed_in(owner).post(URL, {"busy_after_seconds": "45", "busy_message": "", "offline_message": "x"})

    assert response.status_code == 200 and "Not that." in response.content.decode()


def test_an_admin_who_is_not_the_owner_may_save(account):
    admin = make_operator(account=account, role=Operator.Role.ADMIN)
    response = signed_in(admin).post(URL, {"busy_after_seconds": "600", "busy_message": "", "offline_message": ""})

    assert response.status_code == 302
    assert Account.objects.get(id=account.id).busy_after_seconds == 600


def test_an_agent_gets_the_forbidden_page_and_changes_nothing(agent, account):
    client = signed_in(agent)

    assert client.get(URL).status_code == 403
    response = client.post(URL, {"busy_after_seconds": "15", "busy_message": "Hacked", "offline_message": ""})
    assert response.status_code == 403
    account.refresh_from_db()
    assert (account.busy_after_seconds, account.busy_message) == (45, "")


def test_the_nav_offers_the_page_to_admins_only(owner, agent):
    assert URL in signed_in(owner).get(reverse("dashboard:overview")).content.decode()
    assert URL not in signed_in(agent).get(reverse("dashboard:overview")).content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(URL)

    assert response.status_code == 302 and response.url == f"/login/?next={URL}"
