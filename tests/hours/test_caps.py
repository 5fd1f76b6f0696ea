"""Caps on every collection an admin can send: opening-hours exceptions (and
intervals per day), a group's members, an operator's groups and an account's
allowed origins. Each cap lives where the validation already was
(``hours.schedule.parse_schedule``, ``groups.services``,
``accounts.models.validate_origins``), so the API, the dashboard and the Django
admin all refuse an over-cap list with one clear message, store nothing, and
keep their error lists short however bad the input."""

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError

from accounts.models import MAX_ALLOWED_ORIGINS, Account, Operator, validate_origins
from groups.models import Group
from groups.services import MAX_GROUPS_PER_OPERATOR, MAX_MEMBERS, group_set_members, operator_set_groups
from hours.models import OpeningHours
from hours.schedule import MAX_ERRORS, MAX_EXCEPTIONS, parse_schedule
from tests.api.conftest import token_client
from tests.factories import make_account, make_group, owner_of

pytestmark = pytest.mark.django_db

FIRST_DAY = dt.date(2027, 1, 1)
# An answer to an over-cap or hopeless request: one screenful, never a megabyte.
SHORT_ANSWER_BYTES = 4_000


def closed_days(count: int) -> list[dict]:
    """``count`` consecutive dates, each closed all day: a valid list of exceptions."""
    return [{"date": (FIRST_DAY + dt.timedelta(days=n)).isoformat(), "intervals": []} for n in range(count)]


def bad_entries(count: int) -> list[dict]:
    return [{"date": f"day {n}", "intervals": []} for n in range(count)]


