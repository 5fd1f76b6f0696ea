"""The OpenAPI document at /api/schema/ and its documentation page at /api/docs/."""

import re
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

from tests.api.test_permissions_matrix import TABLE


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
            path = row.path.replace("{operator}", "{operator_id}").replace("{group}", "{key}")
            assert (row.method, path) in documented


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
