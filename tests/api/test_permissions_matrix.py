"""Who gets which answer from every endpoint and method: one table, one case per cell.

Roles: the account's owner, an admin, an agent, an anonymous caller, and a
"stranger" (the owner of another account). Object endpoints name an object of
the first account, so for the stranger it is another account's object: 404,
never 403. Every authenticated role is tried with a token and with a session.
"""

import itertools
from dataclasses import dataclass, field

import pytest

from api import urls as api_urls
from conversations.faq.services import faq_entry_create
from tests.api.conftest import JsonClient, session_client, token_client
from tests.conversations.conftest import visitor_writes
from tests.factories import make_group, make_operator, owner_of

HOURS = {"enabled": True, "timezone": "Europe/Prague", "weekly": {"monday": [{"from": "09:00", "to": "17:00"}]}}


def everyone(code: int, *, anonymous: int = 401) -> dict[str, int]:
    return {"owner": code, "admin": code, "agent": code, "anonymous": anonymous, "stranger": code}


def admins(code: int) -> dict[str, int]:
    """Admin-only endpoint acting on the caller's own account."""
    return {"owner": code, "admin": code, "agent": 403, "anonymous": 401, "stranger": code}


def admins_on_object(code: int) -> dict[str, int]:
    """Admin-only endpoint on an object of the first account."""
    return {"owner": code, "admin": code, "agent": 403, "anonymous": 401, "stranger": 404}


def everyone_on_object(code: int) -> dict[str, int]:
    """Endpoint for every operator on an object of the first account (the agent is in no group: rule 6 lets
    them open every conversation)."""
    return {"owner": code, "admin": code, "agent": code, "anonymous": 401, "stranger": 404}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expected: dict[str, int]
    body: dict = field(default_factory=dict)


TABLE = [
    Row("get", "/api/schema/", everyone(200, anonymous=200)),
    Row("post", "/api/v1/auth/token", everyone(400, anonymous=400)),  # public: an empty body is merely invalid
    Row("post", "/api/v1/auth/logout", everyone(204)),
    Row("get", "/api/v1/me", everyone(200)),
    Row("get", "/api/v1/me/status", everyone(200)),
    Row("put", "/api/v1/me/status", everyone(200), {"status": "online"}),
    Row("post", "/api/v1/me/heartbeat", everyone(200), {"device": "phone"}),
    Row("get", "/api/v1/chat-box", everyone(200)),
    Row("get", "/api/v1/account", admins(200)),
    Row("patch", "/api/v1/account", admins(200), {"name": "Renamed"}),
    Row("get", "/api/v1/operators", admins(200)),
    Row("post", "/api/v1/operators", admins(201), {"email": "new@example.com", "display_name": "New"}),
    Row("get", "/api/v1/operators/{operator}", admins_on_object(200)),
    Row("patch", "/api/v1/operators/{operator}", admins_on_object(200), {"display_name": "Renamed"}),
    Row("delete", "/api/v1/operators/{operator}", admins_on_object(204)),
    Row("put", "/api/v1/operators/{operator}/status", admins_on_object(200), {"status": "online"}),
    Row("get", "/api/v1/groups", admins(200)),
    Row("post", "/api/v1/groups", admins(201), {"key": "new-group", "name": "New"}),
    Row("get", "/api/v1/groups/{group}", admins_on_object(200)),
    Row("patch", "/api/v1/groups/{group}", admins_on_object(200), {"name": "Renamed"}),
    Row("delete", "/api/v1/groups/{group}", admins_on_object(204)),
    Row("get", "/api/v1/opening-hours", admins(200)),
    Row("put", "/api/v1/opening-hours", admins(200), HOURS),
    Row("get", "/api/v1/groups/{group}/opening-hours", admins_on_object(200)),
    Row("put", "/api/v1/groups/{group}/opening-hours", admins_on_object(200), HOURS),
    Row("get", "/api/v1/status-events", admins(200)),
    Row("get", "/api/v1/conversations", everyone(200)),
    Row("get", "/api/v1/conversations/{conversation}", everyone_on_object(200)),
    Row(
        "post",
        "/api/v1/conversations/{conversation}/messages",
        everyone_on_object(201),
        {"body": "Hi", "client_id": "m1"},
    ),
    Row("post", "/api/v1/conversations/{conversation}/assign", everyone_on_object(200), {"operator": None}),
    Row("post", "/api/v1/conversations/{conversation}/close", everyone_on_object(200)),
    Row("get", "/api/v1/faq", everyone(200)),
    Row("post", "/api/v1/faq", admins(201), {"question": "Hours?", "answer": "9 to 5.", "language": "en"}),
    Row("get", "/api/v1/faq/{faq}", everyone_on_object(200)),
    Row("patch", "/api/v1/faq/{faq}", admins_on_object(200), {"enabled": False}),
    Row("delete", "/api/v1/faq/{faq}", admins_on_object(204)),
    Row("post", "/api/v1/faq/match", everyone(200), {"question": "opening hours?"}),
]

# The table's placeholders and the path parameters they stand for (``<str:NAME>``
# in the URL patterns, ``{NAME}`` in the OpenAPI document).
PARAMETERS = {
    "{operator}": "operator_id",
    "{group}": "key",
    "{conversation}": "conversation_id",
    "{faq}": "entry_id",
}
# Requests that carry no body (whatever is sent is ignored).
NO_BODY = {"/api/v1/auth/logout", "/api/v1/conversations/{conversation}/close"}


def schema_path(path: str) -> str:
    """A path of the table as the OpenAPI document spells it."""
    for placeholder, name in PARAMETERS.items():
        path = path.replace(placeholder, "{" + name + "}")
    return path


ROLES = ["owner", "admin", "agent", "anonymous", "stranger"]


def cases():
    for row, role in itertools.product(TABLE, ROLES):
        for via in ["none"] if role == "anonymous" else ["token", "session"]:
            yield pytest.param(row, role, via, id=f"{row.method.upper()} {row.path} as {role} via {via}")


def test_the_table_covers_every_api_route():
    routes = {str(pattern.pattern) for pattern in api_urls.urlpatterns} - {"docs/"}
    tabled = set()
    for row in TABLE:
        path = row.path.removeprefix("/api/")
        for placeholder, name in PARAMETERS.items():
            path = path.replace(placeholder, f"<str:{name}>")
        tabled.add(path)
    assert routes == tabled


@pytest.mark.parametrize(("row", "role", "via"), list(cases()))
def test_each_role_gets_the_expected_status(account, account_admin_agent, other_account, row, role, via):
    owner, admin, agent = account_admin_agent
    target = make_operator(account=account, name="Target")
    group = make_group(account=account, key="sales", members=[target])
    conversation = visitor_writes(account, "Hello?", client_id="matrix").conversation
    entry = faq_entry_create(account=account, question="Opening hours?", answer="9 to 5.", language="en")
    caller = {"owner": owner, "admin": admin, "agent": agent, "stranger": owner_of(other_account)}.get(role)
    client = {"token": token_client, "session": session_client}[via](caller) if caller else JsonClient()
    path = row.path.format(operator=target.id, group=group.key, conversation=conversation.id, faq=entry.id)
    response = getattr(client, row.method)(path, row.body)
    assert response.status_code == row.expected[role], response.content[:300]


@pytest.fixture
def account_admin_agent(account):
    return owner_of(account), make_operator(account=account, role="admin"), make_operator(account=account)
