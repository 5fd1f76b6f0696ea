"""GET /widget.js and the demo page that embeds it."""

import gzip
import re

import pytest

from tests.factories import make_account

# The chat panel's budget (was 10 KB for the status badge and the offline form).
GZIP_BUDGET = 12 * 1024


def test_the_script_gzipped_fits_in_12_kb(client):
    response = client.get("/widget.js")

    assert response.status_code == 200
    assert len(gzip.compress(response.content, 9)) <= GZIP_BUDGET


def test_the_script_is_javascript_that_any_page_may_load_and_cache(client):
    response = client.get("/widget.js")

    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"].startswith("public, max-age=")
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Accept-Encoding" in response["Vary"]
    assert "Set-Cookie" not in response


def test_the_script_is_sent_gzipped_to_browsers_that_accept_it(client):
    plain = client.get("/widget.js")
    packed = client.get("/widget.js", headers={"Accept-Encoding": "gzip, deflate, br"})

    assert packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert packed["ETag"] == plain["ETag"]


def test_the_script_answers_304_to_a_matching_etag(client):
    etag = client.get("/widget.js")["ETag"]

    response = client.get("/widget.js", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""


def test_the_script_never_inserts_data_as_markup(client):
    source = client.get("/widget.js").content.decode()

    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", source)


@pytest.mark.django_db
def test_the_demo_page_embeds_the_script_with_the_accounts_key(client):
    account = make_account()

    response = client.get(f"/widget/demo/{account.widget_key}/?group=sales&lang=cs")

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        f'<script src="http://testserver/widget.js" data-key="{account.widget_key}" '
        'data-group="sales" data-lang="cs" async></script>'
    ) in html


@pytest.mark.django_db
def test_the_demo_page_escapes_what_it_echoes(client):
    account = make_account()

    html = client.get(f"/widget/demo/{account.widget_key}/", {"group": '"><script>x</script>'}).content.decode()

    assert "<script>x</script>" not in html
    assert "&quot;&gt;&lt;script&gt;" in html


@pytest.mark.django_db
def test_the_demo_page_of_an_unknown_key_is_a_404(client):
    assert client.get("/widget/demo/no-such-key/").status_code == 404
