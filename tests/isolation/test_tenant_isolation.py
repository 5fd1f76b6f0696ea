"""Account A never reads or changes anything of account B, through any route.

The walk is driven by the routes themselves: every URL pattern Django resolves
(includes followed) and every WebSocket route of the ASGI router must have an
entry in this file's tables, or ``test_every_*_route_has_an_isolation_case``
fails; a new endpoint needs an isolation case before the suite passes again.

With a session (and, for the API, a token) of A's owner and of A's agent, every
case tries B's object ids and keys in paths and bodies and then checks:

* a path naming B's object is refused: 404 for an admin of A (never 403, which
  would tell that the object exists), 403 or 404 for an agent, whose role is
  checked first;
* no answer of A carries B's data: none of B's unique strings, no link to or
  id of B's operators, groups or account;
* B is unchanged: every row B owns or that points at B, and B's presence and
  snapshot in the store, read back after each request;
* nothing A does publishes to one of B's channel-layer groups.

The sockets: A's operator socket joins only A's groups, and hears nothing sent
to any of B's groups (forged or from a real change in B), while B's socket hears
it; the same for A's widget socket.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import ApiToken, Operator, Status
from chatstatus.asgi import router
from hours.models import OpeningHours
from presence import events, services
from presence.consumers import CLOSE_LOGGED_OUT
from presence.models import ChatBoxEvent, Source, StatusEvent
from presence.store import ALL_DEVICES, get_store
from tests.api.conftest import JsonClient
from tests.isolation.conftest import Tenant, World, build_world, tenant_state, world_cleanup
from tests.presence.conftest import Socket, committed_db, session_headers, token_headers
from widget.consumers import CLOSE_NOT_FOUND

HOURS = {"enabled": True, "timezone": "Europe/Prague", "weekly": {"monday": [{"from": "09:00", "to": "17:00"}]}}
QUIET = 0.3  # how long a socket must stay silent to count as hearing nothing (after a control message arrived)

# --- the routes, from the resolver and the ASGI router ----------------------------------


@dataclass(frozen=True)
class Route:
    route: str
    namespace: str | None
    name: str | None


def http_routes(patterns: list | None = None, prefix: str = "", namespace: str | None = None) -> list[Route]:
    """Every URL pattern Django routes, includes followed, with its full route string."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            found += http_routes(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
        else:
            assert isinstance(pattern, URLPattern)
            found.append(Route(prefix + str(pattern.pattern), namespace, pattern.name))
    return found


def websocket_routes(app: URLRouter | None = None, prefix: str = "") -> set[str]:
    """Every WebSocket route of the ASGI router, nested routers and middleware unwrapped."""
    app = router.application_mapping["websocket"] if app is None else app
    found = set()
    for route in app.routes:
        inner = route.callback
        while not isinstance(inner, URLRouter) and hasattr(inner, "inner"):
            inner = inner.inner
        if isinstance(inner, URLRouter):
            found |= websocket_routes(inner, prefix + str(route.pattern))
        else:
            found.add(prefix + str(route.pattern))
    return found


# --- the cases ------------------------------------------------------------------------------


Body = dict | Callable[[dict], dict] | None


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # filled from ``World.ids()``
    body: Body = None
    refused: bool = False  # names B's object: must be refused
    expect: tuple[int, ...] = ()  # public routes: the answers they may give
    visitor: str | None = None  # the ``World.ids()`` key of the visitor token sent (X-Visitor-Token)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def get(path: str, **kwargs) -> Probe:
    return Probe("get", path, **kwargs)


def post(path: str, body: Body = None, **kwargs) -> Probe:
    return Probe("post", path, body, **kwargs)


def put(path: str, body: Body = None, **kwargs) -> Probe:
    return Probe("put", path, body, **kwargs)


def patch(path: str, body: Body = None, **kwargs) -> Probe:
    return Probe("patch", path, body, **kwargs)


def delete(path: str, **kwargs) -> Probe:
    return Probe("delete", path, **kwargs)


