"""What the dashboard pages show and what their forms change."""

import datetime
import io
import zoneinfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import Operator, Status
from groups.models import Group
from hours.models import OpeningHours
from hours.services import opening_hours_set
from presence.models import Source, StatusEvent
from presence.services import operator_set_status, presence_heartbeat
from tests.conversations.conftest import visitor_writes
from tests.factories import PASSWORD, make_group, make_operator, make_token

PRAGUE = zoneinfo.ZoneInfo("Europe/Prague")
MONDAY_TO_THURSDAY = {day: [{"from": "09:00", "to": "17:00"}] for day in ("monday", "tuesday", "wednesday", "thursday")}


def url(name: str, *args) -> str:
    return reverse(f"dashboard:{name}", args=args)


def text_of(response) -> str:
    return response.content.decode()


# --- overview ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime.datetime(2026, 11, 28, 12, 0, tzinfo=PRAGUE), "Opens Monday 09:00"),
        (datetime.datetime(2026, 11, 29, 12, 0, tzinfo=PRAGUE), "Opens tomorrow 09:00"),
        (datetime.datetime(2026, 11, 30, 7, 0, tzinfo=PRAGUE), "Opens today 09:00"),
        (datetime.datetime(2026, 11, 30, 10, 0, tzinfo=PRAGUE), "Closes today 17:00"),
        (datetime.datetime(2026, 11, 27, 12, 0, tzinfo=PRAGUE), "Opens Monday 09:00"),
    ],
)
def test_the_overview_tells_when_the_schedule_opens_or_closes_the_chat_box(client, account, owner, moment, expected):
    opening_hours_set(account=account, enabled=True, timezone="Europe/Prague", weekly=MONDAY_TO_THURSDAY, exceptions=[])
    client.force_login(owner)
    with time_machine.travel(moment, tick=False):
        page = text_of(client.get(url("overview")))
    assert expected in page


def test_the_overview_shows_each_group_box_and_who_is_online(client, account, owner):
    present = make_operator(account=account, status=Status.ONLINE, name="Petra Přítomná")
    make_operator(account=account, status=Status.ONLINE, name="Olga Odešlá")
    make_group(account=account, key="sales", members=[present])
    presence_heartbeat(operator=present, conn_id="c1", device="t:1")
    client.force_login(owner)

    page = text_of(client.get(url("overview")))

    assert 'data-box="__account__" data-status="offline"' in page
    assert 'data-box="sales" data-status="online"' in page
    assert "An operator is online" in page
    assert f'data-presence-of="{present.id}" data-present="true"' in page
    team = {row["id"]: row for row in client.get(url("team")).json()["operators"]}
    assert team[present.id] == {"id": present.id, "status": "online", "present": True}
    assert [row["present"] for row in team.values()].count(True) == 1


def test_the_page_carries_the_heartbeat_period_for_its_socket(client, agent, settings):
    settings.PRESENCE_HEARTBEAT_SECONDS = 7
    client.force_login(agent)
    response = client.get(url("overview"))
    assert response.context["config"]["heartbeat_seconds"] == 7
    assert '"heartbeat_seconds": 7' in text_of(response)


def test_operator_names_are_escaped(client, account, owner):
    make_operator(account=account, name="<img src=x onerror=alert(1)>")
    client.force_login(owner)
    page = text_of(client.get(url("overview")))
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


# --- operators ------------------------------------------------------------------------------


def test_an_admin_adds_an_operator_who_starts_offline_in_the_chosen_groups(client, account, owner):
    sales = make_group(account=account, key="sales")
    client.force_login(owner)
    response = client.post(
        url("operator_create"),
        {
            "display_name": "Nela Nová",
            "email": "Nela@Example.com",
            "password": PASSWORD,
            "role": "agent",
            "groups": [sales.id],
        },
    )
    assert response.status_code == 302
    operator = Operator.objects.get(email="nela@example.com")
    assert (operator.account, operator.role, operator.status) == (account, "agent", Status.OFFLINE)
    assert list(operator.chat_groups.all()) == [sales]
    assert operator.check_password(PASSWORD)


