"""Writes to groups and memberships; each announces the change to the chat box (``accounts.signals``)."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Account, Operator
from accounts.signals import chat_box_inputs_changed
from groups.models import Group, Membership

# Caps on the id lists an admin sends (the API, the dashboard, the Django admin
# all save through these services). More members than this in one group is no
# department, it is a mistake; every membership is a row each chat box
# recompute reads and a checkbox on the group's page.
MAX_MEMBERS = 1000
# The same bound the other way round: the groups of one operator.
MAX_GROUPS_PER_OPERATOR = 1000


def _ids(values: Iterable[int], *, field: str, limit: int) -> set[int]:
    """The distinct ids sent, refused before any query when there are too many."""
    ids = set(values)
    if len(ids) > limit:
        if field == "members":
            message = _("A group can have at most %(limit)d members; %(count)d were given.")
        else:
            message = _("An operator can be in at most %(limit)d groups; %(count)d were given.")
        raise ValidationError({field: message % {"limit": limit, "count": len(ids)}})
    return ids


def _members(*, account: Account, member_ids: Iterable[int]) -> list[Operator]:
    ids = _ids(member_ids, field="members", limit=MAX_MEMBERS)
    operators = list(Operator.objects.filter(account=account, id__in=ids))
    if len(operators) != len(ids):
        # Another account's operator is reported like a missing one: nothing leaks.
        raise ValidationError({"members": _("Unknown operator.")})
    return operators


def _save(group: Group) -> None:
    # A concurrent writer may take the key between the check and the insert.
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError:
        raise ValidationError({"key": _("A group with this key already exists.")}) from None


@transaction.atomic
def group_create(*, account: Account, key: str, name: str, member_ids: Iterable[int] = ()) -> Group:
    member_ids = _ids(member_ids, field="members", limit=MAX_MEMBERS)  # before anything is written
    group = Group(account=account, key=key, name=name)
    # The unique (account, key) constraint is checked here so the error names the field.
    group.full_clean(validate_constraints=False)
    if Group.objects.filter(account=account, key=key).exists():
        raise ValidationError({"key": _("A group with this key already exists.")})
    _save(group)
    group_set_members(group=group, member_ids=member_ids)
    chat_box_inputs_changed.send(sender=Group, account_id=account.id)
    return group


@transaction.atomic
def group_update(
    *, group: Group, key: str | None = None, name: str | None = None, member_ids: Iterable[int] | None = None
) -> Group:
    if member_ids is not None:
        member_ids = _ids(member_ids, field="members", limit=MAX_MEMBERS)  # before anything is written
    if key is not None and key != group.key:
        if Group.objects.filter(account_id=group.account_id, key=key).exclude(id=group.id).exists():
            raise ValidationError({"key": _("A group with this key already exists.")})
        group.key = key
    if name is not None:
        group.name = name
    group.full_clean(validate_constraints=False)
    _save(group)
    if member_ids is not None:
        group_set_members(group=group, member_ids=member_ids)
    chat_box_inputs_changed.send(sender=Group, account_id=group.account_id)
    return group


def group_set_members(*, group: Group, member_ids: Iterable[int]) -> None:
    operators = _members(account=group.account, member_ids=member_ids)
    wanted = {op.id for op in operators}
    Membership.objects.filter(group=group).exclude(operator_id__in=wanted).delete()
    existing = set(Membership.objects.filter(group=group).values_list("operator_id", flat=True))
    Membership.objects.bulk_create(Membership(group=group, operator_id=op_id) for op_id in wanted - existing)
    chat_box_inputs_changed.send(sender=Group, account_id=group.account_id)


@transaction.atomic
def operator_set_groups(*, operator: Operator, group_ids: Iterable[int]) -> None:
    ids = _ids(group_ids, field="groups", limit=MAX_GROUPS_PER_OPERATOR)
    groups = list(Group.objects.filter(account_id=operator.account_id, id__in=ids))
    if len(groups) != len(ids):
        raise ValidationError({"groups": _("Unknown group.")})
    Membership.objects.filter(operator=operator).exclude(group_id__in=ids).delete()
    existing = set(Membership.objects.filter(operator=operator).values_list("group_id", flat=True))
    Membership.objects.bulk_create(Membership(group_id=gid, operator=operator) for gid in ids - existing)
    chat_box_inputs_changed.send(sender=Group, account_id=operator.account_id)


@transaction.atomic
def group_delete(*, group: Group) -> None:
    account_id = group.account_id
    group.delete()
    chat_box_inputs_changed.send(sender=Group, account_id=account_id)
