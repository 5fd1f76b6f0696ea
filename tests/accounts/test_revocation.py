"""Ending logins for good: a new password or a deactivation ends the operator's
other sessions and revokes their API tokens; reactivating brings none back."""

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client
from django.urls import reverse

from accounts.auth import session_device_tag, token_create, token_device_tag, token_lookup
from accounts.models import ApiToken, Operator
from accounts.services import operator_set_password, operator_update
from dashboard.admin import OperatorPasswordForm
from presence.models import StatusEvent
from presence.selectors import operator_connections
from presence.services import operator_set_status, presence_heartbeat
from tests.factories import make_account, make_operator

NEW_PASSWORD = "an0ther-Pass-phrase"

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent() -> Operator:
    return make_operator(account=make_account(), name="Alice")


def logged_in(operator: Operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def sent_to_login(client: Client) -> bool:
    response = client.get(reverse("dashboard:overview"))
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_revokes_every_token_but_the_kept_devices_when_the_password_changes(agent):
    laptop_key, _laptop = token_create(operator=agent, device="laptop")
    phone_key, phone = token_create(operator=agent, device="phone", is_mobile=True)

    operator_set_password(operator=agent, password=NEW_PASSWORD, keep_device=token_device_tag(phone))

    # It should refuse the token issued before the change and keep the one of the device that made it.
    assert token_lookup(laptop_key) is None
    assert token_lookup(phone_key).id == phone.id


def test_it_revokes_every_token_when_a_browser_changes_the_password(agent):
    key = token_create(operator=agent, device="phone")[0]

    operator_set_password(operator=agent, password=NEW_PASSWORD, keep_device=session_device_tag("browser-session"))

    # It should keep no token: the device kept is a browser session, not a token.
    assert token_lookup(key) is None
    assert not ApiToken.objects.filter(operator=agent).exists()


def test_it_deletes_the_tokens_of_a_deactivated_operator_so_reactivating_brings_none_back(agent):
    key = token_create(operator=agent, device="phone")[0]

    operator_update(operator=agent, is_active=False)
    operator_update(operator=agent, is_active=True)

    # It should have deleted the token, not merely hidden it while the operator was inactive.
    assert token_lookup(key) is None
    assert not ApiToken.objects.filter(operator=agent).exists()


def test_it_ends_the_sessions_of_a_deactivated_operator_for_good(agent):
    browser = logged_in(agent)
    assert not sent_to_login(browser)

    operator_update(operator=agent, is_active=False)
    operator_update(operator=agent, is_active=True)

    # It should send the session made before the deactivation to the login page.
    assert sent_to_login(browser)
    assert not sent_to_login(logged_in(agent))  # a fresh login works again


def test_it_raises_the_credentials_version_on_each_password_change_and_deactivation(agent):
    # At 0 the session hash is Django's own: sessions made before the upgrade stay valid.
    assert agent.credentials_version == 0
    assert agent.get_session_auth_hash() == AbstractBaseUser.get_session_auth_hash(agent)

    operator_set_password(operator=agent, password=NEW_PASSWORD)
    after_password = agent.get_session_auth_hash()
    operator_update(operator=agent, is_active=False)
    agent.refresh_from_db()

    # It should count every revocation, and each changes the hash a session must carry.
    assert agent.credentials_version == 2
    assert agent.get_session_auth_hash() not in (after_password, AbstractBaseUser.get_session_auth_hash(agent))


def test_it_keeps_the_new_credentials_when_a_stale_copy_of_the_operator_is_saved(agent):
    stale = Operator.objects.get(id=agent.id)  # e.g. a page's request.user, read before the change
    browser = logged_in(agent)
    operator_set_password(operator=agent, password=NEW_PASSWORD)

    operator_update(operator=stale, display_name="Alice B.")

    # It should write only the name: neither the old password nor the old sessions come back.
    fresh = Operator.objects.get(id=agent.id)
    assert fresh.display_name == "Alice B."
    assert fresh.check_password(NEW_PASSWORD)
    assert fresh.credentials_version == 1
    assert sent_to_login(browser)


def test_a_password_set_by_site_staff_logs_out_every_device_and_switches_offline(
    agent, django_capture_on_commit_callbacks
):
    key = token_create(operator=agent, device="phone")[0]
    with django_capture_on_commit_callbacks(execute=True):
        presence_heartbeat(operator=agent, conn_id="laptop", device="s:laptop")
        operator_set_status(operator=agent, status="online", source="dashboard")
    form = OperatorPasswordForm(agent, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert form.is_valid(), form.errors

    with django_capture_on_commit_callbacks(execute=True):
        form.save()

    # It should keep no device of theirs: tokens revoked, connections ended, offline at once.
    assert token_lookup(key) is None
    assert operator_connections(operator=agent) == []
    agent.refresh_from_db()
    assert agent.status == "offline"
    assert StatusEvent.objects.filter(operator=agent).latest("at").source == "admin"


def test_disabling_password_login_in_the_admin_revokes_the_tokens_too(agent):
    key = token_create(operator=agent, device="phone")[0]
    browser = logged_in(agent)
    form = OperatorPasswordForm(agent, {"usable_password": "false"})
    assert form.is_valid(), form.errors

    form.save()

    # It should end their logins as a new password does.
    assert not Operator.objects.get(id=agent.id).has_usable_password()
    assert token_lookup(key) is None
    assert sent_to_login(browser)
