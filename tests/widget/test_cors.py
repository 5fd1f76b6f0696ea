"""The widget endpoints are readable from any website, without credentials; nothing else is."""

import pytest

from tests.factories import make_account
from tests.widget.helpers import messages_url, status_url

SITE = "https://shop.example"


@pytest.mark.django_db
def test_any_site_may_read_the_status_without_credentials(client):
    response = client.get(status_url(make_account()), headers={"Origin": SITE})

    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    assert "etag" in response["Access-Control-Expose-Headers"].lower()


@pytest.mark.django_db
def test_a_404_is_readable_cross_origin_too(client):
    response = client.get("/widget/v1/nope/status", headers={"Origin": SITE})

    assert response.status_code == 404
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.django_db
def test_the_preflight_for_posting_a_json_message_is_allowed(client):
    response = client.options(
        messages_url(make_account()),
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "content-type" in response["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.django_db
def test_a_posted_message_answer_is_readable_cross_origin(client):
    response = client.post(
        messages_url(make_account()),
        data={"name": "Ann", "email": "ann@example.com", "message": "Hi"},
        content_type="application/json",
        headers={"Origin": SITE},
    )

    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/chat-box", "/", "/login/", "/widget.js"])
def test_other_paths_get_no_cors_headers(client, path):
    get = client.get(path, headers={"Origin": SITE})
    preflight = client.options(path, headers={"Origin": SITE, "Access-Control-Request-Method": "PUT"})

    assert "Access-Control-Allow-Origin" not in get
    assert "Access-Control-Allow-Origin" not in preflight