# Dashboard pages (a session of A). Keys are the resolver's route strings.
DASHBOARD: dict[str, list[Probe]] = {
    "": [get("/")],
    "team.json": [get("/team.json")],
    "status/": [
        post("/status/", lambda i: {"status": "offline", "operator": i["b_agent"], "operator_id": i["b_agent"]})
    ],
    "operators/": [get("/operators/")],
    "operators/new/": [
        get("/operators/new/"),
        post(
            "/operators/new/",
            lambda i: {
                "display_name": "Newbie",
                "email": "newbie@alphaqua.example",
                "password": "long-enough-password",
                "role": "agent",
                "groups": [i["b_group"]],
                "account": i["b_account"],
            },
        ),
    ],
    "operators/<int:operator_id>/": [
        get("/operators/{b_agent}/", refused=True),
        post("/operators/{b_agent}/", {"display_name": "Hijacked", "role": "admin"}, refused=True),
        post(
            "/operators/{a_agent}/",
            lambda i: {"display_name": "Xaver Alphaqua", "role": "agent", "is_active": "on", "groups": [i["b_group"]]},
        ),
    ],
    "operators/<int:operator_id>/offline/": [post("/operators/{b_agent}/offline/", refused=True)],
    "groups/": [get("/groups/")],
    "groups/new/": [
        get("/groups/new/"),
        post("/groups/new/", lambda i: {"name": "Stolen", "key": "stolen", "members": [i["b_agent"]]}),
    ],
    "groups/<int:group_id>/": [
        get("/groups/{b_group}/", refused=True),
        post("/groups/{b_group}/", {"name": "Hijacked", "key": "hijacked"}, refused=True),
        post("/groups/{a_group}/", lambda i: {"name": "Alphaqua Desk", "key": i["a_key"], "members": [i["b_agent"]]}),
    ],
    "groups/<int:group_id>/delete/": [post("/groups/{b_group}/delete/", refused=True)],
    "hours/": [get("/hours/")],
    "hours/<slug:group_key>/": [
        get("/hours/{b_key}/", refused=True),
        post("/hours/{b_key}/", {"enabled": "on", "timezone": "UTC"}, refused=True),
    ],
    "history/": [get("/history/"), get("/history/?operator={b_agent}")],
    "embed/": [get("/embed/"), post("/embed/", {"allowed_origins": "https://alphaqua.example"})],
    "automatic-messages/": [
        get("/automatic-messages/"),
        post(
            "/automatic-messages/",
            lambda i: {
                "busy_after_seconds": "60",
                "busy_message": "Moment",
                "offline_message": "",
                "account": i["b_account"],
            },
        ),
    ],
    "inbox/": [get("/inbox/")],
    "inbox/count.json": [get("/inbox/count.json")],
    "inbox/list.json": [get("/inbox/list.json"), get("/inbox/list.json?view=closed")],
    "inbox/<int:conversation_id>/": [get("/inbox/{b_conversation}/", refused=True)],
    "inbox/<int:conversation_id>.json": [get("/inbox/{b_conversation}.json", refused=True)],
    "inbox/<int:conversation_id>/messages": [
        post("/inbox/{b_conversation}/messages", {"body": "Hijacked", "client_id": "iso-1"}, refused=True)
    ],
    "inbox/<int:conversation_id>/assign": [post("/inbox/{b_conversation}/assign", {"operator": ""}, refused=True)],
    "inbox/<int:conversation_id>/close": [post("/inbox/{b_conversation}/close", refused=True)],
    "profile/": [
        get("/profile/"),
        post("/profile/", lambda i: {"form": "profile", "display_name": "Quintus A", "account": i["b_account"]}),
    ],
    "logout/": [post("/logout/")],
    "faq/": [get("/faq/"), get("/faq/?q=riddle+bravozulu+opening+hours")],
    "faq/mode/": [post("/faq/mode/", lambda i: {"bot_mode": "off", "account": i["b_account"]})],
    "faq/new/": [
        get("/faq/new/"),
        post(
            "/faq/new/",
            lambda i: {"question": "Stolen?", "answer": "Yes.", "language": "en", "group": i["b_group"]},
        ),
    ],
    "faq/report/": [get("/faq/report/")],
    "faq/<int:entry_id>/": [
        get("/faq/{b_faq}/", refused=True),
        post("/faq/{b_faq}/", {"question": "Hijacked?", "answer": "Yes.", "language": "en"}, refused=True),
        post(
            "/faq/{a_faq}/",
            lambda i: {"question": "Riddle alphaqua?", "answer": "Yes.", "language": "en", "group": i["b_group"]},
        ),
    ],
    "faq/<int:entry_id>/delete/": [post("/faq/{b_faq}/delete/", refused=True)],
}