def schedule_errors(**fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        parse_schedule(**{"timezone": "Europe/Prague", "weekly": {}, "exceptions": [], **fields})
    return caught.value.message_dict


@pytest.fixture
def account() -> Account:
    return make_account(name="Shop")


@pytest.fixture
def owner(account) -> Operator:
    return owner_of(account)


@pytest.fixture
def api(owner):
    return token_client(owner)


@pytest.fixture
def dashboard(client, owner):
    client.force_login(owner)
    return client


def many_operators(account: Account, count: int) -> list[Operator]:
    Operator.objects.bulk_create(
        Operator(account=account, email=f"member{n}@example.com", display_name=f"Member {n:04d}") for n in range(count)
    )
    return list(Operator.objects.filter(account=account, email__startswith="member"))


# --- the schedule validator --------------------------------------------------------------


def test_a_schedule_takes_an_exception_for_every_day_of_a_year_and_no_more():
    schedule = parse_schedule(timezone="Europe/Prague", weekly={}, exceptions=closed_days(MAX_EXCEPTIONS))
    errors = schedule_errors(exceptions=closed_days(MAX_EXCEPTIONS + 1))

    # It should keep 366 and refuse 367 with one message naming the cap and the count.
    assert len(schedule.exceptions) == 366
    assert errors == {"exceptions": ["At most 366 exceptions are allowed, got 367; remove some (past dates first)."]}


def test_forty_thousand_invalid_exceptions_get_one_message():
    errors = schedule_errors(exceptions=bad_entries(40_000))

    # It should refuse the list by its length, not list 40,000 problems.
    assert len(errors["exceptions"]) == 1


def test_the_error_list_of_a_hopeless_schedule_stops_at_twenty_and_says_how_many_more():
    errors = schedule_errors(
        exceptions=bad_entries(MAX_EXCEPTIONS), weekly={f"day{n}": [] for n in range(500)}, timezone="Mars/Olympus"
    )

    # It should list twenty problems per field and count the rest.
    assert len(errors["exceptions"]) == MAX_ERRORS + 1
    assert errors["exceptions"][-1] == "... and 346 more problems not listed; fix these first."
    assert len(errors["weekly"]) == MAX_ERRORS + 1
    assert errors["weekly"][-1] == "... and 480 more problems not listed; fix these first."
    assert len(errors["timezone"]) == 1


# --- opening hours through the API ---------------------------------------------------------


def test_the_api_takes_an_exception_for_every_day_of_a_year_and_no_more(api, account):
    year = {"enabled": True, "timezone": "Europe/Prague", "weekly": {}, "exceptions": closed_days(MAX_EXCEPTIONS)}
    one_more = {**year, "exceptions": closed_days(MAX_EXCEPTIONS + 1)}

    accepted = api.put("/api/v1/opening-hours", year)
    refused = api.put("/api/v1/opening-hours", one_more)

    # It should store 366, then answer 400 with the cap and keep the 366.
    assert accepted.status_code == 200
    assert refused.status_code == 400
    assert refused.json() == {
        "exceptions": ["At most 366 exceptions are allowed, got 367; remove some (past dates first)."]
    }
    assert len(OpeningHours.objects.get(account=account).exceptions) == 366


def test_the_api_answers_forty_thousand_bad_exceptions_in_a_few_bytes(api, account):
    body = {"enabled": True, "timezone": "Europe/Prague", "weekly": {}, "exceptions": bad_entries(40_000)}

    response = api.put("/api/v1/opening-hours", body)

    # It should refuse them with one short answer (it was 1.9 MB) and store nothing.
    assert response.status_code == 400
    assert len(response.content) < SHORT_ANSWER_BYTES
    assert not OpeningHours.objects.filter(account=account).exists()


def test_the_api_error_list_of_a_bad_schedule_is_bounded(api, account):
    body = {"enabled": True, "timezone": "Europe/Prague", "weekly": {}, "exceptions": bad_entries(MAX_EXCEPTIONS)}

    response = api.put("/api/v1/opening-hours", body)

    # It should list twenty problems and say how many more there are.
    assert response.status_code == 400
    assert len(response.json()["exceptions"]) == MAX_ERRORS + 1
    assert "346 more problems" in response.json()["exceptions"][-1]


# --- opening hours through the dashboard -------------------------------------------------


def hours_form(exceptions: int) -> dict[str, object]:
    dates = [(FIRST_DAY + dt.timedelta(days=n)).isoformat() for n in range(exceptions)]
    return {
        "enabled": "on",
        "timezone": "Europe/Prague",
        "monday_from": ["09:00"],
        "monday_to": ["17:00"],
        "exception_date": dates,
        "exception_kind": ["closed"] * exceptions,
        "exception_hours": [""] * exceptions,
        "save": "1",
    }


def test_the_dashboard_refuses_too_many_exceptions_with_a_form_error(dashboard, account):
    response = dashboard.post("/hours/", hours_form(MAX_EXCEPTIONS + 1))

    # It should show the form again with one message naming the cap, and save nothing.
    assert response.status_code == 400
    assert response.context["form"].non_field_errors == [
        "At most 366 dates can have other hours; this list has 367. Remove some, past dates first."
    ]
    assert not any(row.errors for row in response.context["form"].exceptions)
    assert not OpeningHours.objects.filter(account=account).exists()


def test_the_dashboard_saves_an_exception_for_every_day_of_a_year(dashboard, account):
    response = dashboard.post("/hours/", hours_form(MAX_EXCEPTIONS))

    # It should save them all: the form fits in the request's field limit.
    assert response.status_code == 302
    assert len(OpeningHours.objects.get(account=account).exceptions) == 366


def test_the_dashboard_says_the_cap_in_czech(dashboard, owner, account):
    owner.language = "cs"
    owner.save(update_fields=["language"])

    response = dashboard.post("/hours/", hours_form(MAX_EXCEPTIONS + 1))

    # It should speak the operator's language.
    assert "Jiné hodiny může mít nejvýše 366 dní; seznam jich má 367." in response.content.decode()


# --- opening hours through the Django admin ---------------------------------------------


def test_the_admin_refuses_too_many_exceptions(client, account):
    hours = OpeningHours.objects.create(account=account, timezone="Europe/Prague")
    client.force_login(Operator.objects.create_superuser("root@example.com", "root-password-1", display_name="Root"))
    data = {"enabled": "on", "timezone": "Europe/Prague", "weekly": "{}", "exceptions": json.dumps(closed_days(367))}

    response = client.post(f"/admin/hours/openinghours/{hours.id}/change/", data)

    # It should show the cap on the form and keep the schedule as it was.
    assert response.status_code == 200
    assert "At most 366 exceptions are allowed, got 367" in response.content.decode()
    hours.refresh_from_db()
    assert hours.exceptions == []


# --- a group's members ---------------------------------------------------------------------


def test_the_service_refuses_more_members_than_the_cap_before_any_query(account, django_assert_num_queries):
    group = make_group(account=account, key="sales")

    with django_assert_num_queries(0), pytest.raises(ValidationError) as caught:
        group_set_members(group=group, member_ids=range(1, MAX_MEMBERS + 2))

    # It should name the cap and the count.
    assert caught.value.message_dict == {"members": ["A group can have at most 1000 members; 1001 were given."]}


def test_the_service_refuses_an_operator_in_more_groups_than_the_cap(account, owner):
    with pytest.raises(ValidationError) as caught:
        operator_set_groups(operator=owner, group_ids=range(1, MAX_GROUPS_PER_OPERATOR + 2))

    # It should name the cap and the count.
    assert caught.value.message_dict == {"groups": ["An operator can be in at most 1000 groups; 1001 were given."]}


def test_the_api_refuses_too_many_members_with_one_message(api, account):
    response = api.post("/api/v1/groups", {"key": "sales", "name": "Sales", "members": ["x"] * 100_000})

    # It should refuse the list by its length (it listed 100,000 bad ids, 4 MB) and create nothing.
    assert response.status_code == 400
    assert response.json() == {"members": ["Ensure this field has no more than 1000 elements."]}
    assert not Group.objects.filter(account=account).exists()


def test_the_dashboard_refuses_too_many_members_with_a_form_error(dashboard, account):
    members = many_operators(account, MAX_MEMBERS + 1)

    response = dashboard.post(
        "/groups/new/", {"name": "Everyone", "key": "everyone", "members": [m.id for m in members]}
    )

    # It should show the form again with the cap next to the members, and create nothing.
    assert response.status_code == 200
    assert response.context["form"].errors == {"members": ["A group can have at most 1000 members; 1001 were given."]}
    assert not Group.objects.filter(account=account).exists()


# --- an account's allowed origins ----------------------------------------------------------


def origins(count: int) -> list[str]:
    return [f"https://shop{n}.example" for n in range(count)]


def test_the_validator_refuses_more_origins_than_the_cap():
    with pytest.raises(ValidationError) as caught:
        validate_origins(origins(MAX_ALLOWED_ORIGINS + 1))

    # It should name the cap and the count.
    assert caught.value.messages == ["At most 100 allowed origins; 101 were given."]


def test_the_api_refuses_too_many_origins_with_one_message(api, account):
    response = api.patch("/api/v1/account", {"allowed_origins": [7] * 100_000})

    # It should refuse the list by its length, not each of its 100,000 items, and change nothing.
    assert response.status_code == 400
    assert response.json() == {"allowed_origins": ["Ensure this field has no more than 100 elements."]}
    account.refresh_from_db()
    assert account.allowed_origins == []


def test_the_dashboard_refuses_too_many_origins_with_a_form_error(dashboard, account):
    response = dashboard.post("/embed/", {"allowed_origins": "\n".join(origins(MAX_ALLOWED_ORIGINS + 1))})

    # It should show the cap next to the field and change nothing.
    assert response.context["form"].errors == {"allowed_origins": ["At most 100 allowed origins; 101 were given."]}
    account.refresh_from_db()
    assert account.allowed_origins == []
