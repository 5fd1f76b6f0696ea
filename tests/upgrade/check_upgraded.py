"""Check a migrated release database against the facts its fixture was made with.

Run by ``test_release_upgrade.py`` in a subprocess, with DATABASE_URL pointing
at the upgraded database and DJANGO_SETTINGS_MODULE=chatstatus.settings::

    python -m tests.upgrade.check_upgraded tests/upgrade/fixtures/release_d0d6ef1.json

Prints one line per problem and exits 1 if there is any; prints a summary and
exits 0 otherwise. Where each model lives now is said once, in ``MODELS`` and
``TOKEN_LOOKUP`` below; the facts name models by their release names.
"""

import hashlib
import importlib
import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatstatus.settings")
django.setup()

from django.apps import apps  # noqa: E402
from django.contrib.admin.models import LogEntry  # noqa: E402
from django.contrib.auth import authenticate, get_user_model  # noqa: E402
from django.contrib.auth.models import Group as AuthGroup  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import transaction  # noqa: E402

# Release model name (ContentType.model) → the model's label in the code under test.
MODELS = {
    "account": "accounts.Account",
    "operator": "accounts.Operator",
    "apitoken": "accounts.ApiToken",
    "statusevent": "presence.StatusEvent",
    "chatboxevent": "presence.ChatBoxEvent",
    "group": "groups.Group",
    "membership": "groups.Membership",
    "openinghours": "hours.OpeningHours",
}
# The release's offline messages are conversations now (one each).
CONVERSATION = "conversations.Conversation"
# "module:function" resolving a plaintext API token to its ApiToken (or None).
TOKEN_LOOKUP = "accounts.auth:token_lookup"

problems: list[str] = []
checked = 0


def check(ok: bool, message: str) -> None:
    global checked
    checked += 1
    if not ok:
        problems.append(message)


def model(name: str):
    return apps.get_model(MODELS[name])


def token_lookup():
    module_name, _sep, function = TOKEN_LOOKUP.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError):
        token_model = model("apitoken")

        def by_hash(key: str):
            # The stored form: sha256 hex of the key (ApiToken.key_hash).
            digest = hashlib.sha256(key.encode()).hexdigest()
            return token_model.objects.select_related("operator").filter(key_hash=digest).first()

        return by_hash


def content_type_of(name: str) -> ContentType | None:
    """The stored content type of a model (``get_for_model`` would create a missing one)."""
    meta = model(name)._meta
    content_type = ContentType.objects.filter(app_label=meta.app_label, model=meta.model_name).first()
    check(content_type is not None, f"no content type for {meta.label}")
    return content_type


def perm_name(fact: dict) -> str:
    """``app_label.codename`` of a release permission, the app label read from
    the content type of the model where it lives now."""
    content_type = content_type_of(fact["model"])
    app_label = content_type.app_label if content_type else model(fact["model"])._meta.app_label
    return f"{app_label}.{fact['codename']}"


def perm_row(fact: dict) -> Permission | None:
    return Permission.objects.filter(content_type=content_type_of(fact["model"]), codename=fact["codename"]).first()


def find(natural: dict):
    """An object named by the facts' natural key."""
    match natural["model"]:
        case "operator":
            return model("operator").objects.filter(email=natural["email"]).first()
        case "group":
            return model("group").objects.filter(account__name=natural["account"], key=natural["key"]).first()
        case "account":
            return model("account").objects.filter(name=natural["name"]).first()
    raise ValueError(natural)


def check_accounts(facts: dict) -> None:
    Account = model("account")
    check(Account.objects.count() == facts["counts"]["accounts"], "number of accounts")
    for fact in facts["accounts"]:
        account = Account.objects.filter(widget_key=fact["widget_key"]).first()
        if account is None:
            check(False, f"account {fact['name']}: no account with widget key {fact['widget_key']}")
            continue
        for field in ("name", "timezone", "language", "stale_after_seconds", "allowed_origins"):
            check(
                getattr(account, field) == fact[field],
                f"account {fact['name']}: {field} is {getattr(account, field)!r}, expected {fact[field]!r}",
            )