# The REST API (a token or a session of A).
API: dict[str, list[Probe]] = {
    "api/v1/auth/logout": [post("/api/v1/auth/logout")],
    "api/v1/me": [get("/api/v1/me")],
    "api/v1/me/status": [
        get("/api/v1/me/status"),
        put("/api/v1/me/status", lambda i: {"status": "offline", "operator_id": i["b_agent"], "id": i["b_agent"]}),
    ],
    "api/v1/me/heartbeat": [post("/api/v1/me/heartbeat", {"device": "alphaqua-tablet"})],
    "api/v1/chat-box": [get("/api/v1/chat-box")],
    "api/v1/account": [
        get("/api/v1/account"),
        patch(
            "/api/v1/account", lambda i: {"name": "Alpha Renamed", "id": i["b_account"], "widget_key": i["b_widget"]}
        ),
    ],
    "api/v1/operators": [
        get("/api/v1/operators"),
        post(
            "/api/v1/operators",
            lambda i: {"email": "newbie@alphaqua.example", "display_name": "Newbie", "account": i["b_account"]},
        ),
    ],
    "api/v1/operators/<str:operator_id>": [
        get("/api/v1/operators/{b_agent}", refused=True),
        patch("/api/v1/operators/{b_agent}", {"display_name": "Hijacked", "is_active": False}, refused=True),
        delete("/api/v1/operators/{b_agent}", refused=True),
        # Nothing a caller sends makes an operator staff or moves them to another account.
        patch(
            "/api/v1/operators/{a_agent}",
            lambda i: {"is_staff": True, "is_superuser": True, "account": i["b_account"], "account_id": i["b_account"]},
        ),
    ],
    "api/v1/operators/<str:operator_id>/status": [
        put("/api/v1/operators/{b_agent}/status", {"status": "offline"}, refused=True),
    ],
    "api/v1/groups": [
        get("/api/v1/groups"),
        post("/api/v1/groups", lambda i: {"key": "stolen", "name": "Stolen", "members": [i["b_agent"]]}),
    ],
    "api/v1/groups/<str:key>": [
        get("/api/v1/groups/{b_key}", refused=True),
        patch("/api/v1/groups/{b_key}", {"name": "Hijacked", "members": []}, refused=True),
        delete("/api/v1/groups/{b_key}", refused=True),
        patch("/api/v1/groups/{a_key}", lambda i: {"members": [i["b_agent"]]}),
    ],
    "api/v1/groups/<str:key>/opening-hours": [
        get("/api/v1/groups/{b_key}/opening-hours", refused=True),
        put("/api/v1/groups/{b_key}/opening-hours", HOURS, refused=True),
    ],
    "api/v1/opening-hours": [get("/api/v1/opening-hours"), put("/api/v1/opening-hours", HOURS)],
    "api/v1/status-events": [get("/api/v1/status-events"), get("/api/v1/status-events?operator={b_agent}")],
    "api/v1/conversations": [
        get("/api/v1/conversations"),
        get("/api/v1/conversations?assignee={b_agent}"),
        get("/api/v1/conversations?status=open&assignee=none"),
    ],
    "api/v1/conversations/<str:conversation_id>": [
        get("/api/v1/conversations/{b_conversation}", refused=True),
        get("/api/v1/conversations/{b_conversation}?after=0", refused=True),
        get("/api/v1/conversations/{a_conversation}"),
    ],
    "api/v1/conversations/<str:conversation_id>/messages": [
        post("/api/v1/conversations/{b_conversation}/messages", {"body": "Hijacked", "client_id": "w1"}, refused=True),
        # B's message's client_id on B's conversation: a retry would answer B's message.
        post(
            "/api/v1/conversations/{b_conversation}/messages",
            {"body": "Answer", "client_id": "bravozulu-reply"},
            refused=True,
        ),
        post("/api/v1/conversations/{a_conversation}/messages", {"body": "Hello from A", "client_id": "w2"}),
    ],
    "api/v1/conversations/<str:conversation_id>/assign": [
        post("/api/v1/conversations/{b_conversation}/assign", {"operator": None}, refused=True),
        post("/api/v1/conversations/{b_conversation}/assign", lambda i: {"operator": i["a_agent"]}, refused=True),
        # B's agent is no assignee of A's conversation.
        post("/api/v1/conversations/{a_conversation}/assign", lambda i: {"operator": i["b_agent"]}),
    ],
    "api/v1/faq": [
        get("/api/v1/faq"),
        post(
            "/api/v1/faq",
            lambda i: {
                "question": "Stolen?",
                "answer": "Yes.",
                "language": "en",
                "group": i["b_key"],
                "id": i["b_faq"],
            },
        ),
    ],
    "api/v1/faq/match": [
        # B's question, in A's account and with B's group key: B's answer never comes back.
        post("/api/v1/faq/match", {"question": "riddle bravozulu opening hours"}),
        post("/api/v1/faq/match", lambda i: {"question": "riddle bravozulu opening hours", "group": i["b_key"]}),
    ],
    "api/v1/faq/<str:entry_id>": [
        get("/api/v1/faq/{b_faq}", refused=True),
        patch("/api/v1/faq/{b_faq}", {"answer": "Hijacked", "enabled": False}, refused=True),
        delete("/api/v1/faq/{b_faq}", refused=True),
        patch("/api/v1/faq/{a_faq}", lambda i: {"group": i["b_key"]}),
    ],
    "api/v1/conversations/<str:conversation_id>/close": [
        post("/api/v1/conversations/{b_conversation}/close", refused=True),
        post("/api/v1/conversations/{a_conversation}/close"),
    ],
}


@dataclass(frozen=True)
class Public:
    reason: str
    probes: list[Probe]
    # B's strings these answers may carry: what B publishes on its own website.
    shows: tuple[str, ...] = ()


WIDGET_PUBLIC = ("widget_key", "account_name")

