"""The SQL of the writes served on the event loop (``conversations.services``'
``avisitor_message_post``), built once at import from the models' metadata
(table and column names, never input: hence ruff's S608 is off for this
module; every value is a bound parameter), and the model instances made from
the rows it reads.

An instance holds the columns read and nothing else: any other field is
deferred, and reading one would query, which an event loop refuses with
``SynchronousOnlyOperation``: a loud failure, never a silent default.
"""

from dataclasses import dataclass

from accounts.models import Account, Operator
from conversations.models import Conversation, Message, Visitor
from groups.models import Group, Membership

# What a visitor's message changes on its conversation.
VISITOR_MESSAGE_FIELDS = (
    "status",
    "closed_at",
    "waiting_since",
    "waiting_seq",
    "offline_notified",
    "last_seq",
    "last_message_at",
)
# What an operator's reply changes on its conversation.
OPERATOR_MESSAGE_FIELDS = ("assignee", "waiting_since", "waiting_seq", "last_seq", "last_message_at")


def _columns(model: type, names: tuple[str, ...], alias: str) -> tuple[list[str], str]:
    """The attribute names and the SQL of ``names``' columns, in the model's
    field order (the order ``Model.from_db`` takes values in)."""
    fields = [field for field in model._meta.concrete_fields if field.name in names]
    if len(fields) != len(names):
        raise LookupError(f"{model.__name__}: no concrete field among {set(names) - {f.name for f in fields}}")
    return [field.attname for field in fields], ", ".join(f'{alias}."{field.column}"' for field in fields)


_CONVERSATION_NAMES, _CONVERSATION_SQL = _columns(
    Conversation, tuple(field.name for field in Conversation._meta.concrete_fields), "c"
)
_VISITOR_NAMES, _VISITOR_SQL = _columns(Visitor, ("id", "name", "email", "token_hash"), "v")
_GROUP_NAMES, _GROUP_SQL = _columns(Group, ("id", "key"), "g")
_ASSIGNEE_NAMES, _ASSIGNEE_SQL = _columns(Operator, ("id", "display_name", "avatar"), "o")
# What deciding reads of the account: the busy delay, the offline text's words, the bot's mode.
_ACCOUNT_NAMES, _ACCOUNT_SQL = _columns(
    Account, ("id", "busy_after_seconds", "bot_mode", "language", "timezone", "offline_message"), "a"
)


def _table(model: type) -> str:
    return f'"{model._meta.db_table}"'


def _column(model: type, name: str) -> str:
    return f'"{model._meta.get_field(name).column}"'


VISITOR_LOCK_SQL = (
    f"SELECT {_CONVERSATION_SQL}, {_VISITOR_SQL}, {_GROUP_SQL}, {_ASSIGNEE_SQL}, {_ACCOUNT_SQL} "
    f"FROM {_table(Conversation)} c "
    f'JOIN {_table(Visitor)} v ON v."id" = c.{_column(Conversation, "visitor")} '
    f'JOIN {_table(Account)} a ON a."id" = c.{_column(Conversation, "account")} '
    f'LEFT JOIN {_table(Group)} g ON g."id" = c.{_column(Conversation, "group")} '
    f'LEFT JOIN {_table(Operator)} o ON o."id" = c.{_column(Conversation, "assignee")} '
    f'WHERE c."id" = %s AND c.{_column(Conversation, "account")} = %s AND v.{_column(Visitor, "token_hash")} = %s '
    "FOR UPDATE OF c"
)
# An operator's reply: the conversation locked, with the keys of the operator's
# groups in the account (rule 6 for an agent) read in the same statement.
OPERATOR_LOCK_SQL = (
    f"SELECT {_CONVERSATION_SQL}, {_VISITOR_SQL}, {_GROUP_SQL}, {_ASSIGNEE_SQL}, "
    f'ARRAY(SELECT mg."key" FROM {_table(Membership)} mm JOIN {_table(Group)} mg '
    f'ON mg."id" = mm.{_column(Membership, "group")} '
    f"WHERE mm.{_column(Membership, 'operator')} = %s AND mg.{_column(Group, 'account')} = %s) "
    f"FROM {_table(Conversation)} c "
    f'JOIN {_table(Visitor)} v ON v."id" = c.{_column(Conversation, "visitor")} '
    f'LEFT JOIN {_table(Group)} g ON g."id" = c.{_column(Conversation, "group")} '
    f'LEFT JOIN {_table(Operator)} o ON o."id" = c.{_column(Conversation, "assignee")} '
    f'WHERE c."id" = %s AND c.{_column(Conversation, "account")} = %s '
    "FOR UPDATE OF c"
)
_MESSAGE_NAMES = (
    "conversation",
    "seq",
    "author",
    "operator",
    "kind",
    "body",
    "client_id",
    "asks_email",
    "created_at",
)
MESSAGE_ATTNAMES, _ = _columns(Message, _MESSAGE_NAMES, "m")
# Columns in MESSAGE_ATTNAMES' order; one statement for a message alone, one for a message and the offline message.
_MESSAGE_INSERT_COLUMNS = ", ".join(f'"{Message._meta.get_field(name).column}"' for name in MESSAGE_ATTNAMES)
_MESSAGE_ROW = "(" + ", ".join(["%s"] * len(MESSAGE_ATTNAMES)) + ")"
_MESSAGE_INSERT_SQL = {
    count: f"INSERT INTO {_table(Message)} ({_MESSAGE_INSERT_COLUMNS}) "
    f'VALUES {", ".join([_MESSAGE_ROW] * count)} RETURNING "id", "seq"'
    for count in (1, 2)
}


