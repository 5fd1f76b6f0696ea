"""Writes to accounts and operators: the one place their rules live.

Every path (dashboard, API, Django admin, CLI) goes through these services:
the owner rules are checked here, and a change the chat box depends on, or an
operator losing access, is announced through ``accounts.signals`` so the
presence layer refreshes the chat box and ends sessions after commit.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _

from accounts.models import Account, Operator
from accounts.signals import account_deleted, chat_box_inputs_changed, operator_access_ended

ACCOUNT_FIELDS = frozenset({"name", "timezone", "stale_after_seconds", "allowed_origins", "language"})
# What a dashboard or API caller may change; the Django admin (site staff) may
# also move an operator to another account and set the site-staff flags.
OPERATOR_FIELDS = frozenset({"display_name", "role", "email", "language", "avatar", "is_active"})
OPERATOR_STAFF_FIELDS = OPERATOR_FIELDS | {"account", "is_staff", "is_superuser"}


def _chat_box_inputs_changed(account_id: int | None) -> None:
    if account_id is not None:
        chat_box_inputs_changed.send(sender=Account, account_id=account_id)


@transaction.atomic
def account_create(*, name: str, email: str, password: str | None, display_name: str = "") -> tuple[Account, Operator]:
    """A new account with its owner operator."""
    account = Account(name=name)
    account.full_clean()
    account.save()
    owner = operator_create(
        account=account, email=email, display_name=display_name or name, password=password, role=Operator.Role.OWNER
    )
    _chat_box_inputs_changed(account.id)
    return account, owner


def account_update(*, account: Account, **fields: object) -> Account:
    unknown = set(fields) - ACCOUNT_FIELDS
    if unknown:
        raise ValueError(f"unknown account fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    with transaction.atomic():
        account.save()
        _chat_box_inputs_changed(account.id)
    return account


@transaction.atomic
def account_delete(*, account: Account) -> None:
    """Delete an account with everything it owns; its operators are logged out
    of every device and the presence store forgets it."""
    for operator in account.operators.all():
        operator_access_ended.send(sender=Operator, operator=operator, switch_offline=False)
    account_id = account.id
    account.delete()
    account_deleted.send(sender=Account, account_id=account_id)


def operator_change_problems(
    *, operator: Operator, changes: dict[str, object], actor: Operator | None
) -> dict[str, list[str]]:
    """The owner rules for a change of ``operator`` by ``actor`` (None: site
    staff in the Django admin): the owner stays the owner, active and in their
    account; nobody else becomes one; nobody deactivates themselves; only the
    owner changes the owner's e-mail."""
    problems: dict[str, list[str]] = {}
    is_owner = operator.role == Operator.Role.OWNER
    role = changes.get("role")
    if role is not None and role != operator.role and Operator.Role.OWNER in (role, operator.role):
        problems["role"] = [_("The owner role cannot be given or taken away.")]
    if changes.get("is_active") is False and (is_owner or (actor is not None and operator.id == actor.id)):
        problems["is_active"] = [_("The owner and you yourself stay active.")]
    new_email = changes.get("email")
    changed_email = isinstance(new_email, str) and new_email.strip().lower() != operator.email
    if changed_email and is_owner and actor is not None and actor.id != operator.id:
        problems["email"] = [_("Only the owner changes the owner's e-mail.")]
    account = changes.get("account")
    if "account" in changes and is_owner and getattr(account, "id", account) != operator.account_id:
        problems["account"] = [_("The owner stays with their account.")]
    return problems


def operator_create(
    *,
    account: Account | None,
    email: str,
    display_name: str,
    password: str | None = None,
    role: str = Operator.Role.AGENT,
) -> Operator:
    """A new operator, offline: creating or logging in never switches anyone
    online. An account has one owner, made with it (``account`` None: site
    staff, who manage the installation through the admin)."""
    if role == Operator.Role.OWNER and (
        account is None or Operator.objects.filter(account=account, role=Operator.Role.OWNER).exists()
    ):
        raise ValidationError({"role": _("The owner role cannot be given or taken away.")})
    email = Operator.objects.normalize_email(email).lower()
    operator = Operator(account=account, email=email, display_name=display_name, role=role)
    operator.set_unusable_password()
    operator.full_clean(exclude=["password"], validate_constraints=False)
    if password:
        try:
            validate_password(password, operator)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        operator.set_password(password)
    _save_unique(operator, field="email")
    return operator


def operator_update(*, operator: Operator, actor: Operator | None = None, **fields: object) -> Operator:
    """Change an operator. ``actor`` is who asks (None: site staff in the Django
    admin, who may also change ``account``, ``is_staff`` and ``is_superuser``).
    Deactivating (or moving to another account) logs the operator out of every
    device at once."""
    allowed = OPERATOR_STAFF_FIELDS if actor is None else OPERATOR_FIELDS
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown operator fields: {sorted(unknown)}")
    problems = operator_change_problems(operator=operator, changes=fields, actor=actor)
    if problems:
        raise ValidationError(problems)
    previous = Operator.objects.filter(id=operator.id).values("account_id", "is_active").first() or {}
    for name, value in fields.items():
        setattr(operator, name, value)
    if "email" in fields:
        operator.email = Operator.objects.normalize_email(operator.email).lower()
    operator.full_clean(exclude=["password"], validate_constraints=False)
    with transaction.atomic():
        _save_unique(operator, field="email")
        moved = previous.get("account_id") != operator.account_id
        if moved and previous.get("account_id") is not None:
            # Their presence is kept per account: end it where it was.
            former = Operator(id=operator.id, account_id=previous["account_id"], status=operator.status)
            operator_access_ended.send(sender=Operator, operator=former, switch_offline=True)
            operator.status = former.status
            _chat_box_inputs_changed(previous["account_id"])
        elif previous.get("is_active") and not operator.is_active:
            operator_access_ended.send(sender=Operator, operator=operator, switch_offline=True)
        if moved or previous.get("is_active") != operator.is_active:
            _chat_box_inputs_changed(operator.account_id)
    return operator


def operator_set_password(*, operator: Operator, password: str) -> Operator:
    """A new password (checked by the password validators)."""
    try:
        validate_password(password, operator)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    operator.set_password(password)
    operator.save(update_fields=["password"])
    return operator


@transaction.atomic
def operator_delete(*, operator: Operator, actor: Operator | None = None) -> None:
    """Remove an operator (never the owner; nobody removes themselves); they are
    logged out of every device at once."""
    if operator.role == Operator.Role.OWNER:
        raise ValidationError(_("The account's owner cannot be removed."))
    if actor is not None and operator.id == actor.id:
        raise ValidationError(_("You cannot remove yourself."))
    account_id = operator.account_id
    operator_access_ended.send(sender=Operator, operator=operator, switch_offline=False)
    operator.delete()
    _chat_box_inputs_changed(account_id)


def _save_unique(instance: models.Model, *, field: str) -> None:
    """Save; a unique clash lost to a concurrent writer becomes the same field
    error that validation gives when there is no race."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ValidationError({field: _("This value is already in use.")}) from None
