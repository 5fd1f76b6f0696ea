"""Who may see and do what in the dashboard, and the status switch without JavaScript."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.auth import session_device_tag
from accounts.models import Operator, Status
from groups.models import Group
from presence.models import Source, StatusEvent
from presence.services import presence_heartbeat
from tests.factories import PASSWORD, make_group, make_operator, owner_of

EVERYONE_PAGES = ["overview", "history", "widget", "inbox", "profile", "team"]
ADMIN_PAGES = ["operators", "operator_create", "groups", "group_create", "hours", "automatic_messages"]


def url(name: str, *args) -> str:
    return reverse(f"dashboard:{name}", args=args)


@pytest.mark.parametrize("name", EVERYONE_PAGES + ADMIN_PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, db, name):
    response = client.get(url(name))
    assert response.status_code == 302
    assert response.url == f"/login/?next={url(name)}"


@pytest.mark.parametrize("name", EVERYONE_PAGES)
def test_an_agent_reaches_the_pages_for_everyone(client, agent, name):
    client.force_login(agent)
    assert client.get(url(name)).status_code == 200


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_an_agent_gets_the_forbidden_page_on_admin_pages(client, agent, name):
    client.force_login(agent)
    response = client.get(url(name))
    assert response.status_code == 403
    assert b"This page is for account administrators" in response.content


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_an_admin_reaches_the_admin_pages(client, account, name):
    client.force_login(make_operator(account=account, role=Operator.Role.ADMIN))
    assert client.get(url(name)).status_code == 200


def test_an_agent_cannot_open_or_change_colleagues_and_groups(client, account, agent):
    colleague = make_operator(account=account, status=Status.ONLINE)
    group = make_group(account=account, key="sales")
    client.force_login(agent)
    assert client.get(url("operator_edit", colleague.id)).status_code == 403
    assert client.post(url("operator_force_offline", colleague.id)).status_code == 403
    assert client.get(url("group_edit", group.id)).status_code == 403
    assert client.post(url("group_delete", group.id)).status_code == 403
    assert client.get(url("group_hours", group.key)).status_code == 403
    assert client.post(url("widget"), {"allowed_origins": "https://evil.example"}).status_code == 403
    colleague.refresh_from_db()
    assert colleague.status == Status.ONLINE
    assert Group.objects.filter(id=group.id).exists()


def test_an_admin_never_finds_another_accounts_objects(client, owner, other_account):
    stranger = make_operator(account=other_account, status=Status.ONLINE)
    their_group = make_group(account=other_account, key="theirs")
    client.force_login(owner)
    assert client.get(url("operator_edit", stranger.id)).status_code == 404
    assert client.post(url("operator_force_offline", stranger.id)).status_code == 404
    assert client.get(url("group_edit", their_group.id)).status_code == 404
    assert client.post(url("group_delete", their_group.id)).status_code == 404
    assert client.get(url("group_hours", their_group.key)).status_code == 404
    stranger.refresh_from_db()
    assert stranger.status == Status.ONLINE
    assert Group.objects.filter(id=their_group.id).exists()


def test_pages_list_only_the_operators_own_account(client, owner, other_account):
    make_operator(account=other_account, name="Zdeněk Cizí")
    client.force_login(owner)
    for name in ("overview", "operators"):
        assert "Zdeněk Cizí" not in client.get(url(name)).content.decode()
    assert all(row["id"] != owner_of(other_account).id for row in client.get(url("team")).json()["operators"])


def test_site_staff_without_an_account_get_the_forbidden_page(client, db):
    staff = Operator.objects.create_user("staff@example.com", PASSWORD, display_name="Staff", is_staff=True)
    client.force_login(staff)
    assert client.get(url("overview")).status_code == 403


# --- the status switch without JavaScript ------------------------------------------


def test_the_status_form_switches_me_online_and_goes_back(client, agent):
    client.force_login(agent)
    response = client.post(url("status"), {"status": "online", "next": "/history/"})
    assert response.status_code == 302
    assert response.url == "/history/"
    agent.refresh_from_db()
    assert agent.status == Status.ONLINE
    event = StatusEvent.objects.get(operator=agent)
    assert (event.old, event.new, event.source) == (Status.OFFLINE, Status.ONLINE, Source.DASHBOARD)
    assert event.device == session_device_tag(client.session.session_key)


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", ""])
def test_the_status_form_never_redirects_away_from_the_dashboard(client, agent, next_url):
    client.force_login(agent)
    response = client.post(url("status"), {"status": "offline", "next": next_url})
    assert response.url == "/"


def test_the_status_form_refuses_an_unknown_status(client, agent):
    client.force_login(agent)
    client.post(url("status"), {"status": "busy"})
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE
    assert "Choose Online or Offline." in client.get(url("overview")).content.decode()


def test_the_status_form_only_accepts_post(client, agent):
    client.force_login(agent)
    assert client.get(url("status")).status_code == 405


def test_the_status_form_requires_the_csrf_token(agent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.post(url("status"), {"status": "online"}).status_code == 403
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE

    browser.get(url("overview"))
    token = browser.cookies["csrftoken"].value
    response = browser.post(url("status"), {"status": "online", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.status == Status.ONLINE


def test_logout_requires_the_csrf_token(agent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.post(reverse("logout")).status_code == 403
    assert browser.get(url("overview")).status_code == 200


# --- log in and out ---------------------------------------------------------------------


def test_logging_in_by_email_never_switches_online(client, agent):
    response = client.post(reverse("login"), {"username": agent.email.upper(), "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/"
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE
    assert not StatusEvent.objects.exists()


def test_a_wrong_password_shows_the_form_again(client, agent):
    response = client.post(reverse("login"), {"username": agent.email, "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert agent.email in response.content.decode()


def test_logging_out_of_the_last_device_switches_offline_at_once(client, account):
    operator = make_operator(account=account, status=Status.ONLINE)
    client.force_login(operator)
    device = session_device_tag(client.session.session_key)
    presence_heartbeat(operator=operator, conn_id="tab-1", device=device)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response.url == "/login/"
    operator.refresh_from_db()
    assert operator.status == Status.OFFLINE
    assert StatusEvent.objects.get(operator=operator).source == Source.LOGOUT
    assert client.get(url("overview")).status_code == 302


def test_logging_out_keeps_me_online_while_another_device_is_connected(client, account):
    operator = make_operator(account=account, status=Status.ONLINE)
    client.force_login(operator)
    presence_heartbeat(operator=operator, conn_id="tab-1", device=session_device_tag(client.session.session_key))
    presence_heartbeat(operator=operator, conn_id="phone-1", device="t:1")

    client.post(reverse("logout"))

    operator.refresh_from_db()
    assert operator.status == Status.ONLINE
