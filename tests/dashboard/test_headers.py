"""Security headers of every kind of answer.

* A strict Content-Security-Policy everywhere: scripts and styles from this
  site only, inline ones only with the page's nonce, sockets to this host,
  and no framing but the widget demo's by the dashboard itself.
* ``Cache-Control: no-store`` on whatever is meant for one signed-in person
  (dashboard pages, the admin, the API), and not on public answers that
  browsers and proxies should keep (the widget's script and status).
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.template.loader import render_to_string
from django.test import Client

from accounts.models import Operator
from accounts.throttles import LoginRateThrottle
from tests.api.conftest import token_client
from tests.factories import make_account, owner_of

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)([^>]*)>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style([^>]*)>", re.IGNORECASE)
# An inline event handler or style attribute: no nonce can allow them.
INLINE_ATTRIBUTE = re.compile(r"<[^>]+\s(on[a-z]+|style)\s*=", re.IGNORECASE)


@pytest.fixture
def account():
    return make_account(name="Shop")


@pytest.fixture
def owner(account) -> Operator:
    return owner_of(account)


@pytest.fixture
def operator_client(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(Operator.objects.create_superuser("root@example.com", "root-password-1", display_name="Root"))
    return client


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive → sources."""
    header = response.headers["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def nonce_of(response) -> str | None:
    sources = policy(response).get("script-src", [])
    nonces = [source for source in sources if source.startswith("'nonce-")]
    return nonces[0].removeprefix("'nonce-").removesuffix("'") if nonces else None


# (label, who asks, path): one page of every kind.
HTML_PAGES = [
    ("dashboard", "operator", "/"),
    ("opening hours", "operator", "/hours/"),
    ("embed page", "operator", "/embed/"),
    ("log-in", "anonymous", "/login/"),
    ("password reset", "anonymous", "/password-reset/"),
    ("not found", "anonymous", "/no-such-page/"),
    ("admin", "staff", "/admin/"),
    ("admin list", "staff", "/admin/accounts/operator/"),
    ("API docs", "anonymous", "/api/docs/"),
    ("widget demo", "anonymous", "/widget/demo/{key}/"),
]


@pytest.fixture
def ask(account, operator_client, staff_client):
    clients = {"operator": operator_client, "staff": staff_client, "anonymous": Client()}

    def get(who: str, path: str, **headers):
        return clients[who].get(path.format(key=account.widget_key), **headers)

    return get


@pytest.mark.parametrize(("label", "who", "path"), HTML_PAGES, ids=[page[0] for page in HTML_PAGES])
def test_every_page_has_a_strict_content_security_policy(ask, label, who, path):
    response = ask(who, path)
    directives = policy(response)

    # It should allow scripts and styles from this site only (and inline ones by nonce), never 'unsafe-*'.
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"][0] == "'self'"
    assert directives["style-src"][0] == "'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert directives["object-src"] == ["'none'"]
    assert directives["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]


@pytest.mark.parametrize(("label", "who", "path"), HTML_PAGES, ids=[page[0] for page in HTML_PAGES])
def test_every_inline_script_and_style_carries_the_pages_nonce(ask, label, who, path):
    response = ask(who, path)
    html = response.content.decode()
    nonce = nonce_of(response)
    inline = INLINE_SCRIPT.findall(html) + INLINE_STYLE.findall(html)

    # It should give each inline block the nonce the header allows, and use no inline handler or style attribute.
    assert all(f'nonce="{nonce}"' in attributes for attributes in inline), inline
    assert INLINE_ATTRIBUTE.findall(html) == []


def test_the_nonce_is_new_on_every_answer(ask):
    # It should never repeat, or an attacker who saw one could reuse it.
    assert nonce_of(ask("anonymous", "/login/")) != nonce_of(ask("anonymous", "/login/"))


@pytest.mark.parametrize(
    ("label", "who", "path"), [page for page in HTML_PAGES if page[0] != "widget demo"], ids=lambda value: value
)
def test_no_page_may_be_framed_by_another_site(ask, label, who, path):
    # It should forbid framing in the CSP as X-Frame-Options does.
    assert policy(ask(who, path))["frame-ancestors"] == ["'none'"]


def test_the_widget_demo_may_be_framed_by_the_dashboard_only(ask):
    response = ask("anonymous", "/widget/demo/{key}/")

    # It should follow its X-Frame-Options: the Embed page shows it in an iframe of this site.
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert policy(response)["frame-ancestors"] == ["'self'"]


def test_a_page_whose_view_chose_its_own_policy_keeps_it(settings):
    settings.DEBUG = True

    response = Client().get("/no-such-page/")

    # It should leave Django's debug page as its view chose (csp_override({}): no policy), not add ours.
    assert response.status_code == 404
    assert "Content-Security-Policy" not in response.headers


def test_the_server_error_page_needs_no_inline_style():
    html = render_to_string("500.html")

    # It should be styled by a file: it is rendered without a request, so without a nonce.
    assert INLINE_STYLE.findall(html) == []
    assert INLINE_SCRIPT.findall(html) == []


def test_no_template_has_inline_code_the_policy_would_refuse():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        source = path.read_text()
        blocks = INLINE_SCRIPT.findall(source) + INLINE_STYLE.findall(source)
        if any("{% csp_nonce_attr %}" not in attributes for attributes in blocks) or INLINE_ATTRIBUTE.search(source):
            offenders.append(str(path.relative_to(TEMPLATES)))

    # It should find every inline <script> and <style> marked with the nonce, and no handler or style attribute.
    assert offenders == []


# --- public answers loaded by customers' websites -----------------------------------------


@pytest.mark.parametrize("path", ["/widget/v1/{key}/status", "/widget.js"])
@pytest.mark.parametrize("who", ["anonymous", "operator"])
def test_the_widget_answers_keep_what_other_websites_need(ask, path, who):
    response = ask(who, path, HTTP_ORIGIN="https://shop.example")

    # It should carry the settings' policy (no nonce, no host: what the fast path sends) and stay loadable anywhere.
    assert response.status_code == 200
    assert "nonce" not in response.headers["Content-Security-Policy"]
    assert policy(response)["connect-src"] == ["'self'"]
    assert response.headers["Cache-Control"].startswith("public")
    assert "no-store" not in response.headers["Cache-Control"]
    assert "Cookie" not in response.headers.get("Vary", "")
    if path == "/widget.js":
        assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    else:
        assert response.headers["Access-Control-Allow-Origin"] == "*"


# --- caching ----------------------------------------------------------------------------------


PRIVATE = [
    ("operator", "/"),
    ("operator", "/hours/"),
    ("operator", "/profile/"),
    ("operator", "/team.json"),
    ("operator", "/api/docs/"),
    ("staff", "/admin/"),
    ("staff", "/admin/accounts/operator/"),
]
# Public answers keep the caching their view chose. (Django's log-in view marks
# itself never-cache: not ours to change.)
PUBLIC = ["/password-reset/", "/api/docs/", "/widget/demo/{key}/", "/widget/v1/{key}/status", "/widget.js"]


def test_only_answers_for_a_signed_in_person_are_never_stored(ask):
    private = {f"{who} {path}": ask(who, path) for who, path in PRIVATE}
    public = {f"anonymous {path}": ask("anonymous", path) for path in PUBLIC}

    # It should tell browsers and proxies to keep no copy of an operator's pages, and leave public ones alone.
    assert {path: response.status_code for path, response in {**private, **public}.items()} == dict.fromkeys(
        [*private, *public], 200
    )
    assert [path for path, response in private.items() if "no-store" not in response.get("Cache-Control", "")] == []
    assert [path for path, response in private.items() if "private" not in response.get("Cache-Control", "")] == []
    assert [path for path, response in public.items() if "no-store" in response.get("Cache-Control", "")] == []


def test_api_answers_with_a_token_are_never_stored(owner):
    response = token_client(owner).get("/api/v1/me")

    # It should keep the operator's data out of every cache.
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]


def test_the_api_token_answer_is_never_stored(owner):
    cache.delete(LoginRateThrottle.cache_format % {"scope": "login", "ident": "10.9.8.7"})  # a fresh budget

    response = Client().post(
        "/api/v1/auth/token",
        {"email": owner.email, "password": "s3cret-pass-word"},
        content_type="application/json",
        REMOTE_ADDR="10.9.8.7",
    )

    # It should not leave the new token in a cache, though the caller was anonymous.
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
