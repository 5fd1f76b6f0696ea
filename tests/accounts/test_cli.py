from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.auth import token_lookup
from accounts.models import Account, Operator
from groups.models import Group
from hours.models import OpeningHours


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_account_prints_the_widget_key_and_a_working_api_token():
    output = run("create_account", "--name", "Acme", "--email", "Boss@Acme.example", "--password", "long-password-1")
    lines = dict(line.split("=", 1) for line in output.strip().splitlines())
    account = Account.objects.get(name="Acme")
    assert lines["widget_key"] == account.widget_key
    token = token_lookup(lines["api_token"])
    assert token.operator.email == "boss@acme.example"
    assert token.operator.role == Operator.Role.OWNER
    assert token.operator.status == "offline"
    assert token.operator.check_password("long-password-1")


@pytest.mark.django_db
def test_create_account_without_a_password_creates_an_owner_who_cannot_log_in_yet():
    run("create_account", "--name", "Acme", "--email", "boss@acme.example")
    assert not Operator.objects.get(email="boss@acme.example").has_usable_password()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Acme", "--email", "not-an-email"], "email"),
        (["--name", "Acme", "--email", "boss@acme.example", "--password", "123"], "password"),
        (["--name", "", "--email", "boss@acme.example"], "name"),
    ],
)
def test_create_account_rejects_bad_input_with_a_clear_error_and_creates_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_account", *args, stdout=StringIO())
    assert not Account.objects.exists()


@pytest.mark.django_db
def test_create_account_refuses_an_e_mail_already_in_use():
    run("create_account", "--name", "Acme", "--email", "boss@acme.example")
    with pytest.raises(CommandError, match="email"):
        call_command("create_account", "--name", "Other", "--email", "BOSS@acme.example", stdout=StringIO())
    assert Account.objects.count() == 1


@pytest.mark.django_db
def test_seed_demo_creates_groups_operators_and_hours_and_prints_the_login():
    output = run("seed_demo")
    assert "owner@demo.example" in output
    assert "http://127.0.0.1:8000/" in output
    account = Account.objects.get(name="Demo Shop")
    assert account.operators.count() == 5
    assert set(Group.objects.filter(account=account).values_list("key", flat=True)) == {"sales", "support"}
    assert OpeningHours.objects.filter(account=account).count() == 2
    # Running it again reuses the demo instead of failing or duplicating it.
    run("seed_demo")
    assert Account.objects.filter(name="Demo Shop").count() == 1


@pytest.mark.django_db
def test_seed_demo_gives_the_demo_a_faq_in_both_languages_once():
    from conversations.faq.selectors import faq_match
    from conversations.models import FaqEntry

    run("seed_demo")
    run("seed_demo")
    account = Account.objects.get(name="Demo Shop")
    entries = FaqEntry.objects.filter(account=account)
    assert set(entries.values_list("language", flat=True)) == {"cs", "en"}
    assert entries.count() == len(set(entries.values_list("question", flat=True)))
    # It should answer the way visitors ask, in either language.
    assert faq_match(account=account, text="kolik stoji doprava")[0] is not None
    assert faq_match(account=account, text="how do i return an item")[0] is not None
