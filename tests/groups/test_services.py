"""Groups services: every change of a group or a membership moves the chat box
after commit (the group's widget box follows its present, online members); a
member from another account or a taken key is a field error that writes nothing."""

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Account, Operator, Status
from accounts.services import operator_update
from groups.models import Group, Membership
from groups.services import group_create, group_delete, group_set_members, group_update, operator_set_groups
from presence.selectors import chat_box_snapshot, chat_box_states
from presence.services import operator_set_status, presence_heartbeat
from tests.factories import make_account, make_group, make_operator

pytestmark = pytest.mark.django_db


@pytest.fixture
def account() -> Account:
    return make_account()


@pytest.fixture
def seller(account) -> Operator:
    """Online and present: a box they count for is online."""
    operator = make_operator(account=account, status=Status.ONLINE, name="Seller")
    presence_heartbeat(operator=operator, conn_id="tab", device="s:tab")  # stores the snapshot
    return operator


def boxes(account: Account) -> dict[str | None, str]:
    """The stored snapshot as (group key or None for the account box) → status."""
    snapshot = chat_box_snapshot(account_id=account.id)
    return {None: snapshot["status"], **{key: box["status"] for key, box in snapshot["groups"].items()}}


@pytest.fixture
def committed(django_capture_on_commit_callbacks) -> Callable:
    """Run a setup step and its after-commit work, as a committed request would."""

    def run(step: Callable[[], object]) -> object:
        with django_capture_on_commit_callbacks(execute=True):
            return step()

    return run


def test_creating_a_group_refreshes_the_chat_box_after_commit(account, seller, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        group_create(account=account, key="sales", name="Sales", member_ids=[seller.id])
        before = boxes(account)

    # It should show the new group online (its member is available) once committed, not before;
    # the account box no longer counts the now grouped seller.
    assert before == {None: Status.ONLINE}
    assert boxes(account) == {None: Status.OFFLINE, "sales": Status.ONLINE}


def test_renaming_a_groups_key_refreshes_the_chat_box_after_commit(
    account, seller, committed, django_capture_on_commit_callbacks
):
    group = committed(lambda: make_group(account=account, key="sales", members=[seller]))
    with django_capture_on_commit_callbacks(execute=True):
        group_update(group=group, key="shop")
        before = boxes(account)

    # It should answer for the new key, and no more for the old one, after commit.
    assert "sales" in before
    assert boxes(account) == {None: Status.OFFLINE, "shop": Status.ONLINE}


def test_changing_a_groups_members_in_an_update_refreshes_the_chat_box_after_commit(
    account, seller, committed, django_capture_on_commit_callbacks
):
    group = committed(lambda: make_group(account=account, key="sales"))
    with django_capture_on_commit_callbacks(execute=True):
        group_update(group=group, member_ids=[seller.id])
        before = boxes(account)

    # It should follow the member who joined.
    assert before["sales"] == Status.ONLINE  # the seller was ungrouped: they counted for every box
    assert boxes(account) == {None: Status.OFFLINE, "sales": Status.ONLINE}


def test_removing_the_last_member_refreshes_the_chat_box_after_commit(
    account, seller, committed, django_capture_on_commit_callbacks
):
    group = committed(lambda: make_group(account=account, key="sales", members=[seller]))
    committed(lambda: make_group(account=account, key="support", members=[seller]))
    with django_capture_on_commit_callbacks(execute=True):
        group_set_members(group=group, member_ids=[])
        before = boxes(account)

    # It should switch the group offline once committed; the seller still counts for support.
    assert before == {None: Status.OFFLINE, "sales": Status.ONLINE, "support": Status.ONLINE}
    assert boxes(account) == {None: Status.OFFLINE, "sales": Status.OFFLINE, "support": Status.ONLINE}
    assert chat_box_snapshot(account_id=account.id)["groups"]["sales"]["reason"] == "no_operator_online"


def test_setting_an_operators_groups_refreshes_the_chat_box_after_commit(
    account, seller, committed, django_capture_on_commit_callbacks
):
    sales = committed(lambda: make_group(account=account, key="sales", members=[seller]))
    support = committed(lambda: make_group(account=account, key="support"))
    with django_capture_on_commit_callbacks(execute=True):
        operator_set_groups(operator=seller, group_ids=[support.id])
        before = boxes(account)

    # It should move the seller's availability from sales to support after commit.
    assert before == {None: Status.OFFLINE, "sales": Status.ONLINE, "support": Status.OFFLINE}
    assert boxes(account) == {None: Status.OFFLINE, "sales": Status.OFFLINE, "support": Status.ONLINE}
    assert sales.id not in set(seller.memberships.values_list("group_id", flat=True))


def test_deleting_a_group_refreshes_the_chat_box_after_commit(
    account, seller, committed, django_capture_on_commit_callbacks
):
    group = committed(lambda: make_group(account=account, key="sales", members=[seller]))
    with django_capture_on_commit_callbacks(execute=True):
        group_delete(group=group)
        before = boxes(account)

    # It should drop the group's box and count the seller for the account box again.
    assert before == {None: Status.OFFLINE, "sales": Status.ONLINE}
    assert boxes(account) == {None: Status.ONLINE}


# --- refused changes write nothing ------------------------------------------------------------


@pytest.fixture
def stranger() -> Operator:
    """An operator of another account."""
    return make_operator(account=make_account(), status=Status.ONLINE)


def test_a_group_with_another_accounts_operator_is_refused(
    account, seller, stranger, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(ValidationError) as error,
    ):
        group_create(account=account, key="sales", name="Sales", member_ids=[seller.id, stranger.id])

    # It should be a field error on members, with no group, no membership and no refresh left behind.
    assert set(error.value.message_dict) == {"members"}
    assert not Group.objects.filter(account=account).exists()
    assert not Membership.objects.exists()
    assert callbacks == []


def test_adding_another_accounts_operator_to_a_group_is_refused(
    account, seller, stranger, django_capture_on_commit_callbacks
):
    group = make_group(account=account, key="sales", members=[seller])
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(ValidationError) as error,
    ):
        group_update(group=group, key="shop", name="Shop", member_ids=[stranger.id])

    group.refresh_from_db()
    # It should be a field error on members, and the key and name sent with it are not written either.
    assert set(error.value.message_dict) == {"members"}
    assert (group.key, group.name) == ("sales", "Sales")
    assert list(group.memberships.values_list("operator_id", flat=True)) == [seller.id]
    assert callbacks == []


