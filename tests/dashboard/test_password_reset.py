"""Password reset by e-mail (``/password-reset/``): Django's views in the
dashboard's look. The same answer for a known and an unknown address, nothing
for an inactive operator, the log-in throttle's budget, a link that works
once, and a new password that ends the operator's other logins."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from rest_framework.settings import api_settings

from accounts.models import Operator
from accounts.throttles import LoginRateThrottle
from tests.api.conftest import token_client
from tests.factories import PASSWORD, make_account, make_operator

pytestmark = pytest.mark.django_db

RESET = "/password-reset/"
NEW_PASSWORD = "a-brand-new-pass-phrase"
LINK = re.compile(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)")
# The test client's address: the one the throttle counts requests by.
ADDRESS = "127.0.0.1"


@pytest.fixture(autouse=True)
def fresh_login_throttle():
    """No attempts counted before or after (the embedded mode's cache outlives tests)."""
    key = LoginRateThrottle.cache_format % {"scope": "login", "ident": ADDRESS}
    cache.delete(key)
    yield
    cache.delete(key)


@pytest.fixture
def account():
    return make_account(name="Shop")


@pytest.fixture
def alena(account) -> Operator:
    return make_operator(account=account, name="Alena Agentová")


def ask_for_link(client: Client, email: str):
    return client.post(RESET, {"email": email})


def link_in(message) -> str:
    match = LINK.search(message.body)
    assert match is not None, message.body
    return match.group(1)


def set_new_password(client: Client, link: str, password: str = NEW_PASSWORD):
    """Open the link (Django moves the token into the session) and save a new password."""
    form_page = client.get(link)
    assert form_page.status_code == 302
    return client.post(form_page.url, {"new_password1": password, "new_password2": password})


def page_without_nonce(response) -> str:
    # The CSP nonce is new on every answer, whoever asks.
    return re.sub(r'nonce="[^"]*"', "", response.content.decode())


def can_log_in(email: str, password: str) -> bool:
    client = Client()
    client.post("/login/", {"username": email, "password": password})
    return "_auth_user_id" in client.session


def test_the_login_page_offers_a_password_reset(client):
    page = client.get("/login/").content.decode()

    # It should link to the reset form.
    assert f'<a href="{RESET}">Forgot your password?</a>' in page


def test_an_operator_gets_a_link_that_sets_a_new_password(client, alena):
    response = ask_for_link(client, alena.email)

    assert response.status_code == 302
    assert response.url == "/password-reset/sent/"
    assert [message.to for message in mail.outbox] == [[alena.email]]
    done = set_new_password(client, link_in(mail.outbox[0]))

    # It should save the new password and send the operator to a page that says so.
    assert done.status_code == 302
    assert done.url == "/password-reset/done/"
    assert "Your new password is saved." in client.get(done.url).content.decode()
    assert can_log_in(alena.email, NEW_PASSWORD)
    assert not can_log_in(alena.email, PASSWORD)


def test_a_known_and_an_unknown_address_get_the_same_answer(alena):
    known = ask_for_link(Client(), alena.email)
    unknown = ask_for_link(Client(), "nobody@example.com")

    # It should answer both with the same redirect to the same page; only the operator gets an e-mail.
    assert (known.status_code, known.url) == (unknown.status_code, unknown.url) == (302, "/password-reset/sent/")
    assert page_without_nonce(Client().get(known.url)) == page_without_nonce(Client().get(unknown.url))
    assert [message.to for message in mail.outbox] == [[alena.email]]


def test_an_inactive_operator_gets_nothing(client, alena):
    Operator.objects.filter(id=alena.id).update(is_active=False)

    response = ask_for_link(client, alena.email)

    # It should answer as for anyone, and send no e-mail.
    assert response.url == "/password-reset/sent/"
    assert mail.outbox == []


def test_the_address_is_matched_whatever_its_case(client, alena):
    ask_for_link(client, alena.email.upper())

    # It should find the operator (addresses are stored in lower case).
    assert [message.to for message in mail.outbox] == [[alena.email]]


def test_the_link_works_once(client, alena):
    ask_for_link(client, alena.email)
    link = link_in(mail.outbox[0])
    set_new_password(client, link)

    again = Client().get(link, follow=True)

    # It should refuse a used link with a page that offers a new one.
    assert "This link does not work" in again.content.decode()
    assert "new_password1" not in again.content.decode()


def test_a_new_password_ends_the_operators_other_logins(client, alena):
    browser = Client()
    browser.force_login(alena)
    phone = token_client(alena)
    ask_for_link(client, alena.email)

    set_new_password(client, link_in(mail.outbox[0]))

    # It should log out every browser and app that knew the old password.
    assert browser.get("/").status_code == 302
    assert phone.get("/api/v1/me").status_code == 401


def test_a_password_the_validators_refuse_is_not_saved(client, alena):
    ask_for_link(client, alena.email)

    response = set_new_password(client, link_in(mail.outbox[0]), password="short")

    # It should show the form again with the reason, and keep the old password.
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    assert can_log_in(alena.email, PASSWORD)


def test_asking_for_links_spends_the_log_in_budget(client, alena):
    count, _period = api_settings.DEFAULT_THROTTLE_RATES["login"].split("/")
    for _ in range(int(count)):
        client.post("/login/", {"username": alena.email, "password": "a wrong guess"})

    response = ask_for_link(client, alena.email)

    # It should refuse the request like a log-in attempt over budget, and send nothing.
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts. Try again in" in response.content.decode()
    assert mail.outbox == []


def test_the_pages_and_the_email_speak_czech(client, alena):
    alena.language = "cs"
    alena.save(update_fields=["language"])

    page = client.get(RESET, HTTP_ACCEPT_LANGUAGE="cs").content.decode()
    ask_for_link(client, alena.email)

    # It should show the form in the browser's language and write the e-mail in the operator's.
    assert "Obnovení hesla" in page
    assert mail.outbox[0].subject == "Obnovení hesla do chatstatusu"
    assert "Dobrý den, Alena Agentová," in mail.outbox[0].body
