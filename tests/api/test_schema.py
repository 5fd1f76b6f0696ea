"""The OpenAPI document at /api/schema/ and its documentation page at /api/docs/."""

import re
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

from conversations.payloads import ConversationPayload, MessagePayload, OperatorBrief, VisitorBrief
from tests.api.test_permissions_matrix import TABLE, schema_path


@pytest.fixture
def schema(anonymous, db) -> dict:
    response = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_generates_valid_without_warnings():
    out = StringIO()
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        stdout=out,
        stderr=out,
    )
    assert yaml.safe_load(out.getvalue())["openapi"].startswith("3.")


def test_every_endpoint_and_method_is_documented(schema):
    documented = {(method, path) for path, item in schema["paths"].items() for method in item}
    for row in TABLE:
        if row.path.startswith("/api/v1/"):
            assert (row.method, schema_path(row.path)) in documented


def test_the_token_scheme_is_documented(schema):
    token = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "Authorization")
    assert '"Token"' in token["description"]
    assert schema["paths"]["/api/v1/auth/token"]["post"].get("security", []) in ([], [{}])
    assert {"tokenAuth": []} in schema["paths"]["/api/v1/me"]["get"]["security"]


def test_the_documented_shapes_name_the_contract_fields(schema):
    components = schema["components"]["schemas"]
    assert set(components["ChatBox"]["properties"]) == {"status", "reason", "groups", "version", "next_change_at"}
    assert set(components["OperatorCreateRequest"]["properties"]) == {"email", "display_name", "password", "role"}
    assert set(components["GroupRequest"]["properties"]) == {"key", "name", "members"}
    assert set(components["OpeningHoursRequest"]["properties"]) == {"enabled", "timezone", "weekly", "exceptions"}
    assert set(components["StatusEvent"]["properties"]) == {"id", "operator_id", "old", "new", "source", "device", "at"}
    assert set(components["Account"]["properties"]) >= {"busy_after_seconds", "busy_message", "offline_message"}


def test_conversations_are_documented_as_the_payloads_every_transport_sends(schema):
    components = schema["components"]["schemas"]
    # Every field of the payloads, the extra ones too (asks_email, avatar_url), all required
    # but those the payload leaves out where they do not apply (faq, on a bot answer only).
    for name, payload in [
        ("Conversation", ConversationPayload),
        ("Message", MessagePayload),
        ("OperatorBrief", OperatorBrief),
        ("VisitorBrief", VisitorBrief),
    ]:
        assert set(components[name]["properties"]) == set(payload.__annotations__), name
        assert set(components[name]["required"]) == set(payload.__required_keys__), name
    detail = schema["paths"]["/api/v1/conversations/{conversation_id}"]["get"]["responses"]["200"]
    parts = detail["content"]["application/json"]["schema"]["allOf"]
    assert parts[0] == {"$ref": "#/components/schemas/Conversation"}
    assert parts[1]["properties"]["messages"]["items"] == {"$ref": "#/components/schemas/Message"}
    listed = schema["paths"]["/api/v1/conversations"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listed["schema"] == {"$ref": "#/components/schemas/PaginatedConversationList"}
    assert set(components["PaginatedConversationList"]["properties"]) >= {"results", "next"}


def test_the_docs_page_loads_nothing_from_another_host(anonymous, db):
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert all(source.startswith("/") for source in sources), sources
    for source in sources:
        assert anonymous.get(source).status_code == 200, source
