"""Writes to accounts and operators: the one place their rules live.

Every path (dashboard, API, Django admin, CLI) goes through these services:
the owner rules are checked here, and a change the chat box depends on, or an
operator losing access, is announced through ``accounts.signals`` so the
presence layer refreshes the chat box and ends sessions after commit.

Logins end for good: a new password or a deactivation raises the operator's
``credentials_version`` (Django then refuses every older session) and deletes
their API tokens, so reactivating an operator brings none of them back.
"""

from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from accounts.auth import token_device_tag
from accounts.models import Account, ApiToken, Operator
from accounts.signals import account_deleted, busy_delay_shortened, chat_box_inputs_changed, operator_access_ended

ACCOUNT_FIELDS = frozenset(
    {
        "name",
        "timezone",
        "stale_after_seconds",
        "allowed_origins",
        "language",
        "busy_after_seconds",
        "busy_message",
        "offline_message",
        "bot_mode",
    }
)
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
    busy_delay_before = account.busy_after_seconds
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    with transaction.atomic():
        account.save()
        _chat_box_inputs_changed(account.id)
        if account.busy_after_seconds < busy_delay_before:
            busy_delay_shortened.send(sender=Account, account_id=account.id)
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
    device at once; deactivating also ends their sessions and deletes their API
    tokens for good (a reactivated operator logs in again)."""
    allowed = OPERATOR_STAFF_FIELDS if actor is None else OPERATOR_FIELDS
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown operator fields: {sorted(unknown)}")
    # The rules and the effects compare with the stored row, not with ``operator``,
    # which a caller (the admin's ModelForm) may already have changed.
    stored = Operator.objects.filter(id=operator.id).first()
    problems = operator_change_problems(operator=stored or operator, changes=fields, actor=actor)
    if problems:
        raise ValidationError(problems)
    previous = {"account_id": stored.account_id, "is_active": stored.is_active} if stored else {}
    for name, value in fields.items():
        setattr(operator, name, value)
    if "email" in fields:
        operator.email = Operator.objects.normalize_email(operator.email).lower()
    operator.full_clean(exclude=["password"], validate_constraints=False)
    with transaction.atomic():
        # Only the fields asked for: a full save of an operator read before a
        # concurrent password change would write back the old password and
        # credentials version, and so bring the ended sessions back.
        _save_unique(operator, field="email", update_fields=list(fields))
        if previous.get("is_active") and not operator.is_active:
            _credentials_revoke(operator=operator, keep_device=None)
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


def operator_set_password(*, operator: Operator, password: str | None, keep_device: str | None = None) -> Operator:
    """A new password (checked by the password validators; None: password
    login disabled). Every other login of the operator ends: their other
    sessions are refused from now on, their other API tokens are deleted and
    their other devices are logged out (sockets close after commit).

    ``keep_device`` is the device tag that made the change and stays logged in
    (a browser session's: the caller then refreshes that session's hash with
    ``update_session_auth_hash``; or a token's, which is kept). None (site
    staff setting someone's password in the admin): every device is logged out
    and the operator switched offline.
    """
    if password is None:
        operator.set_unusable_password()
    else:
        try:
            validate_password(password, operator)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        operator.set_password(password)
    with transaction.atomic():
        operator.save(update_fields=["password"])
        _credentials_revoke(operator=operator, keep_device=keep_device)
        operator_access_ended.send(
            sender=Operator, operator=operator, switch_offline=keep_device is None, keep_device=keep_device
        )
    return operator


def _credentials_revoke(*, operator: Operator, keep_device: str | None) -> None:
    """End every login of ``operator`` but ``keep_device``'s: a raised
    credentials version makes Django refuse every session made before, and the
    API tokens are deleted (filtering them by ``is_active`` alone would let a
    reactivated operator's old tokens work again). The devices' live
    connections are the presence layer's (``operator_access_ended``)."""
    # Raised in the database, so of two concurrent revocations neither is lost.
    Operator.objects.filter(id=operator.id).update(credentials_version=F("credentials_version") + 1)
    operator.refresh_from_db(fields=["credentials_version"])
    tokens = ApiToken.objects.filter(operator_id=operator.id)
    kept = [token.id for token in tokens.only("id") if token_device_tag(token) == keep_device]
    tokens.exclude(id__in=kept).delete()


@transaction.atomic
def operator_delete(*, operator: Operator, actor: Operator | None = None) -> None:
    """Remove an operator (never the owner; nobody removes themselves); they are
    logged out of every device at once. Their API tokens go with the row, and
    their sessions name an id that is never given again (PostgreSQL sequences,
    SQLite AUTOINCREMENT), so no login of theirs outlives them."""
    if operator.role == Operator.Role.OWNER:
        raise ValidationError(_("The account's owner cannot be removed."))
    if actor is not None and operator.id == actor.id:
        raise ValidationError(_("You cannot remove yourself."))
    account_id = operator.account_id
    operator_access_ended.send(sender=Operator, operator=operator, switch_offline=False)
    operator.delete()
    _chat_box_inputs_changed(account_id)


def _save_unique(instance: models.Model, *, field: str, update_fields: Iterable[str] | None = None) -> None:
    """Save (only ``update_fields`` when given); a unique clash lost to a
    concurrent writer becomes the same field error that validation gives when
    there is no race."""
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
    except IntegrityError:
        raise ValidationError({field: _("This value is already in use.")}) from None