def test_setting_members_to_another_accounts_operator_is_refused(account, seller, stranger):
    group = make_group(account=account, key="sales", members=[seller])

    with pytest.raises(ValidationError) as error:
        group_set_members(group=group, member_ids=[stranger.id])

    # It should be a field error, the membership as it was.
    assert set(error.value.message_dict) == {"members"}
    assert list(group.memberships.values_list("operator_id", flat=True)) == [seller.id]


def test_joining_another_accounts_group_is_refused(account, stranger):
    group = make_group(account=account, key="sales")

    with pytest.raises(ValidationError) as error:
        operator_set_groups(operator=stranger, group_ids=[group.id])

    # It should be a field error on groups, reported like an unknown group.
    assert set(error.value.message_dict) == {"groups"}
    assert not Membership.objects.exists()


def test_a_taken_key_is_a_field_error_on_create(account, django_capture_on_commit_callbacks):
    make_group(account=account, key="sales")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ValidationError) as error:
        group_create(account=account, key="sales", name="Again")

    # It should name the key, and leave the one group there was.
    assert set(error.value.message_dict) == {"key"}
    assert list(Group.objects.filter(account=account).values_list("name", flat=True)) == ["Sales"]
    assert callbacks == []


def test_a_taken_key_is_a_field_error_on_update(account):
    make_group(account=account, key="sales")
    support = make_group(account=account, key="support")

    with pytest.raises(ValidationError) as error:
        group_update(group=support, key="sales")

    support.refresh_from_db()
    # It should name the key, and keep the group's own.
    assert set(error.value.message_dict) == {"key"}
    assert support.key == "support"


def test_a_key_taken_in_another_account_is_free(account):
    make_group(account=make_account(), key="sales")

    group = group_create(account=account, key="sales", name="Sales")

    # It should allow it: keys are unique per account.
    assert group.key == "sales"


@pytest.mark.django_db
def test_memberships_left_in_another_account_never_count_for_a_moved_operator(account, seller):
    other = make_account(name="Other shop")
    make_group(account=other, key="support")
    sales = make_group(account=account, key="sales")
    group_set_members(group=sales, member_ids=[seller.id])
    operator_update(operator=seller, actor=None, account=other)  # site staff moves them; the row in sales stays
    operator_set_status(operator=seller, status=Status.ONLINE, source="api")
    presence_heartbeat(operator=seller, conn_id="laptop", device="s:laptop")

    now = timezone.now()
    alone = chat_box_states(account_ids=[other.id], now=now)[other.id]
    together = chat_box_states(account_ids=[account.id, other.id], now=now)[other.id]
    # It should count the moved operator as ungrouped in the new account, however many accounts are computed at once.
    assert alone == together
    assert together.status == Status.ONLINE
