"""The SQL of ``accounts.auth.atoken_lookup`` (a token read from the event
loop), built once at import from the models' metadata: table and column
names, never input (ruff's S608 is off for this module); every value is a
bound parameter."""

from accounts.models import ApiToken, Operator

_TOKEN_FIELDS = [field for field in ApiToken._meta.concrete_fields if field.name in ("id", "operator", "last_used_at")]
# What a reply served on the event loop reads of its author: rule 6 (account,
# role) and the message's operator brief (display name, avatar).
_OPERATOR_FIELDS = [
    field
    for field in Operator._meta.concrete_fields
    if field.name in ("id", "account", "role", "display_name", "avatar", "is_active")
]
TOKEN_NAMES = [field.attname for field in _TOKEN_FIELDS]
OPERATOR_NAMES = [field.attname for field in _OPERATOR_FIELDS]

TOKEN_SQL = (
    "SELECT "
    + ", ".join(
        [f't."{field.column}"' for field in _TOKEN_FIELDS] + [f'o."{field.column}"' for field in _OPERATOR_FIELDS]
    )
    + f' FROM "{ApiToken._meta.db_table}" t JOIN "{Operator._meta.db_table}" o'
    + f' ON o."id" = t."{ApiToken._meta.get_field("operator").column}"'
    + f' WHERE t."{ApiToken._meta.get_field("key_hash").column}" = %s'
    + f' AND o."{Operator._meta.get_field("is_active").column}"'
)
TOKEN_TOUCH_SQL = (
    f'UPDATE "{ApiToken._meta.db_table}" SET "{ApiToken._meta.get_field("last_used_at").column}" = %s WHERE "id" = %s'
)


def token_from_row(row: tuple) -> ApiToken:
    """The token with its operator; only the columns read (any other field is deferred)."""
    token = ApiToken.from_db("default", TOKEN_NAMES, list(row[: len(TOKEN_NAMES)]))
    token.operator = Operator.from_db("default", OPERATOR_NAMES, list(row[len(TOKEN_NAMES) :]))
    return token