def check_operators(facts: dict) -> None:
    Operator = model("operator")
    check(get_user_model() is Operator, f"AUTH_USER_MODEL is {get_user_model()._meta.label}, not {MODELS['operator']}")
    check(Operator.objects.count() == facts["counts"]["operators"], "number of operators")
    for fact in facts["operators"]:
        operator = Operator.objects.select_related("account").filter(email=fact["email"]).first()
        if operator is None:
            check(False, f"operator {fact['email']} is missing")
            continue
        account_name = operator.account.name if operator.account else None
        check(account_name == fact["account"], f"operator {fact['email']}: account {account_name!r}")
        for field in ("display_name", "role", "is_active", "is_staff", "is_superuser", "status"):
            check(
                getattr(operator, field) == fact[field],
                f"operator {fact['email']}: {field} is {getattr(operator, field)!r}, expected {fact[field]!r}",
            )
        check(
            operator.password.startswith(fact["password_algorithm"] + "$"),
            f"operator {fact['email']}: password hash is no longer {fact['password_algorithm']}",
        )
        user = authenticate(email=fact["email"], password=fact["password"])
        if fact["is_active"]:
            check(
                user is not None and user.pk == operator.pk,
                f"operator {fact['email']}: cannot log in with their password",
            )
        else:
            check(user is None, f"operator {fact['email']}: deactivated, yet authenticate() lets them in")
            check(
                operator.check_password(fact["password"]),
                f"operator {fact['email']}: the password of the deactivated operator was lost",
            )


def check_tokens(facts: dict) -> None:
    check(model("apitoken").objects.count() == facts["counts"]["api_tokens"], "number of API tokens")
    lookup = token_lookup()
    for fact in facts["tokens"]:
        token = lookup(fact["key"])
        if token is None:
            check(False, f"API token {fact['device']!r} of {fact['operator']} does not resolve")
            continue
        check(token.operator.email == fact["operator"], f"API token {fact['device']!r}: operator {token.operator}")
        check(token.device == fact["device"], f"API token of {fact['operator']}: device {token.device!r}")
        check(token.is_mobile == fact["is_mobile"], f"API token {fact['device']!r}: is_mobile {token.is_mobile}")


def check_groups(facts: dict) -> None:
    Group = model("group")
    check(Group.objects.count() == facts["counts"]["groups"], "number of groups")
    check(model("membership").objects.count() == facts["counts"]["memberships"], "number of memberships")
    for fact in facts["groups"]:
        group = Group.objects.filter(account__name=fact["account"], key=fact["key"]).first()
        if group is None:
            check(False, f"group {fact['account']}/{fact['key']} is missing")
            continue
        check(group.name == fact["name"], f"group {fact['key']}: name {group.name!r}")
        members = sorted(group.members.values_list("email", flat=True))
        check(members == fact["members"], f"group {fact['key']}: members {members}, expected {fact['members']}")


def check_schedules(facts: dict) -> None:
    OpeningHours = model("openinghours")
    check(OpeningHours.objects.count() == facts["counts"]["opening_hours"], "number of opening hours")
    for fact in facts["schedules"]:
        hours = OpeningHours.objects.filter(
            account__name=fact["account"], **({"group__key": fact["group"]} if fact["group"] else {"group": None})
        ).first()
        name = f"opening hours of {fact['account']}/{fact['group'] or '-'}"
        if hours is None:
            check(False, f"{name} are missing")
            continue
        for field in ("enabled", "timezone", "weekly", "exceptions"):
            check(getattr(hours, field) == fact[field], f"{name}: {field} is {getattr(hours, field)!r}")


def check_events(facts: dict) -> None:
    StatusEvent, ChatBoxEvent = model("statusevent"), model("chatboxevent")
    Conversation = apps.get_model(CONVERSATION)
    check(StatusEvent.objects.count() == facts["counts"]["status_events"], "number of status events")
    check(ChatBoxEvent.objects.count() == facts["counts"]["chat_box_events"], "number of chat box events")
    check(Conversation.objects.count() == facts["counts"]["offline_messages"], "number of offline messages")
    status_events = [
        {"account": e.account.name, "operator": e.operator.email, "old": e.old, "new": e.new, "source": e.source}
        for e in StatusEvent.objects.select_related("account", "operator").order_by("at", "id")
    ]
    check(status_events == facts["status_events"], f"status events differ: {status_events}")
    chat_box_events = [
        {"account": e.account.name, "group_key": e.group_key, "old": e.old, "new": e.new, "reason": e.reason}
        for e in ChatBoxEvent.objects.select_related("account").order_by("at", "id")
    ]
    check(chat_box_events == facts["chat_box_events"], f"chat box events differ: {chat_box_events}")
    messages = [
        {
            "account": c.account.name,
            "group": c.group.key if c.group else None,
            "email": c.visitor.email,
            "message": "".join(c.messages.order_by("seq").values_list("body", flat=True)),
            "handled": c.status == "closed",
        }
        for c in Conversation.objects.select_related("account", "group", "visitor").order_by("created_at", "id")
    ]
    check(messages == facts["offline_messages"], f"offline messages differ: {messages}")