# Routes open to anyone by design. Still walked with A's session: they show none of B's private data.
PUBLIC: dict[str, Public] = {
    "login/": Public("the log-in form; a logged-in operator is sent to the dashboard", [get("/login/", expect=(302,))]),
    "admin/login/": Public(
        "the site admin's log-in form; A's operators are not staff", [get("/admin/login/", expect=(200,))]
    ),
    "password-reset/": Public(
        "anyone may ask for a reset link; the answer is the same for every address, the link goes to its owner",
        [
            get("/password-reset/", expect=(200,)),
            post("/password-reset/", lambda i: {"email": i["b_owner_email"]}, expect=(302,)),
        ],
    ),
    "password-reset/sent/": Public(
        "says a link was sent if the address is known", [get("/password-reset/sent/", expect=(200,))]
    ),
    "password-reset/<uidb64>/<token>/": Public(
        "a reset link: without its token it only says the link does not work",
        [get("/password-reset/Yg/no-such-token/", expect=(200,))],
    ),
    "password-reset/done/": Public("says a new password was saved", [get("/password-reset/done/", expect=(200,))]),
    "api/schema/": Public("the OpenAPI document: no account data", [get("/api/schema/", expect=(200,))]),
    "api/docs/": Public("the API documentation page", [get("/api/docs/", expect=(200,))]),
    "api/v1/auth/token": Public(
        "log-in for apps: anonymous by design (and throttled)",
        [
            post(
                "/api/v1/auth/token",
                lambda i: {"email": i["b_owner_email"], "password": "a guess"},
                expect=(400,),
            )
        ],
    ),
    "widget.js": Public("the embeddable script", [get("/widget.js", expect=(200,))]),
    "widget/v1/<str:widget_key>/status": Public(
        "what every visitor of B's website reads (also answered in front of Django, widget/asgi.py)",
        [
            get("/widget/v1/{b_widget}/status", expect=(200,)),
            get("/widget/v1/{a_widget}/status?group={b_key}", expect=(404,)),
        ],
        shows=WIDGET_PUBLIC,
    ),
    "widget/v1/<str:widget_key>/messages": Public(
        "visitors' offline messages: anyone may write to a website; B's group key files nothing under B",
        [
            post(
                "/widget/v1/{a_widget}/messages",
                lambda i: {"name": "Visitor", "email": "v@example.com", "message": "Hello", "group": i["b_key"]},
                expect=(201,),
            )
        ],
    ),
    "widget/v1/<str:widget_key>/conversations": Public(
        "a visitor writes to a website: B's visitor token and group key on A's website are worth nothing there "
        "(a new visitor of A, a conversation of A's account)",
        [
            post(
                "/widget/v1/{a_widget}/conversations",
                lambda i: {"body": "Hello", "client_id": "walk-1", "group": i["b_key"]},
                expect=(201,),
                visitor="b_visitor_token",
            ),
            # B's first message's client_id with B's token: no replay of B's message on A's website.
            post(
                "/widget/v1/{a_widget}/conversations",
                {"body": "Hello", "client_id": "bravozulu-first"},
                expect=(201,),
                visitor="b_visitor_token",
            ),
        ],
    ),
    "widget/v1/<str:widget_key>/conversations/current": Public(
        "a visitor's own conversation: B's visitor token on A's website finds none",
        [get("/widget/v1/{a_widget}/conversations/current", expect=(404,), visitor="b_visitor_token")],
    ),
    "widget/v1/<str:widget_key>/conversations/<int:conversation_id>/messages": Public(
        "a visitor writes into their conversation: never into B's, whichever key and token are sent",
        [
            post(
                "/widget/v1/{a_widget}/conversations/{b_conversation}/messages",
                {"body": "Hijacked", "client_id": "walk-2"},
                expect=(404,),
                visitor="a_visitor_token",
            ),
            post(
                "/widget/v1/{a_widget}/conversations/{b_conversation}/messages",
                {"body": "Hijacked", "client_id": "walk-3"},
                expect=(404,),
                visitor="b_visitor_token",
            ),
            post(
                "/widget/v1/{b_widget}/conversations/{b_conversation}/messages",
                {"body": "Hijacked", "client_id": "walk-4"},
                expect=(404,),
                visitor="a_visitor_token",
            ),
        ],
    ),
    "widget/v1/<str:widget_key>/conversations/<int:conversation_id>/messages/<int:message_id>/feedback": Public(
        "a visitor rates the bot's answer in their conversation: never B's, whichever key and token are sent",
        [
            post(
                "/widget/v1/{a_widget}/conversations/{b_bot_conversation}/messages/{b_bot_message}/feedback",
                {"helpful": True},
                expect=(404,),
                visitor="a_visitor_token",
            ),
            post(
                "/widget/v1/{a_widget}/conversations/{b_bot_conversation}/messages/{b_bot_message}/feedback",
                {"talk_to_person": True},
                expect=(404,),
                visitor="b_visitor_token",
            ),
            post(
                "/widget/v1/{b_widget}/conversations/{b_bot_conversation}/messages/{b_bot_message}/feedback",
                {"helpful": True},
                expect=(404,),
                visitor="a_visitor_token",
            ),
        ],
    ),
    "widget/v1/<str:widget_key>/visitor": Public(
        "a visitor names themselves: B's visitor token on A's website makes a new visitor of A, B's is untouched",
        [
            patch(
                "/widget/v1/{a_widget}/visitor",
                {"name": "Hijacked", "email": "hijack@example.com"},
                expect=(200,),
                visitor="b_visitor_token",
            )
        ],
    ),
    "widget/demo/<str:widget_key>/": Public(
        "a page embedding a website's public widget",
        [get("/widget/demo/{b_widget}/", expect=(200,))],
        shows=WIDGET_PUBLIC,
    ),
    "media/<path:path>": Public(
        "avatar images under random names (uuid4): shown to colleagues, unguessable by others",
        [get("/media/{b_avatar}", expect=(200,)), get("/media/../test.sqlite3", expect=(400, 404))],
        shows=("avatar",),
    ),
}

# The site admin: for the installation's staff only (no operator of an account is staff).
# Each model's routes are walked with B's object of that model.
ADMIN_OBJECTS: dict[str, Callable[[World], int]] = {
    "accounts.account": lambda w: w.b.account.pk,
    "accounts.operator": lambda w: w.b.agent.pk,
    "presence.statusevent": lambda w: StatusEvent.objects.filter(account=w.b.account).first().pk,
    "presence.chatboxevent": lambda w: ChatBoxEvent.objects.filter(account=w.b.account).first().pk,
    "accounts.apitoken": lambda w: ApiToken.objects.filter(operator=w.b.agent).first().pk,
    "groups.group": lambda w: w.b.group.pk,
    "hours.openinghours": lambda w: OpeningHours.objects.filter(account=w.b.account).first().pk,
    "conversations.conversation": lambda w: w.b.conversation.pk,
    "conversations.visitor": lambda w: w.b.conversation.visitor_id,
    "conversations.faqentry": lambda w: w.b.faq_entry.pk,
    # Not a tenant's: the admin's permission groups.
    "auth.group": lambda w: AuthGroup.objects.get_or_create(name="Site editors")[0].pk,
}
# The admin's own pages, by URL name (the catch-all has none).
ADMIN_SITE: dict[str | None, str] = {
    "index": "/admin/",
    "logout": "/admin/logout/",
    "password_change": "/admin/password_change/",
    "password_change_done": "/admin/password_change/done/",
    "autocomplete": "/admin/autocomplete/?app_label=groups&model_name=membership&field_name=group&term=bravo",
    "jsi18n": "/admin/jsi18n/",
    "view_on_site": "/admin/r/{operator_type}/{b_agent}/",
    "app_list": "/admin/accounts/",
    None: "/admin/accounts/operator/{b_agent}",  # the catch-all
}
ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?P<rest>.*)$")
ADMIN_BODY = {"post": "yes", "name": "Hijacked", "display_name": "Hijacked", "action": "switch_offline"}