def test_adding_an_operator_with_a_taken_email_keeps_the_input(client, account, owner, agent):
    client.force_login(owner)
    response = client.post(
        url("operator_create"), {"display_name": "Dvojník", "email": agent.email, "password": PASSWORD, "role": "agent"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert 'value="Dvojník"' in text_of(response)
    assert Operator.objects.filter(email=agent.email).count() == 1


def test_adding_an_operator_cannot_use_another_accounts_group(client, owner, other_account):
    theirs = make_group(account=other_account, key="theirs")
    client.force_login(owner)
    response = client.post(
        url("operator_create"),
        {"display_name": "X", "email": "x@example.com", "password": PASSWORD, "role": "agent", "groups": [theirs.id]},
    )
    assert response.context["form"].errors["groups"]
    assert not Operator.objects.filter(email="x@example.com").exists()


def test_an_admin_changes_role_groups_and_name(client, account, owner, agent):
    support = make_group(account=account, key="support")
    client.force_login(owner)
    response = client.post(
        url("operator_edit", agent.id),
        {"display_name": "Alena Adminová", "role": "admin", "is_active": "on", "groups": [support.id]},
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.display_name, agent.role, agent.is_active) == ("Alena Adminová", "admin", True)
    assert list(agent.chat_groups.all()) == [support]


def test_the_owners_role_is_not_offered_for_change(client, account, owner):
    admin = make_operator(account=account, role=Operator.Role.ADMIN)
    client.force_login(admin)
    response = client.post(url("operator_edit", owner.id), {"display_name": "Owner", "role": "agent"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.role == Operator.Role.OWNER


def test_an_admin_forces_a_colleague_offline(client, account, owner):
    colleague = make_operator(account=account, status=Status.ONLINE)
    client.force_login(owner)
    response = client.post(url("operator_force_offline", colleague.id))
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.status == Status.OFFLINE
    assert StatusEvent.objects.get(operator=colleague).source == Source.ADMIN


def test_the_operators_page_lists_connected_devices(client, account, owner):
    colleague = make_operator(account=account, status=Status.ONLINE, name="Mirek Mobilní")
    make_token(colleague, device="Pixel 8", is_mobile=True)
    token = colleague.api_tokens.get()
    presence_heartbeat(operator=colleague, conn_id="m1", device=f"t:{token.id}")
    client.force_login(owner)
    page = text_of(client.get(url("operators")))
    assert "Mobile app · Pixel 8" in page
    assert "heard just now" in page


# --- groups ----------------------------------------------------------------------------------


def test_an_admin_creates_renames_and_deletes_a_group(client, account, owner, agent):
    client.force_login(owner)
    assert client.post(url("group_create"), {"name": "Sales", "key": "sales", "members": [agent.id]}).status_code == 302
    group = Group.objects.get(account=account, key="sales")
    assert list(group.members.all()) == [agent]

    client.post(url("group_edit", group.id), {"name": "Prodej", "key": "sales", "members": []})
    group.refresh_from_db()
    assert group.name == "Prodej"
    assert not group.members.exists()

    client.post(url("group_delete", group.id))
    assert not Group.objects.filter(id=group.id).exists()


@pytest.mark.parametrize(("key", "error"), [("sales", "already exists"), ("Not A Key", "lowercase")])
def test_a_bad_group_key_is_shown_next_to_the_field(client, account, owner, key, error):
    make_group(account=account, key="sales")
    client.force_login(owner)
    response = client.post(url("group_create"), {"name": "Second", "key": key})
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["key"])
    assert 'value="Second"' in text_of(response)


# --- opening hours ----------------------------------------------------------------------------


def hours_post(**overrides) -> dict:
    data = {
        "enabled": "on",
        "timezone": "Europe/Prague",
        "monday_from": ["09:00", "22:00"],
        "monday_to": ["17:00", "06:00"],
        "friday_from": ["00:00"],
        "friday_to": ["00:00"],
        "exception_date": ["2026-12-24", "2026-12-31"],
        "exception_kind": ["closed", "hours"],
        "exception_hours": ["", "10:00–14:00, 15:00-16:00"],
    }
    data.update(overrides)
    return data


def test_the_hours_editor_saves_overnight_intervals_and_exceptions(client, account, owner):
    client.force_login(owner)
    response = client.post(url("hours"), hours_post())
    assert response.status_code == 302
    hours = OpeningHours.objects.get(account=account, group=None)
    assert hours.enabled is True
    assert hours.timezone == "Europe/Prague"
    assert hours.weekly["monday"] == [{"from": "09:00", "to": "17:00"}, {"from": "22:00", "to": "06:00"}]
    assert hours.weekly["friday"] == [{"from": "00:00", "to": "24:00"}]
    assert hours.weekly["sunday"] == []
    assert hours.exceptions == [
        {"date": "2026-12-24", "intervals": []},
        {"date": "2026-12-31", "intervals": [{"from": "10:00", "to": "14:00"}, {"from": "15:00", "to": "16:00"}]},
    ]
    page = text_of(client.get(url("hours")))
    assert 'value="22:00"' in page and 'value="06:00"' in page
    assert 'value="10:00–14:00, 15:00–16:00"' in page


def test_a_group_gets_its_own_hours(client, account, owner):
    group = make_group(account=account, key="support")
    client.force_login(owner)
    client.post(url("group_hours", "support"), hours_post(exception_date=[], exception_kind=[], exception_hours=[]))
    assert OpeningHours.objects.get(group=group).weekly["monday"][1] == {"from": "22:00", "to": "06:00"}
    assert not OpeningHours.objects.filter(account=account, group=None).exists()


@pytest.mark.parametrize(
    ("overrides", "where", "message"),
    [
        ({"monday_to": ["17:00", "6"]}, "monday", "Enter both times as HH:MM"),
        ({"monday_from": ["09:00", "10:00"], "monday_to": ["17:00", "12:00"]}, "monday", "overlap"),
        (
            {"friday_from": ["23:00"], "friday_to": ["02:00"], "saturday_from": ["01:00"], "saturday_to": ["03:00"]},
            "friday",
            "overlap",
        ),
        ({"exception_hours": ["", "ten to two"]}, "exception", "Write the hours like"),
        ({"exception_date": ["2026-12-24", "2026-12-24"]}, "exception", "already in the list"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Choose a time zone"),
    ],
)
def test_hours_errors_stay_next_to_the_field_and_the_input_is_kept(client, account, owner, overrides, where, message):
    client.force_login(owner)
    response = client.post(url("hours"), hours_post(**overrides))
    assert response.status_code == 400
    form = response.context["form"]
    if where == "timezone":
        errors = form.timezone_errors
    elif where == "exception":
        errors = [error for row in form.exceptions for error in row.errors]
    else:
        errors = next(day.errors for day in form.days if day.key == where)
    assert any(message in error for error in errors), errors
    page = text_of(response)
    for key, values in overrides.items():
        for value in values if key != "timezone" else []:
            assert f'value="{value}"' in page, value
    assert 'value="2026-12-24"' in page
    assert not OpeningHours.objects.filter(account=account).exists()


def test_without_javascript_add_hours_shows_one_more_row_and_saves_nothing(client, account, owner):
    client.force_login(owner)
    response = client.post(url("hours"), hours_post(add_row="monday"))
    assert response.status_code == 200
    monday = next(day for day in response.context["form"].days if day.key == "monday")
    assert len(monday.rows) == 3
    assert not OpeningHours.objects.exists()


def test_the_hours_preview_says_when_it_opens(client, account, owner):
    opening_hours_set(
        account=account,
        enabled=True,
        timezone="Europe/Prague",
        weekly={"monday": [{"from": "09:00", "to": "17:00"}]},
        exceptions=[],
    )
    client.force_login(owner)
    with time_machine.travel(datetime.datetime(2026, 11, 26, 12, 0, tzinfo=PRAGUE), tick=False):
        page = text_of(client.get(url("hours")))
    assert "Closed now · Opens Monday 09:00" in page


# --- status history ---------------------------------------------------------------------------


def test_history_filters_by_operator_source_and_dates(client, account, owner, agent):
    with time_machine.travel(datetime.datetime(2026, 11, 2, 10, 0, tzinfo=PRAGUE), tick=False):
        operator_set_status(operator=agent, status=Status.ONLINE, source=Source.DASHBOARD)
    with time_machine.travel(datetime.datetime(2026, 11, 3, 23, 30, tzinfo=PRAGUE), tick=False):
        operator_set_status(operator=agent, status=Status.OFFLINE, source=Source.STALE_SWEEP)
        operator_set_status(operator=owner, status=Status.ONLINE, source=Source.API)
    client.force_login(agent)

    def sources(**query) -> list[str]:
        response = client.get(url("history"), query)
        return [item["event"].source for item in response.context["events"]]

    assert sources() == ["api", "stale_sweep", "dashboard"]
    assert sources(operator=agent.id) == ["stale_sweep", "dashboard"]
    assert sources(source="api") == ["api"]
    # 23:30 in Prague is still 3 November there, though 22:30 UTC.
    assert sources(date_from="2026-11-03", date_to="2026-11-03") == ["api", "stale_sweep"]
    assert sources(date_to="2026-11-02") == ["dashboard"]


def test_history_is_paginated(client, account, agent):
    # A change a minute: ten changes in ten seconds is the most an operator may make.
    start = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(hours=1)
    for index in range(55):
        status = Status.ONLINE if index % 2 == 0 else Status.OFFLINE
        now = start + datetime.timedelta(minutes=index)
        operator_set_status(operator=agent, status=status, source=Source.DASHBOARD, now=now)
    client.force_login(agent)
    first = client.get(url("history"))
    assert len(first.context["events"]) == 50
    assert "Page 1 of 2" in text_of(first)
    assert len(client.get(url("history"), {"page": 2}).context["events"]) == 5


def test_history_never_shows_another_accounts_events(client, agent, other_account):
    stranger = make_operator(account=other_account)
    operator_set_status(operator=stranger, status=Status.ONLINE, source=Source.DASHBOARD)
    client.force_login(agent)
    assert client.get(url("history")).context["events"] == []
    assert client.get(url("history"), {"operator": stranger.id}).context["form"].errors["operator"]


# --- widget ------------------------------------------------------------------------------------


def test_the_widget_page_shows_the_embed_snippet_and_the_preview(client, account, agent, settings):
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    client.force_login(agent)
    page = text_of(client.get(url("widget"), HTTP_HOST="chat.example.com"))
    snippet = f'<script src="http://chat.example.com/widget.js" data-key="{account.widget_key}" async></script>'
    assert snippet.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in page
    assert f'src="/widget/demo/{account.widget_key}/"' in page


def test_an_admin_sets_the_allowed_origins(client, account, owner):
    client.force_login(owner)
    response = client.post(url("widget"), {"allowed_origins": "https://www.shop.cz/\n\nhttps://shop.cz\n"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.allowed_origins == ["https://www.shop.cz", "https://shop.cz"]


def test_a_bad_origin_is_refused_and_kept_in_the_field(client, account, owner):
    client.force_login(owner)
    response = client.post(url("widget"), {"allowed_origins": "www.shop.cz"})
    assert response.status_code == 200
    assert "is not an origin" in " ".join(response.context["form"].errors["allowed_origins"])
    assert "www.shop.cz</textarea>" in text_of(response)
    account.refresh_from_db()
    assert account.allowed_origins == []


# --- inbox ----------------------------------------------------------------------------------------


def test_the_inbox_lists_the_accounts_conversations(client, account, agent, other_account):
    """More in test_inbox.py: the inbox lists conversations (rule 6), no longer the offline form's messages."""
    visitor_writes(account, "Máte otevřeno?", client_id="here", name="Karel")
    visitor_writes(other_account, "Hello", client_id="there", name="Cizinec")
    client.force_login(agent)
    page = text_of(client.get(url("inbox")))
    assert "Karel" in page and "Máte otevřeno?" in page
    assert "Cizinec" not in page


# --- profile -------------------------------------------------------------------------------------


def image_upload(image_format: str, *, name: str = "me.png", size: tuple[int, int] = (600, 400)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format=image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def test_an_operator_changes_name_and_language(client, agent):
    client.force_login(agent)
    response = client.post(url("profile"), {"form": "profile", "display_name": "Alena A.", "language": "cs"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.display_name, agent.language) == ("Alena A.", "cs")
    assert '<html lang="cs"' in text_of(client.get(url("profile")))


@pytest.mark.parametrize(("image_format", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_an_avatar_is_checked_and_stored_small(client, agent, image_format, extension):
    client.force_login(agent)
    upload = image_upload(image_format, name="../../evil.php")
    response = client.post(url("profile"), {"form": "profile", "display_name": "A", "language": "", "avatar": upload})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.avatar.name.startswith("avatars/") and agent.avatar.name.endswith(f".{extension}")
    with Image.open(agent.avatar.path) as stored:
        assert stored.format == image_format
        assert max(stored.size) == 256
    assert agent.avatar.url in text_of(client.get(url("overview")))


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("me.png", b"<?php echo 1; ?>", content_type="image/png"), "Upload a PNG, JPEG or WebP"),
        (image_upload("GIF", name="me.gif"), "Upload a PNG, JPEG or WebP"),
        (SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (2 * 1024 * 1024), content_type="image/png"), "2 MB"),
    ],
)
def test_a_bad_avatar_is_refused(client, agent, upload, message):
    client.force_login(agent)
    response = client.post(url("profile"), {"form": "profile", "display_name": "A", "language": "", "avatar": upload})
    assert response.status_code == 200
    assert message in " ".join(response.context["profile_form"].errors["avatar"])
    agent.refresh_from_db()
    assert not agent.avatar


def test_an_operator_changes_the_password_and_stays_logged_in(client, agent):
    client.force_login(agent)
    response = client.post(
        url("profile"),
        {
            "form": "password",
            "old_password": PASSWORD,
            "new_password1": "a-new-long-pass",
            "new_password2": "a-new-long-pass",
        },
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("a-new-long-pass")
    assert client.get(url("overview")).status_code == 200
