"""Bad input gets a clear validation error naming the field, never a crash."""

import pytest
from django.core.exceptions import ValidationError

from accounts.services import account_update, operator_create
from groups.services import group_create, group_update
from hours.services import opening_hours_set
from tests.factories import make_account, make_group, make_operator


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "posixrules"}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),
        ({"stale_after_seconds": 10}, "stale_after_seconds"),
        ({"stale_after_seconds": 7200}, "stale_after_seconds"),
        ({"allowed_origins": ["example.com"]}, "allowed_origins"),
        ({"allowed_origins": "https://example.com"}, "allowed_origins"),
        ({"language": "de"}, "language"),
        ({"name": ""}, "name"),
    ],
)
def test_account_fields_are_validated(fields, field):
    account = make_account()
    with pytest.raises(ValidationError) as error:
        account_update(account=account, **fields)
    assert field in error.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["with space", "UPPER", "", "-lead", "a" * 51, "é"])
def test_a_group_key_must_be_a_slug(key):
    account = make_account()
    with pytest.raises(ValidationError) as error:
        group_create(account=account, key=key, name="Sales")
    assert "key" in error.value.message_dict


@pytest.mark.django_db
def test_group_keys_are_unique_per_account_but_not_across_accounts():
    first, second = make_account(), make_account()
    make_group(account=first, key="sales")
    make_group(account=second, key="sales")
    with pytest.raises(ValidationError) as error:
        group_create(account=first, key="sales", name="Again")
    assert "key" in error.value.message_dict
    other = make_group(account=first, key="support")
    with pytest.raises(ValidationError):
        group_update(group=other, key="sales")


@pytest.mark.django_db
def test_a_group_cannot_take_members_from_another_account():
    first, second = make_account(), make_account()
    stranger = make_operator(account=second)
    with pytest.raises(ValidationError) as error:
        group_create(account=first, key="sales", name="Sales", member_ids=[stranger.id])
    assert "members" in error.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("timezone", "weekly", "exceptions", "field"),
    [
        ("Mars/Olympus", {}, [], "timezone"),
        ("UTC", {"monday": [{"from": "25:00", "to": "26:00"}]}, [], "weekly"),
        ("UTC", {"monday": [{"from": "09:00", "to": "09:00"}]}, [], "weekly"),
        ("UTC", {"monday": [{"from": "09:00", "to": "12:00"}, {"from": "11:00", "to": "13:00"}]}, [], "weekly"),
        ("UTC", {"funday": [{"from": "09:00", "to": "12:00"}]}, [], "weekly"),
        ("UTC", {}, [{"date": "2026-02-30", "intervals": []}], "exceptions"),
    ],
)
def test_opening_hours_are_validated_and_nothing_is_stored(timezone, weekly, exceptions, field):
    account = make_account()
    with pytest.raises(ValidationError) as error:
        opening_hours_set(account=account, enabled=True, timezone=timezone, weekly=weekly, exceptions=exceptions)
    assert field in error.value.message_dict
    assert not account.opening_hours.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"display_name": ""}, "display_name"),
        ({"role": "king"}, "role"),
        ({"password": "short"}, "password"),
    ],
)
def test_operator_fields_are_validated(fields, field):
    account = make_account()
    data = {"email": "new@example.com", "display_name": "New", "role": "agent", **fields}
    with pytest.raises(ValidationError) as error:
        operator_create(account=account, **data)
    assert field in error.value.message_dict