def admin_labels() -> set[str]:
    return {model._meta.label_lower for model in admin.site._registry}


def admin_template(route: Route) -> str:
    """The path to try for an admin route: B's object of its model, or the site page.
    A route this file does not know raises LookupError."""
    match = ADMIN_MODEL_ROUTE.match(route.route)
    if match and f"{match['app']}.{match['model']}" in admin_labels():
        label = f"{match['app']}.{match['model']}"
        if label not in ADMIN_OBJECTS:
            raise LookupError(f"no object of B for the admin of {label}")
        rest = match["rest"].replace("<path:object_id>", "{object}").replace("<id>", "{object}")
        return "/" + route.route[: len(route.route) - len(match["rest"])] + rest + "#" + label
    if route.name not in ADMIN_SITE:
        raise LookupError(f"admin page {route.route} ({route.name})")
    return ADMIN_SITE[route.name]


# WebSocket routes → the test that walks them.
WEBSOCKETS = {
    "ws/operator/": "test_an_operator_socket_of_a_hears_nothing_of_b",
    "ws/widget/<str:widget_key>/": "test_a_widget_socket_of_a_hears_nothing_of_b",
}


def is_admin_route(route: Route) -> bool:
    return route.namespace == "admin" and route.route not in PUBLIC


# --- the coverage checks ------------------------------------------------------------------


def test_every_http_route_has_an_isolation_case():
    uncovered, stale = [], set(DASHBOARD) | set(API) | set(PUBLIC)
    for route in http_routes():
        stale.discard(route.route)
        if route.route in DASHBOARD or route.route in API or route.route in PUBLIC:
            continue
        if is_admin_route(route):
            try:
                admin_template(route)
            except LookupError as missing:
                uncovered.append(str(missing))
            continue
        uncovered.append(route.route)
    assert uncovered == [], f"routes without a tenant-isolation case: {uncovered}"
    assert stale == set(), f"cases for routes that no longer exist: {sorted(stale)}"
    assert not set(DASHBOARD) & set(API) and not (set(DASHBOARD) | set(API)) & set(PUBLIC)


def test_every_websocket_route_has_an_isolation_case():
    assert websocket_routes() == set(WEBSOCKETS)
    assert all(callable(globals().get(name)) for name in WEBSOCKETS.values())


def test_the_route_walk_sees_includes_and_every_kind_of_route():
    """The coverage checks above would pass vacuously on an empty walk."""
    routes = {route.route for route in http_routes()}
    assert {"", "api/v1/operators/<str:operator_id>", "admin/accounts/operator/<path:object_id>/change/"} <= routes
    assert "ws/operator/" in websocket_routes()


# --- checking one answer ----------------------------------------------------------------------


def fill_body(body: Body, ids: dict) -> dict | None:
    return body(ids) if callable(body) else body


def operator_refs(node, refs: set[int] | None = None) -> set[int]:
    """Operator ids a JSON answer names: operator objects, ``operator_id``s, members."""
    refs = set() if refs is None else refs
    if isinstance(node, dict):
        if {"email", "display_name", "present"} & node.keys() and isinstance(node.get("id"), int):
            refs.add(node["id"])
        for key, value in node.items():
            if key in ("operator_id", "operator", "me") and isinstance(value, int):
                refs.add(value)
            elif key == "members" and isinstance(value, list):
                refs |= {item for item in value if isinstance(item, int)}
            if key != "visitor":  # a visitor has an e-mail too, but is no operator (see conversation_refs)
                operator_refs(value, refs)
    elif isinstance(node, list):
        for item in node:
            operator_refs(item, refs)
    return refs


def conversation_refs(node, refs: dict[str, set[int]] | None = None) -> dict[str, set[int]]:
    """Visitor and conversation ids a JSON answer names."""
    refs = {"visitors": set(), "conversations": set()} if refs is None else refs
    if isinstance(node, dict):
        if isinstance(node.get("visitor"), dict) and isinstance(node.get("id"), int):
            refs["conversations"].add(node["id"])
        for key, value in node.items():
            if key == "visitor" and isinstance(value, dict) and isinstance(value.get("id"), int):
                refs["visitors"].add(value["id"])
            elif key == "conversation_id" and isinstance(value, int):
                refs["conversations"].add(value)
            conversation_refs(value, refs)
    elif isinstance(node, list):
        for item in node:
            conversation_refs(item, refs)
    return refs


def account_refs(node, refs: set[int] | None = None) -> set[int]:
    """Account ids a JSON answer names: account objects (with a widget key) and ``account``."""
    refs = set() if refs is None else refs
    if isinstance(node, dict):
        if "widget_key" in node and isinstance(node.get("id"), int):
            refs.add(node["id"])
        for key, value in node.items():
            if key == "account" and isinstance(value, dict) and isinstance(value.get("id"), int):
                refs.add(value["id"])
            account_refs(value, refs)
    elif isinstance(node, list):
        for item in node:
            account_refs(item, refs)
    return refs