@dataclass(frozen=True)
class Update:
    """A conversation's changed fields and the messages of the same write, stored
    with one statement: ``WITH (UPDATE …) INSERT …`` (PostgreSQL runs a
    data-modifying ``WITH`` exactly once, whether or not the INSERT reads it).
    ``sql[n]`` for ``n`` messages takes the values of ``attnames``, then the
    conversation's id, then the messages' columns; it returns their ``id`` and
    ``seq``."""

    sql: dict[int, str]
    attnames: tuple[str, ...]


def _update(names: tuple[str, ...]) -> Update:
    fields = [Conversation._meta.get_field(name) for name in names]
    assignments = ", ".join(f'"{field.column}" = %s' for field in fields)
    update = f'UPDATE {_table(Conversation)} SET {assignments} WHERE "id" = %s'
    return Update(
        {count: f'WITH "conversation_updated" AS ({update}) {insert}' for count, insert in _MESSAGE_INSERT_SQL.items()},
        tuple(field.attname for field in fields),
    )


VISITOR_MESSAGE_UPDATE = _update(VISITOR_MESSAGE_FIELDS)
OPERATOR_MESSAGE_UPDATE = _update(OPERATOR_MESSAGE_FIELDS)
_MESSAGE_BY_CLIENT_ID_NAMES, _MESSAGE_BY_CLIENT_ID_COLUMNS = _columns(
    Message, tuple(field.name for field in Message._meta.concrete_fields), "m"
)
MESSAGE_BY_CLIENT_ID_SQL = (
    f"SELECT {_MESSAGE_BY_CLIENT_ID_COLUMNS}, {_ASSIGNEE_SQL} FROM {_table(Message)} m "
    f'LEFT JOIN {_table(Operator)} o ON o."id" = m.{_column(Message, "operator")} '
    f"WHERE m.{_column(Message, 'conversation')} = %s AND m.{_column(Message, 'client_id')} = %s"
)


def _instance(model: type, names: list[str], values: tuple | list) -> object:
    """A model instance of the columns read; any other field is deferred (reading
    one would query, which an event loop refuses: a loud failure, never a
    silent default)."""
    return model.from_db("default", names, list(values))


def _split(row: tuple, *widths: int) -> list[list]:
    values, parts = list(row), []
    for width in widths:
        parts.append(values[:width])
        values = values[width:]
    return [*parts, values]


def _conversation_with(conversation_values: list, visitor_values: list, group_values: list, assignee_values: list):
    conversation = _instance(Conversation, _CONVERSATION_NAMES, conversation_values)
    conversation.visitor = _instance(Visitor, _VISITOR_NAMES, visitor_values)
    conversation.group = _instance(Group, _GROUP_NAMES, group_values) if group_values[0] is not None else None
    conversation.assignee = (
        _instance(Operator, _ASSIGNEE_NAMES, assignee_values) if assignee_values[0] is not None else None
    )
    return conversation


def conversation_from_row(row: tuple) -> Conversation:
    """A row of ``VISITOR_LOCK_SQL``: the conversation with its visitor, group, assignee and account."""
    widths = (len(_CONVERSATION_NAMES), len(_VISITOR_NAMES), len(_GROUP_NAMES), len(_ASSIGNEE_NAMES))
    *parts, account_values = _split(row, *widths)
    conversation = _conversation_with(*parts)
    conversation.account = _instance(Account, _ACCOUNT_NAMES, account_values)
    return conversation


def operator_conversation_from_row(row: tuple) -> tuple[Conversation, frozenset[str]]:
    """A row of ``OPERATOR_LOCK_SQL``: the conversation (its account not read:
    no reply needs it) and the keys of the operator's groups."""
    widths = (len(_CONVERSATION_NAMES), len(_VISITOR_NAMES), len(_GROUP_NAMES), len(_ASSIGNEE_NAMES))
    *parts, (group_keys,) = _split(row, *widths)
    return _conversation_with(*parts), frozenset(group_keys)


def message_from_row(row: tuple) -> Message:
    """A row of ``MESSAGE_BY_CLIENT_ID_SQL``: the message, with its operator."""
    message = _instance(Message, _MESSAGE_BY_CLIENT_ID_NAMES, row[: len(_MESSAGE_BY_CLIENT_ID_NAMES)])
    operator = row[len(_MESSAGE_BY_CLIENT_ID_NAMES) :]
    message.operator = _instance(Operator, _ASSIGNEE_NAMES, operator) if operator[0] is not None else None
    return message
