"""The public widget endpoints in the OpenAPI document.

They are plain Django views (no DRF: no session, no authentication, one
selector or service each), so drf-spectacular does not see them; this
post-processing hook adds them, with the limits the views and their forms
(``conversations.forms`` for the offline form) enforce, so the
document describes every JSON endpoint a website or an app can call and
schemathesis checks them against it.
"""

from conversations.forms import EMAIL_MAX, GROUP_MAX
from conversations.models import BODY_MAX as MESSAGE_MAX
from conversations.models import NAME_MAX, PAGE_URL_MAX
from conversations.views import OFFLINE_FORM_MAX_BYTES as MESSAGE_BODY_MAX
from widget.views import GROUP_KEY_MAX

TAG = "widget (public)"
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "fields": {"type": "object"}},
    "required": ["error"],
}
KEY = {
    "name": "widget_key",
    "in": "path",
    "required": True,
    "description": "The account's public widget key.",
    "schema": {"type": "string"},
}


def _answer(description: str, schema: dict | None = None, headers: dict | None = None) -> dict:
    answer: dict = {"description": description}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
    if headers:
        answer["headers"] = headers
    return answer


STATUS = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["online", "offline"]},
        "reason": {"type": "string", "enum": ["operators_online", "no_operator_online", "closed"]},
        "version": {"type": "integer"},
        "next_change_at": {"type": "string", "format": "date-time", "nullable": True},
        "language": {"type": "string"},
        "account_name": {"type": "string"},
    },
    "required": ["status", "reason", "version", "next_change_at", "language", "account_name"],
}
MESSAGE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
        "email": {"type": "string", "format": "email", "maxLength": EMAIL_MAX},
        "message": {"type": "string", "minLength": 1, "maxLength": MESSAGE_MAX},
        "group": {"type": "string", "maxLength": GROUP_MAX},
        "page_url": {"type": "string", "maxLength": PAGE_URL_MAX},
    },
    "required": ["name", "email", "message"],
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}

PATHS = {
    "/widget/v1/{widget_key}/status": {
        "get": {
            "operationId": "widget_status",
            "tags": [TAG],
            "summary": "The chat box status a widget shows",
            "description": "No authentication, any origin (CORS `*` without credentials). "
            "Answers `304` to a matching `If-None-Match`.",
            "security": [],
            "parameters": [
                KEY,
                {
                    "name": "group",
                    "in": "query",
                    "required": False,
                    "description": "A group's key: that group's box instead of the account's.",
                    "schema": {"type": "string", "maxLength": GROUP_KEY_MAX},
                },
            ],
            "responses": {
                "200": _answer("The box.", STATUS, {"ETag": {"schema": {"type": "string"}}}),
                "304": _answer("Unchanged since the ETag sent."),
                "404": _answer("Unknown widget key or group.", ERROR),
            },
        }
    },
    "/widget/v1/{widget_key}/messages": {
        "post": {
            "operationId": "widget_message_create",
            "tags": [TAG],
            "summary": "Leave a message (the offline form of older widget scripts): starts a conversation",
            "description": f"No authentication, any origin. Bodies over {MESSAGE_BODY_MAX} bytes are refused "
            "(413); a visitor's address may send 5 a minute and 30 an hour (429).",
            "security": [],
            "parameters": [KEY],
            "requestBody": {"required": True, "content": {"application/json": {"schema": MESSAGE}}},
            "responses": {
                "201": _answer(
                    "Stored: the id of the conversation it started.",
                    {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
                ),
                "400": _answer("Invalid JSON or fields.", ERROR),
                "404": _answer("Unknown widget key.", ERROR),
                "413": _answer("The body is too large.", ERROR),
                "429": _answer("Too many messages from this address.", ERROR, RETRY_AFTER),
            },
        }
    },
}


def add_widget_paths(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular post-processing hook."""
    result.setdefault("paths", {}).update(PATHS)
    if not any(tag.get("name") == TAG for tag in result.get("tags", [])):
        result.setdefault("tags", []).append({"name": TAG, "description": "What a website's widget calls."})
    return result