def public_strings(tenant: Tenant, shows: tuple[str, ...]) -> set[str]:
    """The strings of a tenant that a public route may show (its website shows them too)."""
    strings = {
        "widget_key": tenant.account.widget_key,
        "account_name": tenant.account.name,
        "avatar": tenant.owner.avatar.name.rsplit("/", 1)[-1],
    }
    return {strings[name] for name in shows}


def b_traces(content: bytes, content_type: str, world: World, *, shows: tuple[str, ...] = ()) -> list[str]:
    """Whatever of B's this answer of A carries."""
    allowed = public_strings(world.b, shows)
    text = content.decode("utf-8", "replace")
    traces = [f"string {s!r}" for s in world.b.private if s not in allowed and s in text]
    markers = [f"/groups/{world.b.group.id}/"]
    for op_id in world.b.operator_ids:
        markers += [f"/operators/{op_id}/", f'data-status-of="{op_id}"']
    traces += [f"link {marker!r}" for marker in markers if marker in text]
    if content_type.startswith("application/json") and content:
        data = json.loads(content)
        traces += [f"operator id {op_id}" for op_id in operator_refs(data) - world.a.operator_ids]
        traces += [f"account id {acc_id}" for acc_id in account_refs(data) - {world.a.account.id}]
        named = conversation_refs(data)
        traces += [f"visitor id {v_id}" for v_id in named["visitors"] - world.a.visitor_ids]
        traces += [f"conversation id {c_id}" for c_id in named["conversations"] - world.a.conversation_ids]
    return traces


# --- the walk -----------------------------------------------------------------------------------


@pytest.fixture
def world(db) -> World:
    world = build_world()
    yield world
    world_cleanup(world)


@pytest.fixture
def published(monkeypatch) -> list[str]:
    """The channel-layer group of every publish, still delivered."""
    groups: list[str] = []
    deliver = events.publish_many

    def spy(messages: list[tuple[str, dict]]) -> None:
        groups.extend(group for group, _message in messages)
        deliver(messages)

    monkeypatch.setattr(events, "publish_many", spy)
    return groups


def caller(world: World, role: str) -> Operator:
    return {"owner": world.a.owner, "agent": world.a.agent}[role]


def client_for(world: World, role: str, via: str) -> Client:
    if via == "token":
        token = {"owner": world.a.owner_token, "agent": world.a.agent_token}[role]
        return JsonClient(HTTP_AUTHORIZATION=f"Token {token}")
    client = JsonClient() if via == "api-session" else Client()
    client.force_login(caller(world, role))
    return client


def send(client: Client, probe: Probe, ids: dict):
    path = probe.path.format(**ids)
    body = fill_body(probe.body, ids)
    headers = {"X-Visitor-Token": ids[probe.visitor]} if probe.visitor else None
    if isinstance(client, JsonClient):
        return getattr(client, probe.method)(path, body, headers=headers)
    if probe.method == "get":
        return client.get(path, headers=headers)
    if path.startswith(("/api/", "/widget/v1/")):
        return client.generic(
            probe.method.upper(), path, json.dumps(body or {}), content_type="application/json", headers=headers
        )
    return getattr(client, probe.method)(path, body or {}, headers=headers)


class Walk:
    """Sends the probes as one caller and checks every answer and B's state after it."""

    def __init__(self, world: World, published: list[str], capture) -> None:
        self.world, self.published, self.capture = world, published, capture
        self.ids = {**world.ids(), "operator_type": ContentType.objects.get_for_model(Operator).id}
        self.b_before = tenant_state(world.b)
        self.b_groups = world.b.channel_groups()

    def probe(self, client: Client, probe: Probe, *, role: str, shows: tuple[str, ...] = ()):
        with self.capture(execute=True):  # what the request commits is published, as in production
            response = send(client, probe, self.ids)
        status = response.status_code
        if probe.expect:
            assert status in probe.expect, f"{probe}: {status} {response.content[:300]!r}"
        elif probe.refused:
            # An admin is told B's object does not exist; an agent may be stopped by the role first.
            allowed = (404,) if role.startswith("owner") else (403, 404)
            assert status in allowed, f"{probe} as {role}: {status}, not refused"
        else:
            assert status < 500, f"{probe}: {status}"
        if not probe.expect:
            # Still logged in: a walk of login pages and 401s would prove nothing.
            to_login = status == 302 and response.url.startswith(("/login/?", "/admin/login/?"))
            assert status != 401 and not to_login, f"{probe} as {role}: not authenticated ({status})"
        content = getattr(response, "content", b"") if not getattr(response, "streaming", False) else b""
        traces = b_traces(content, response.get("Content-Type", ""), self.world, shows=shows)
        assert traces == [], f"{probe} as {role} answered with B's data: {traces}"
        assert tenant_state(self.world.b) == self.b_before, f"{probe} as {role} changed B"
        foreign = sorted(set(self.published) & self.b_groups)
        assert foreign == [], f"{probe} as {role} published to B's groups {foreign}"
        staff = Operator.objects.filter(Q(is_staff=True) | Q(is_superuser=True), account=self.world.a.account)
        assert not staff.exists(), f"{probe} as {role} made an operator of A site staff"
        return response


# Who walks: A's owner (an admin of A) and A's agent; the API with a token and with a session.
DASHBOARD_CALLERS = [("owner", "session"), ("agent", "session")]
API_CALLERS = [("owner", "token"), ("owner", "api-session"), ("agent", "token"), ("agent", "api-session")]


