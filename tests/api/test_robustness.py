"""No input makes the API fail: every hostile body gets a 4xx, never a 500."""

import json

import pytest
from django.conf import settings

from conversations.faq.services import faq_entry_create
from tests.api.test_permissions_matrix import NO_BODY, TABLE
from tests.conversations.conftest import visitor_writes
from tests.factories import make_group, make_operator

# Every endpoint that reads a body (logout and closing read none, so they ignore any).
WRITES = [row for row in TABLE if row.method in ("post", "put", "patch") and row.path not in NO_BODY]

# Bodies that are no JSON object a database can take: refused everywhere.
BROKEN_BODIES = {
    "not JSON": b"{not json",
    "a list": b"[1, 2, 3]",
    "a string": b'"online"',
    "null": b"null",
    "NaN": b'{"status": NaN, "name": NaN}',
    "nested a thousand levels": b"[" * 100_000 + b"]" * 100_000,
    "a lone surrogate": b'{"status": "\\ud800", "name": "\\ud800", "email": "\\ud800@x.cz", "key": "\\ud800"}',
    "too big": b'{"name": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}',
    "not UTF-8": b'{"name": "\xff\xfe"}',
}
# Objects with odd values: an endpoint refuses those in fields it reads and ignores the rest.
ODD_BODIES = {
    "a NUL character": b'{"display_name": "a\\u0000b", "name": "a\\u0000b", "device": "\\u0000", "email": "a@b.cz", '
    b'"body": "a\\u0000b", "client_id": "a\\u0000", "busy_message": "\\u0000"}',
    "nulls everywhere": json.dumps(
        dict.fromkeys(
            [
                *["status", "name", "email", "display_name", "key", "enabled", "weekly", "timezone", "members"],
                *["body", "client_id", "operator", "busy_after_seconds", "busy_message", "offline_message"],
            ]
        )
    ).encode(),
    "wrong types everywhere": json.dumps(
        {
            "status": 1,
            "name": {"a": 1},
            "email": [1],
            "display_name": [],
            "key": {},
            "enabled": [],
            "weekly": "monday",
            "exceptions": 5,
            "timezone": [],
            "members": {"a": 1},
            "stale_after_seconds": [],
            "allowed_origins": {"a": 1},
            "role": [],
            "body": {"text": "hi"},
            "client_id": ["a"],
            "operator": "me",
            "busy_after_seconds": "45",
            "offline_message": [],
        }
    ).encode(),
    "huge strings": json.dumps(
        {
            name: "x" * 100_000
            for name in [
                *["status", "name", "email", "display_name", "key", "timezone", "device", "password", "role"],
                *["body", "client_id", "busy_message", "offline_message", "question", "answer", "language"],
            ]
        }
    ).encode(),
    "huge numbers": json.dumps(
        {
            "members": [10**100],
            "stale_after_seconds": 10**100,
            "enabled": 10**100,
            "operator": 10**100,
            "busy_after_seconds": 10**100,
            "body": 10**100,
        }
    ).encode(),
}


@pytest.fixture
def world(account, as_owner):
    target = make_operator(account=account)
    make_group(account=account, key="sales", members=[target])
    conversation = visitor_writes(account, "Hello?", client_id="robust").conversation
    entry = faq_entry_create(account=account, question="Opening hours?", answer="9 to 5.", language="en")
    return {"operator": target.id, "group": "sales", "conversation": conversation.id, "faq": entry.id}


def send(client, row, world, body: bytes):
    return getattr(client, row.method)(row.path.format(**world), body, content_type="application/json")


@pytest.mark.parametrize("body_name", list(BROKEN_BODIES))
@pytest.mark.parametrize("row", WRITES, ids=lambda row: f"{row.method.upper()} {row.path}")
def test_a_broken_body_is_refused_with_a_json_4xx(as_owner, world, row, body_name):
    response = send(as_owner, row, world, BROKEN_BODIES[body_name])
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("body_name", list(ODD_BODIES))
@pytest.mark.parametrize("row", WRITES, ids=lambda row: f"{row.method.upper()} {row.path}")
def test_odd_values_never_make_a_server_error(as_owner, world, row, body_name):
    response = send(as_owner, row, world, ODD_BODIES[body_name])
    assert response.status_code < 500
    assert response["Content-Type"] == "application/json"


def test_logout_ignores_whatever_body_comes_with_it(as_owner):
    response = as_owner.post("/api/v1/auth/logout", BROKEN_BODIES["not JSON"], content_type="application/json")
    assert response.status_code == 204


def test_too_big_a_body_is_413(as_owner):
    response = as_owner.patch("/api/v1/account", BROKEN_BODIES["too big"], content_type="application/json")
    assert response.status_code == 413


def test_a_form_body_is_an_unsupported_media_type(as_owner):
    response = as_owner.put("/api/v1/me/status", "status=online", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_a_lone_surrogate_is_a_parse_error(as_owner):
    response = as_owner.patch("/api/v1/account", BROKEN_BODIES["a lone surrogate"], content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_anonymous_callers_are_told_how_to_authenticate(anonymous, db):
    response = anonymous.get("/api/v1/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token", "Token ", "Token " + "x" * 5000, "Bearer abc", "Token a b", "Token é"])
def test_malformed_token_headers_are_401(anonymous, db, header):
    response = anonymous.get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/me/heartbeat", {"device": "\t" + "d" * 80}, "device"),
        ("patch", "/api/v1/account", {"name": "n" * 120 + " "}, "name"),
        ("patch", "/api/v1/account", {"allowed_origins": [" " * 201]}, "allowed_origins"),
        ("post", "/api/v1/operators", {"email": " " + "e" * 242 + "@example.com", "display_name": "E"}, "email"),
    ],
)
def test_a_text_longer_than_documented_is_refused_even_if_trimmed_it_would_fit(as_owner, method, path, body, field):
    response = getattr(as_owner, method)(path, body)

    # It should hold the schema's maxLength for the text as sent.
    assert response.status_code == 400
    assert field in response.json()
