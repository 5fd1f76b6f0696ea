"""Small builders for test data; every call makes what it says, nothing hidden."""

import itertools

from accounts.auth import token_create
from accounts.models import Account, Operator, Status
from accounts.services import account_create, operator_create
from groups.models import Group
from groups.services import group_create

_seq = itertools.count(1)
PASSWORD = "s3cret-pass-word"


def make_account(*, name: str | None = None, **fields) -> Account:
    n = next(_seq)
    account, _owner = account_create(name=name or f"Account {n}", email=f"owner{n}@example.com", password=PASSWORD)
    for key, value in fields.items():
        setattr(account, key, value)
    if fields:
        account.save()
    return account


def owner_of(account: Account) -> Operator:
    return account.operators.get(role=Operator.Role.OWNER)


def make_operator(
    *, account: Account, role: str = Operator.Role.AGENT, status: str = Status.OFFLINE, name: str | None = None
) -> Operator:
    n = next(_seq)
    operator = operator_create(
        account=account, email=f"op{n}@example.com", display_name=name or f"Operator {n}", password=PASSWORD, role=role
    )
    if status != Status.OFFLINE:
        Operator.objects.filter(id=operator.id).update(status=status)
        operator.status = status
    return operator


def make_group(*, account: Account, key: str, members: list[Operator] = ()) -> Group:
    return group_create(account=account, key=key, name=key.title(), member_ids=[m.id for m in members])


def make_token(operator: Operator, *, device: str = "phone", is_mobile: bool = False) -> str:
    key, _token = token_create(operator=operator, device=device, is_mobile=is_mobile)
    return key