@pytest.mark.parametrize("route", [*DASHBOARD, *API], ids=lambda route: f"/{route}")
def test_a_never_reads_or_changes_b_through_an_http_route(world, published, django_capture_on_commit_callbacks, route):
    walk = Walk(world, published, django_capture_on_commit_callbacks)
    probes, callers = (DASHBOARD[route], DASHBOARD_CALLERS) if route in DASHBOARD else (API[route], API_CALLERS)
    for role, via in callers:
        client = client_for(world, role, via)
        for probe in probes:
            walk.probe(client, probe, role=f"{role} via {via}")


@pytest.mark.parametrize("route", list(PUBLIC))
def test_public_routes_show_nothing_private_of_b(world, published, django_capture_on_commit_callbacks, route):
    walk = Walk(world, published, django_capture_on_commit_callbacks)
    client = client_for(world, "owner", "session")
    for probe in PUBLIC[route].probes:
        walk.probe(client, probe, role="owner", shows=PUBLIC[route].shows)


def admin_probes(world: World, ids: dict) -> list[tuple[Route, str]]:
    """(route, path) of every admin route but its log-in, filled with B's objects."""
    probes = []
    for route in http_routes():
        if is_admin_route(route):
            template, _hash, label = admin_template(route).partition("#")
            probes.append((route, template.format(**ids, object=ADMIN_OBJECTS[label](world) if label else None)))
    return probes


@pytest.mark.parametrize("role", ["owner", "agent"])
def test_the_admin_refuses_a_every_page_with_b_objects(world, published, django_capture_on_commit_callbacks, role):
    assert not Operator.objects.filter(account__isnull=False, is_staff=True).exists()
    walk = Walk(world, published, django_capture_on_commit_callbacks)
    client = client_for(world, role, "session")
    probes = admin_probes(world, walk.ids)
    assert len(probes) > 50
    for route, path in probes:
        for method, body in (("get", None), ("post", ADMIN_BODY)):
            probe = Probe(method, path, body, expect=(302,))
            response = walk.probe(client, probe, role=role)
            # To the admin's log-in; its log-out sends a non-staff caller to its front page, which does the same.
            expected = "/admin/" if route.name == "logout" else "/admin/login/?"
            assert response.url.startswith(expected), f"{probe} as {role}: {response.url}"


def test_the_admin_pages_walked_are_real_pages_for_site_staff(world):
    """The refusals above are the admin's, not those of paths that lead nowhere."""
    staff = Client()
    staff.force_login(Operator.objects.create_superuser("root@example.com", "root-password-1", display_name="Root"))
    ids = {**world.ids(), "operator_type": ContentType.objects.get_for_model(Operator).id}
    # "View on site" is a 404 even for staff: no model here has a public page.
    probes = [(route, path) for route, path in admin_probes(world, ids) if route.name != "view_on_site"]
    answers = {path: staff.get(path).status_code for _route, path in probes}
    # Read-only models refuse adding and deleting (403); the log-out is POST only (405).
    assert {path: status for path, status in answers.items() if status == 404 or status >= 500} == {}
    assert sum(status == 200 for status in answers.values()) > 40


# --- the sockets and the channel layer ----------------------------------------------------


db = database_sync_to_async


@pytest.fixture
def socket_world(transactional_db) -> World:
    world = build_world()
    yield world
    world_cleanup(world)


@pytest.fixture
def joined(monkeypatch) -> list[tuple[str, str]]:
    """Every (group, channel) a consumer joins on the channel layer."""
    layer = get_channel_layer()
    calls: list[tuple[str, str]] = []
    group_add = layer.group_add

    async def spy(group: str, channel: str) -> None:
        calls.append((group, channel))
        await group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", spy)
    return calls


def groups_of(joined: list[tuple[str, str]], channel: str) -> set[str]:
    return {group for group, member in joined if member == channel}


FORGED = "forged"  # the source of forged status messages, told apart from real ones


def operator_message(tenant: Tenant, status: str, *, source: str = FORGED) -> dict:
    return {"type": "operator.status", "operator_id": tenant.agent.id, "status": status, "source": source}


async def forge_to_every_group_of(tenant: Tenant, snapshot: dict) -> None:
    """What the services send to each of a tenant's groups, sent straight to it
    (but logouts: the end of the test sends one)."""
    layer = get_channel_layer()
    operator_groups = {events.operator_group(op_id) for op_id in await db(lambda: tenant.operator_ids)()}
    for group in operator_groups | {events.account_group(tenant.account.id)}:
        await layer.group_send(group, operator_message(tenant, Status.OFFLINE))
    await layer.group_send(events.account_group(tenant.account.id), {"type": "operator.chat_box", "snapshot": snapshot})
    await layer.group_send(events.widget_group(tenant.account.id), {"type": "widget.snapshot", "snapshot": snapshot})


async def drain(socket: Socket) -> list[dict]:
    """What a socket still had to say (its own connect's pushes), until it falls quiet."""
    said = []
    while not await socket.nothing_more(QUIET):
        said.append(await socket.receive())
    return said


def snapshot_of(tenant: Tenant) -> dict:
    return json.loads(get_store().snapshot_json(account_id=tenant.account.id))


def set_status(operator: Operator, status: str) -> None:
    services.operator_set_status(operator=Operator.objects.get(id=operator.id), status=status, source=Source.ADMIN)


async def connected(headers: list) -> tuple[Socket, dict]:
    socket = Socket(headers)
    assert await socket.connect()
    hello = await socket.receive_until(lambda m: m["type"] == "hello")
    return socket, hello


def private_in(message: dict, tenant: Tenant) -> list[str]:
    text = json.dumps(message, ensure_ascii=False)
    return [s for s in tenant.private if s in text]


