"""The dashboard's log-in form is throttled by the same rule as the API's token endpoint."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.settings import api_settings

from accounts.models import Operator
from accounts.throttles import LoginRateThrottle
from tests.factories import PASSWORD

LOGIN = reverse("login")
TOKEN = "/api/v1/auth/token"
THROTTLED_EN = "Too many log-in attempts. Try again in"
THROTTLED_CS = "Příliš mnoho pokusů o přihlášení. Zkuste to znovu za"
# The test client's address: the one the throttle counts guesses by.
ADDRESS = "127.0.0.1"


def budget() -> int:
    """Attempts allowed per window, read from the one setting both doors share."""
    count, _period = api_settings.DEFAULT_THROTTLE_RATES["login"].split("/")
    return int(count)


def throttle_key(address: str) -> str:
    return LoginRateThrottle.cache_format % {"scope": "login", "ident": address}


@pytest.fixture(autouse=True)
def fresh_login_throttle():
    """No attempts counted before or after (the embedded mode's cache outlives tests)."""
    keys = [throttle_key(ADDRESS), throttle_key("10.0.0.9")]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


@pytest.fixture
def frozen():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def form_login(client: Client, email: str, password: str):
    return client.post(LOGIN, {"username": email, "password": password})


def api_login(client: Client, email: str, password: str):
    return client.post(TOKEN, {"email": email, "password": password}, content_type="application/json")


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def use_up_the_budget(client: Client, email: str) -> None:
    codes = [form_login(client, email, "wrong-password").status_code for _ in range(budget())]
    assert codes == [200] * budget()  # each one the form again, with its "wrong password" error


def test_the_attempt_after_the_budget_is_refused_with_429_and_retry_after(client, agent, frozen):
    use_up_the_budget(client, agent.email)

    response = form_login(client, agent.email, "wrong-password")

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    page = response.content.decode()
    assert THROTTLED_EN in page
    assert 'role="alert"' in page
    assert f'value="{agent.email}"' in page  # the form again, with the address kept
    assert response.context["form"].non_field_errors() == [
        f"Too many log-in attempts. Try again in {response['Retry-After']} seconds."
    ]


def test_a_right_password_is_refused_too_while_throttled(client, agent, frozen):
    use_up_the_budget(client, agent.email)

    response = form_login(client, agent.email, PASSWORD)

    # The same answer as for a wrong password: the throttle is no password oracle.
    assert response.status_code == 429
    assert THROTTLED_EN in response.content.decode()
    assert not logged_in(client)
    agent.refresh_from_db()
    assert agent.last_login is None


def test_the_message_speaks_czech_to_a_czech_browser(agent, frozen):
    browser = Client(HTTP_ACCEPT_LANGUAGE="cs")
    use_up_the_budget(browser, agent.email)

    response = form_login(browser, agent.email, PASSWORD)

    assert response.status_code == 429
    assert THROTTLED_CS in response.content.decode()
    assert THROTTLED_EN not in response.content.decode()


def test_logging_in_works_again_once_the_window_has_passed(client, agent, frozen):
    use_up_the_budget(client, agent.email)
    assert form_login(client, agent.email, PASSWORD).status_code == 429

    frozen.shift(dt.timedelta(seconds=61))
    response = form_login(client, agent.email, PASSWORD)

    assert response.status_code == 302
    assert response.url == "/"
    assert logged_in(client)


def test_the_form_page_itself_is_never_throttled(client, agent, frozen):
    use_up_the_budget(client, agent.email)
    assert form_login(client, agent.email, PASSWORD).status_code == 429

    response = client.get(LOGIN)

    assert response.status_code == 200
    assert THROTTLED_EN not in response.content.decode()


def test_another_address_has_a_budget_of_its_own(client, agent, frozen):
    use_up_the_budget(client, agent.email)
    assert form_login(client, agent.email, PASSWORD).status_code == 429

    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert form_login(elsewhere, agent.email, PASSWORD).status_code == 302
    # A forged forwarding header is no new identity.
    spoofed = Client(HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert form_login(spoofed, agent.email, PASSWORD).status_code == 429


@pytest.mark.parametrize("first", ["form", "api"])
def test_the_form_and_the_api_share_one_budget(client, agent, frozen, first):
    doors = {"form": form_login, "api": api_login}
    second = "api" if first == "form" else "form"
    half = budget() // 2
    for _ in range(half):
        assert doors[first](client, agent.email, "wrong-password").status_code in (200, 400)
    for _ in range(budget() - half):
        assert doors[second](client, agent.email, "wrong-password").status_code in (200, 400)

    assert form_login(client, agent.email, PASSWORD).status_code == 429
    assert api_login(client, agent.email, PASSWORD).status_code == 429


def test_a_login_still_works_when_the_throttle_cache_is_down(client, agent, monkeypatch):
    class BrokenCache:
        def get(self, *args, **kwargs):
            raise ConnectionError("cache down")

        set = get

    monkeypatch.setattr(LoginRateThrottle, "cache", BrokenCache())

    response = form_login(client, agent.email, PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


ADMIN_LOGIN = "/admin/login/"


def admin_login(client: Client, email: str, password: str):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"})


@pytest.mark.django_db
def test_the_admin_login_is_throttled_by_the_same_budget(client, frozen):
    staff = Operator.objects.create_superuser("root@example.com", PASSWORD, display_name="Root")
    half = budget() // 2
    for _ in range(half):
        assert form_login(client, staff.email, "wrong-password").status_code == 200
    for _ in range(budget() - half):
        assert admin_login(client, staff.email, "wrong-password").status_code == 200

    response = admin_login(client, staff.email, PASSWORD)

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert THROTTLED_EN in response.content.decode()
    assert f'value="{staff.email}"' in response.content.decode()
    assert not logged_in(client)
    assert client.get(ADMIN_LOGIN).status_code == 200  # the page itself is never throttled

    frozen.shift(dt.timedelta(seconds=61))
    response = admin_login(client, staff.email, PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)
