"""The owner rules of ``accounts.services``: an account has exactly one owner,
who stays the owner, active and in their account; nobody deactivates or removes
themselves; only the owner changes the owner's e-mail. The database refuses a
second owner whatever writes the row. Losing access ends every device; deleting
an account empties what the presence store kept for it."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Account, Operator, Status
from accounts.services import (
    account_create,
    account_delete,
    operator_create,
    operator_delete,
    operator_update,
)
from presence import events
from presence.models import Source, StatusEvent
from presence.selectors import chat_box_snapshot, operator_connections, presence_map
from presence.services import presence_heartbeat
from presence.store import ALL_DEVICES, RedisStore
from tests.factories import PASSWORD, make_account, make_operator, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def account() -> Account:
    return make_account()


@pytest.fixture
def owner(account) -> Operator:
    return owner_of(account)


@pytest.fixture
def admin(account) -> Operator:
    return make_operator(account=account, role=Operator.Role.ADMIN)


@pytest.fixture
def agent(account) -> Operator:
    return make_operator(account=account)


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict]]:
    """Every (group, message) published, in order; still delivered."""
    sent: list[tuple[str, dict]] = []
    lock = threading.Lock()
    deliver = events.publish_many

    def spy(messages: list[tuple[str, dict]]) -> None:
        with lock:
            sent.extend(messages)
        deliver(messages)

    monkeypatch.setattr(events, "publish_many", spy)
    return sent


def problems_of(error: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return set(error.value.message_dict)


def owners_of(account: Account) -> list[int]:
    return list(Operator.objects.filter(account=account, role=Operator.Role.OWNER).values_list("id", flat=True))


# --- one owner per account ---------------------------------------------------------------


def test_a_new_account_has_exactly_one_owner():
    account, owner = account_create(name="Shop", email="Boss@Example.com", password=PASSWORD)

    # It should make the one who created it the account's only owner.
    assert owners_of(account) == [owner.id]
    assert owner.email == "boss@example.com"


def test_a_second_owner_cannot_be_created(account, owner):
    with pytest.raises(ValidationError) as error:
        operator_create(account=account, email="usurper@example.com", display_name="U", role=Operator.Role.OWNER)

    # It should refuse the role, and write nothing.
    assert problems_of(error) == {"role"}
    assert owners_of(account) == [owner.id]
    assert not Operator.objects.filter(email="usurper@example.com").exists()


def test_an_owner_without_an_account_cannot_be_created():
    with pytest.raises(ValidationError) as error:
        operator_create(account=None, email="staff@example.com", display_name="Staff", role=Operator.Role.OWNER)

    # It should refuse: an owner owns an account.
    assert problems_of(error) == {"role"}


def test_the_database_itself_refuses_a_second_owner(account, owner, agent):
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        Operator.objects.filter(id=agent.id).update(role=Operator.Role.OWNER)

    # It should refuse the write that bypasses the services, by the named constraint.
    if connection.vendor == "postgresql":
        assert "operator_one_owner_per_account" in str(error.value)
    assert owners_of(account) == [owner.id]


def test_the_one_owner_constraint_counts_per_account(account, owner):
    other = make_account()
    stranger = make_operator(account=other)
    Operator.objects.filter(id=owner_of(other).id).update(role=Operator.Role.ADMIN)

    # It should allow an owner in another account that has none.
    Operator.objects.filter(id=stranger.id).update(role=Operator.Role.OWNER)
    assert owners_of(other) == [stranger.id]
    assert owners_of(account) == [owner.id]


# --- operator_update -------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["owner", "admin", "staff"])
def test_nobody_gives_the_owner_role(request, agent, actor):
    who = None if actor == "staff" else request.getfixturevalue(actor)

    with pytest.raises(ValidationError) as error:
        operator_update(operator=agent, actor=who, role=Operator.Role.OWNER)

    # It should refuse the role whoever asks.
    assert problems_of(error) == {"role"}
    agent.refresh_from_db()
    assert agent.role == Operator.Role.AGENT


@pytest.mark.parametrize("actor", ["owner", "admin", "staff"])
@pytest.mark.parametrize("role", [Operator.Role.ADMIN, Operator.Role.AGENT])
def test_nobody_takes_the_owner_role_away(request, owner, actor, role):
    who = None if actor == "staff" else request.getfixturevalue(actor)

    with pytest.raises(ValidationError) as error:
        operator_update(operator=owner, actor=who, role=role)

    # It should keep the owner the owner.
    assert problems_of(error) == {"role"}
    owner.refresh_from_db()
    assert owner.role == Operator.Role.OWNER


def test_the_owner_keeping_their_role_is_no_change(owner):
    operator_update(operator=owner, actor=owner, role=Operator.Role.OWNER, display_name="Boss")

    owner.refresh_from_db()
    # It should accept a form that sends the role unchanged.
    assert (owner.role, owner.display_name) == (Operator.Role.OWNER, "Boss")


def test_an_admin_may_change_other_roles_below_owner(admin, agent):
    operator_update(operator=agent, actor=admin, role=Operator.Role.ADMIN)

    agent.refresh_from_db()
    # It should let the rules apply to the owner role only.
    assert agent.role == Operator.Role.ADMIN


@pytest.mark.parametrize("actor", ["owner", "admin", "staff"])
def test_nobody_deactivates_the_owner(request, owner, actor):
    who = None if actor == "staff" else request.getfixturevalue(actor)

    with pytest.raises(ValidationError) as error:
        operator_update(operator=owner, actor=who, is_active=False)

    # It should keep the owner active.
    assert problems_of(error) == {"is_active"}
    owner.refresh_from_db()
    assert owner.is_active


def test_an_admin_cannot_deactivate_themselves(admin):
    with pytest.raises(ValidationError) as error:
        operator_update(operator=admin, actor=admin, is_active=False)

    # It should refuse, so nobody locks themselves out.
    assert problems_of(error) == {"is_active"}
    admin.refresh_from_db()
    assert admin.is_active


def test_an_admin_may_deactivate_a_colleague(admin, agent):
    operator_update(operator=agent, actor=admin, is_active=False)

    agent.refresh_from_db()
    # It should apply the self rule to oneself only.
    assert not agent.is_active


def test_an_admin_cannot_change_the_owners_e_mail(owner, admin):
    before = owner.email

    with pytest.raises(ValidationError) as error:
        operator_update(operator=owner, actor=admin, email="taken-over@example.com")

    # It should refuse: the owner's e-mail is how the account is recovered.
    assert problems_of(error) == {"email"}
    owner.refresh_from_db()
    assert owner.email == before


def test_the_owner_changes_their_own_e_mail(owner):
    operator_update(operator=owner, actor=owner, email="New.Boss@Example.com")

    owner.refresh_from_db()
    # It should accept, normalised.
    assert owner.email == "new.boss@example.com"


def test_site_staff_may_change_the_owners_e_mail(owner):
    operator_update(operator=owner, actor=None, email="recovered@example.com")

    owner.refresh_from_db()
    # It should accept: site staff (no actor) recover accounts.
    assert owner.email == "recovered@example.com"


def test_an_admin_may_change_a_colleagues_e_mail(admin, agent):
    operator_update(operator=agent, actor=admin, email="renamed@example.com")

    agent.refresh_from_db()
    # It should apply the e-mail rule to the owner only.
    assert agent.email == "renamed@example.com"


def test_the_owner_cannot_be_moved_to_another_account(account, owner):
    other = make_account()

    with pytest.raises(ValidationError) as error:
        operator_update(operator=owner, actor=None, account=other)

    # It should keep the owner with their account.
    assert problems_of(error) == {"account"}
    owner.refresh_from_db()
    assert owner.account_id == account.id
    assert owners_of(account) == [owner.id]


def test_site_staff_may_move_an_agent_to_another_account(agent):
    other = make_account()

    operator_update(operator=agent, actor=None, account=other)

    agent.refresh_from_db()
    # It should apply the move rule to the owner only.
    assert agent.account_id == other.id


def test_an_account_member_cannot_move_anyone(admin, agent):
    with pytest.raises(ValueError, match="account"):
        operator_update(operator=agent, actor=admin, account=make_account())

    agent.refresh_from_db()
    # It should leave moving between accounts to site staff.
    assert agent.account_id == admin.account_id


# --- operator_delete --------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["owner", "admin", "staff"])
def test_nobody_removes_the_owner(request, account, owner, actor):
    who = None if actor == "staff" else request.getfixturevalue(actor)

    with pytest.raises(ValidationError):
        operator_delete(operator=owner, actor=who)

    # It should keep the owner.
    assert owners_of(account) == [owner.id]


def test_an_admin_cannot_remove_themselves(admin):
    with pytest.raises(ValidationError):
        operator_delete(operator=admin, actor=admin)

    # It should keep them.
    assert Operator.objects.filter(id=admin.id).exists()


def test_an_admin_may_remove_a_colleague(admin, agent):
    operator_delete(operator=agent, actor=admin)

    # It should remove them.
    assert not Operator.objects.filter(id=agent.id).exists()


# --- losing access, deleting an account -----------------------------------------------------


def test_deactivating_an_operator_ends_every_device_and_switches_them_offline(
    account, owner, published, django_capture_on_commit_callbacks
):
    operator = make_operator(account=account, status=Status.ONLINE)
    presence_heartbeat(operator=operator, conn_id="laptop-tab", device="s:laptop")
    presence_heartbeat(operator=operator, conn_id="phone-app", device="t:1")
    assert len(operator_connections(operator=operator)) == 2
    assert chat_box_snapshot(account_id=account.id)["status"] == Status.ONLINE

    with django_capture_on_commit_callbacks(execute=True):
        operator_update(operator=operator, actor=owner, is_active=False)

    operator.refresh_from_db()
    # It should end every device at once, switch them offline on record as the admin's doing, and
    # tell their sockets (every device) to close.
    assert operator_connections(operator=operator) == []
    assert presence_map(account_id=account.id).get(operator.id, 0) <= timezone.now().timestamp()
    assert operator.status == Status.OFFLINE
    assert list(StatusEvent.objects.filter(operator=operator).values_list("new", "source")) == [
        (Status.OFFLINE, Source.ADMIN)
    ]
    logouts = [message for group, message in published if group == events.operator_group(operator.id)]
    assert [(message["type"], message["device"], message.get("except")) for message in logouts] == [
        ("operator.logout", ALL_DEVICES, None)
    ]
    assert chat_box_snapshot(account_id=account.id)["status"] == Status.OFFLINE


def test_deleting_an_account_empties_its_presence_store_keys(account, store, django_capture_on_commit_callbacks):
    account_id = account.id  # deleting clears the instance's id
    operator = make_operator(account=account, status=Status.ONLINE)
    presence_heartbeat(operator=operator, conn_id="laptop-tab", device="s:laptop")  # stores a snapshot too
    neighbour = make_account()
    neighbours_operator = make_operator(account=neighbour, status=Status.ONLINE)
    presence_heartbeat(operator=neighbours_operator, conn_id="tab", device="s:tab")
    assert store.snapshot_json(account_id=account_id) is not None
    assert operator.id in store.present_until_map(account_id=account_id)

    with django_capture_on_commit_callbacks(execute=True):
        account_delete(account=account)

    far_future = timezone.now().timestamp() + 10**9
    # It should leave nothing of the account in the store: no snapshot, no presence, no connection,
    # no schedule deadline; and the neighbour's stays.
    assert store.snapshot_json(account_id=account_id) is None
    assert store.present_until_map(account_id=account_id) == {}
    assert operator_connections(operator=operator) == []
    assert account_id not in store.due_accounts(now=far_future, limit=10_000)
    if isinstance(store, RedisStore):
        assert list(store.client.scan_iter(match=f"{store.prefix}:a:{account_id}:*")) == []
        assert store.client.zscore(f"{store.prefix}:until", f"{account_id}:{operator.id}") is None
    assert store.snapshot_json(account_id=neighbour.id) is not None
    assert neighbours_operator.id in store.present_until_map(account_id=neighbour.id)


@pytest.mark.django_db
def test_an_admin_may_send_the_owners_unchanged_email_with_other_changes(owner, admin):
    operator_update(operator=owner, actor=admin, email=owner.email.upper(), display_name="The Boss")
    owner.refresh_from_db()
    # It should take the change: only a new e-mail is the owner's to make.
    assert owner.display_name == "The Boss"


@pytest.mark.django_db
def test_the_rules_compare_with_the_stored_operator_not_a_changed_copy(owner):
    # What a ModelForm does before the admin calls the service: the new values are already on the object.
    owner.role = Operator.Role.ADMIN
    with pytest.raises(ValidationError) as error:
        operator_update(operator=owner, actor=None, role=Operator.Role.ADMIN)
    # It should still see the owner being demoted, and refuse.
    assert problems_of(error) == {"role"}
    assert Operator.objects.get(id=owner.id).role == Operator.Role.OWNER