@committed_db
@pytest.mark.parametrize(
    ("role", "via"), [("owner", "session"), ("owner", "token"), ("agent", "session"), ("agent", "token")]
)
async def test_an_operator_socket_of_a_hears_nothing_of_b(socket_world, joined, role, via):
    world = socket_world
    me = caller(world, role)
    if via == "session":
        headers = await db(session_headers)(me)
    else:
        headers = token_headers({"owner": world.a.owner_token, "agent": world.a.agent_token}[role])
    b_socket, _b_hello = await connected(token_headers(world.b.agent_token))
    b_groups = await db(world.b.channel_groups)()

    mine_from = len(joined)
    a_socket, hello = await connected(headers)
    channel = joined[mine_from][1]

    # It joins its account's group and its operator's group: names made from its own ids only.
    assert groups_of(joined, channel) == {events.account_group(world.a.account.id), events.operator_group(me.id)}
    assert not groups_of(joined, channel) & b_groups
    assert hello["operator"]["id"] == me.id
    assert set(hello["chat_box"]["groups"]) == {world.a.group.key}
    assert private_in(hello, world.b) == []
    assert all(private_in(message, world.b) == [] for message in await drain(a_socket))

    # Everything B's groups carry, forged: B's socket hears it, A's hears nothing.
    await forge_to_every_group_of(world.b, await db(snapshot_of)(world.b))
    await b_socket.receive_until(lambda m: m["type"] == "operator_status" and m["source"] == FORGED)
    assert await a_socket.nothing_more(QUIET)

    # A real change in B, through the services.
    await db(set_status)(world.b.agent, Status.OFFLINE)
    await b_socket.receive_until(lambda m: m["type"] == "operator_status" and m["source"] == Source.ADMIN)
    assert await a_socket.nothing_more(QUIET)

    # B's logout of every device closes B's socket; A's stays open and answers.
    await get_channel_layer().group_send(
        events.operator_group(world.b.agent.id), {"type": "operator.logout", "device": ALL_DEVICES}
    )
    assert await b_socket.closed_with() == CLOSE_LOGGED_OUT
    await a_socket.send({"type": "heartbeat"})
    assert (await a_socket.receive())["type"] == "heartbeat_ack"

    # Whatever it sends names no one but its own operator.
    b_before = await db(tenant_state)(world.b)
    new = Status.OFFLINE if me.status == Status.ONLINE else Status.ONLINE
    await a_socket.send({"type": "set_status", "status": new, "operator_id": world.b.agent.id, "id": world.b.agent.id})
    mine = await a_socket.receive_until(lambda m: m["type"] == "operator_status" and m["source"] != FORGED)
    assert (mine["operator_id"], mine["status"]) == (me.id, new)
    assert await db(tenant_state)(world.b) == b_before

    # The same path does reach A's socket for A's own group: the silence above means something.
    await get_channel_layer().group_send(events.account_group(world.a.account.id), operator_message(world.a, "online"))
    heard = await a_socket.receive_until(lambda m: m["type"] == "operator_status" and m["source"] == FORGED)
    assert heard["operator_id"] == world.a.agent.id
    await a_socket.close()


def widget_socket(tenant: Tenant, *, group: str | None = None) -> WebsocketCommunicator:
    """A visitor's widget on the tenant's own website (its allowed origin)."""
    path = f"/ws/widget/{tenant.account.widget_key}/" + (f"?group={group}" if group else "")
    return WebsocketCommunicator(router, path, headers=[(b"origin", tenant.account.allowed_origins[0].encode())])


@committed_db
async def test_a_widget_socket_of_a_hears_nothing_of_b(socket_world, joined):
    world = socket_world
    b_widget = widget_socket(world.b)
    assert (await b_widget.connect())[0]
    assert (await b_widget.receive_json_from(timeout=3))["type"] == "status"

    mine_from = len(joined)
    a_widget = widget_socket(world.a)
    assert (await a_widget.connect())[0]
    first = await a_widget.receive_json_from(timeout=3)
    channel = joined[mine_from][1]

    assert groups_of(joined, channel) == {events.widget_group(world.a.account.id)}
    assert first["account_name"] == world.a.account.name
    assert private_in(first, world.b) == []

    # A real change of B's chat box reaches B's widget only.
    await db(set_status)(world.b.agent, Status.OFFLINE)
    assert (await b_widget.receive_json_from(timeout=3))["type"] == "status"
    assert await a_widget.receive_nothing(timeout=QUIET)

    # Forged messages to every group of B: nothing for A's widget.
    snapshot = await db(snapshot_of)(world.b)
    await forge_to_every_group_of(world.b, {**snapshot, "version": snapshot["version"] + 1})
    assert (await b_widget.receive_json_from(timeout=3))["type"] == "status"
    assert await a_widget.receive_nothing(timeout=QUIET)

    # A's own change does reach it.
    await db(set_status)(world.a.agent, Status.OFFLINE)
    pushed = await a_widget.receive_json_from(timeout=3)
    assert pushed["type"] == "status" and pushed["version"] > first["version"]

    # B's group key on A's widget is no group of A's: refused like an unknown one.
    foreign_group = widget_socket(world.a, group=world.b.group.key)
    assert (await foreign_group.connect())[0]
    closing = await foreign_group.receive_output(timeout=3)
    assert (closing["type"], closing["code"]) == ("websocket.close", CLOSE_NOT_FOUND)

    for communicator in (a_widget, b_widget, foreign_group):
        await communicator.disconnect()