def check_permissions(facts: dict) -> None:
    Operator = model("operator")
    for fact in facts["auth_groups"]:
        group = AuthGroup.objects.filter(name=fact["name"]).first()
        if group is None:
            check(False, f"auth group {fact['name']} is missing")
            continue
        for perm in fact["permissions"]:
            check(
                group.permissions.filter(pk=getattr(perm_row(perm), "pk", None)).exists(),
                f"auth group {fact['name']}: lost {perm_name(perm)}",
            )
    group_perms = {perm_name(p) for g in facts["auth_groups"] for p in g["permissions"]}
    for fact in facts["staff"]:
        user = Operator.objects.filter(email=fact["email"]).first()
        if user is None:
            check(False, f"staff {fact['email']} is missing")
            continue
        check(user.account_id is None, f"staff {fact['email']} now belongs to an account")
        groups = sorted(user.groups.values_list("name", flat=True))
        check(groups == fact["groups"], f"staff {fact['email']}: auth groups {groups}")
        direct = {perm_name(p) for p in fact["user_permissions"]}
        for perm in fact["user_permissions"]:
            row = perm_row(perm)
            check(row is not None, f"permission {perm_name(perm)} is missing (its content type moved without it?)")
            check(
                user.user_permissions.filter(pk=getattr(row, "pk", None)).exists(),
                f"staff {fact['email']}: lost the direct permission {perm_name(perm)}",
            )
        for name in sorted(direct | group_perms):
            check(user.has_perm(name), f"staff {fact['email']}: has_perm({name!r}) is False")
        if not fact["is_superuser"]:
            # For a non-superuser the backend's answer must be exactly what was granted.
            user = Operator.objects.get(pk=user.pk)  # fresh: no permission cache
            check(
                user.get_user_permissions() == direct,
                f"staff {fact['email']}: user permissions {sorted(user.get_user_permissions())}",
            )
            check(
                user.get_group_permissions() == group_perms,
                f"staff {fact['email']}: group permissions {sorted(user.get_group_permissions())}",
            )
            not_granted = perm_name({"model": "account", "codename": "delete_account"})
            check(not user.has_perm(not_granted), f"staff {fact['email']}: has {not_granted} never given")


def check_admin_log(facts: dict) -> None:
    check(LogEntry.objects.count() == facts["counts"]["admin_log_entries"], "number of admin log entries")
    entries = list(LogEntry.objects.select_related("user", "content_type").order_by("action_time", "id"))
    check(len(entries) == len(facts["admin_log_entries"]), "admin log entries")
    for entry, fact in zip(entries, facts["admin_log_entries"], strict=False):
        name = f"admin log entry {fact['object_repr']!r}"
        check(entry.user.email == fact["user"], f"{name}: user {entry.user.email}")
        check(entry.action_flag == fact["action_flag"], f"{name}: action flag {entry.action_flag}")
        check(entry.object_repr == fact["object_repr"], f"{name}: object_repr {entry.object_repr!r}")
        check(entry.change_message == fact["change_message"], f"{name}: change message {entry.change_message!r}")
        expected_model = model(fact["object"]["model"])
        check(
            entry.content_type.model_class() is expected_model,
            f"{name}: content type {entry.content_type.app_label}.{entry.content_type.model} "
            f"is not {expected_model._meta.label}",
        )
        try:
            edited = entry.get_edited_object()
        except Exception as exc:  # noqa: BLE001 (reported, whatever it is)
            check(False, f"{name}: get_edited_object() failed: {exc!r}")
            continue
        target = find(fact["object"])
        check(
            target is not None and type(edited) is type(target) and edited.pk == target.pk,
            f"{name}: get_edited_object() is {edited!r}, expected {target!r}",
        )


def check_content_types() -> None:
    # A moved model whose content type was re-created instead of renamed leaves the old row
    # behind: its permissions and log entries would point at nothing.
    for content_type in ContentType.objects.order_by("app_label", "model"):
        check(
            content_type.model_class() is not None,
            f"stale content type {content_type.app_label}.{content_type.model} (id {content_type.pk})",
        )
    for name in MODELS:
        content_type_of(name)


class Rollback(Exception):
    pass


def main(path: str) -> int:
    with open(path, encoding="utf-8") as file:
        facts = json.load(file)
    # Checking writes nothing: whatever a step might save (a rehashed password...) is rolled back.
    try:
        with transaction.atomic():
            for step in (
                check_accounts,
                check_operators,
                check_tokens,
                check_groups,
                check_schedules,
                check_events,
                check_permissions,
                check_admin_log,
            ):
                step(facts)
            check_content_types()
            raise Rollback
    except Rollback:
        pass
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"{checked} checks, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
