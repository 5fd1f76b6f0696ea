"""Malformed and hostile input to the public widget endpoints: a 4xx, never a
server error, and a refused request stores nothing.

Anyone on the Internet can send these, with no key to guess for the status
read and one public key for the rest.
"""

import itertools
from urllib.parse import quote_from_bytes

import pytest
from channels.testing import HttpCommunicator
from hypothesis import event, given
from hypothesis import strategies as st

from chatstatus.asgi import router
from conversations.models import Conversation
from conversations.views import OFFLINE_FORM_MAX_BYTES as MESSAGE_BODY_MAX
from tests.factories import make_account, make_group
from tests.fuzzing import FUZZ, encoded, nesting, surrogates, values
from tests.widget.helpers import messages_url
from widget.asgi import with_widget_status

VALID = {"name": "Ann Visitor", "email": "ann@example.com", "message": "Do you ship to Brno?"}

# Each request from an address of its own: the per-address limit (5 a minute)
# is tested in test_messages.py and must not turn this input into a 429.
_addresses = itertools.count(1)


def address() -> str:
    n = next(_addresses)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def post(client, account, body: bytes):
    return client.post(messages_url(account), data=body, content_type="application/json", REMOTE_ADDR=address())


@pytest.fixture
def account(db):
    account = make_account()
    make_group(account=account, key="sales")
    return account


# --- offline messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # A lone surrogate escaped, as the security finding sent it.
        b'{"name": "\\ud800", "email": "ann@example.com", "message": "Hi"}',
        b'{"name": "Ann", "email": "ann@example.com", "message": "Hi \\udfff"}',
        # The same as raw bytes (what UTF-8 would give a surrogate, which it refuses to).
        '{"name": "Ann", "email": "ann@example.com", "message": "\udfff"}'.encode("utf-8", "surrogatepass"),
        # Nesting deeper than the parser goes, well within the 16 KiB body limit.
        b"[" * 16_000,
        b'{"name": ' + b"[" * 16_000,
    ],
    ids=["escaped name", "escaped message", "raw bytes", "nested", "nested in a field"],
)
def test_a_body_no_database_could_store_is_refused_as_invalid_json(client, account, body):
    response = post(client, account, body)

    # It should be the answer to any body that is not a usable JSON object.
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json"}
    assert not Conversation.objects.exists()


def test_a_surrogate_pair_is_one_character_and_is_kept(client, account):
    response = post(client, account, b'{"name": "Ann \\ud83d\\ude00", "email": "ann@example.com", "message": "Hi"}')

    # It should be taken: only a surrogate without its other half is broken text.
    assert response.status_code == 201
    assert Conversation.objects.get().visitor.name == "Ann 😀"


# Good values often enough that some messages are stored; text that only a
# lone surrogate breaks often enough that it reaches the database's encoder.
broken = st.builds(str.__add__, st.text(max_size=5), surrogates)
good = {
    "name": st.sampled_from(["Ann", "  Ann  ", "漢" * 100]) | broken,
    "email": st.just("ann@example.com"),
    "message": st.sampled_from(["Hi", "m" * 4000]) | broken,
    "group": st.sampled_from(["sales", "gone", ""]),
    "page_url": st.sampled_from(["https://shop.example/", "javascript:alert(1)"]),
}
required, optional = ("name", "email", "message"), ("group", "page_url")
anything = st.fixed_dictionaries(
    {name: good[name] | values for name in required}, optional={name: good[name] | values for name in optional}
)
# A valid message with one field set to anything: stored when that field is
# fine or is one the form drops (``page_url``) or files away (``group``).
one_field = st.sampled_from(list(good)).flatmap(lambda name: (good[name] | values).map(lambda v: {**VALID, name: v}))
messages = st.one_of(one_field, anything, values)


bodies = st.builds(encoded, messages, st.booleans()) | st.binary(max_size=60) | nesting(max_depth=20_000)


@FUZZ
@given(body=bodies)
def test_any_body_is_stored_once_or_refused_without_a_trace(client, account, body):
    before = Conversation.objects.count()

    response = post(client, account, body)
    event(f"answered {response.status_code}")

    # It should store one message, or refuse with a JSON 4xx and store nothing.
    expected = 413 if len(body) > MESSAGE_BODY_MAX else response.status_code
    assert response.status_code in (201, 400, 413)
    assert response.status_code == expected
    assert response["Content-Type"] == "application/json"
    stored = Conversation.objects.count() - before
    assert stored == (1 if response.status_code == 201 else 0)


# --- the status read (the Django view and the fast path in front of it) ------------------------------

raw_queries = st.binary(max_size=30).map(lambda raw: "group=" + quote_from_bytes(raw)) | st.binary(max_size=30).map(
    quote_from_bytes
)
keys = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"), min_size=1, max_size=30
)
fast = with_widget_status(router)


async def status_answer(app, path: str) -> tuple[int, bytes]:
    communicator = HttpCommunicator(app, "GET", path, headers=[(b"host", b"127.0.0.1:8000")])
    response = await communicator.get_response(timeout=5)
    await communicator.wait()
    return response["status"], response["body"]


@pytest.mark.django_db(transaction=True)
@FUZZ
@given(data=st.data())
async def test_any_status_read_is_a_status_or_not_found_and_both_paths_agree(account, data):
    key = data.draw(st.just(account.widget_key) | keys, label="key")
    path = f"/widget/v1/{quote_from_bytes(key.encode())}/status?{data.draw(raw_queries, label='query')}"

    django_answer = await status_answer(router, path)
    fast_answer = await status_answer(fast, path)

    # It should answer 200 or 404, the same on both paths.
    assert django_answer[0] in (200, 404)
    assert fast_answer == django_answer


@FUZZ
@given(query=raw_queries, lang=st.binary(max_size=10))
def test_the_demo_page_takes_any_query(client, account, query, lang):
    response = client.get(f"/widget/demo/{account.widget_key}/?{query}&lang={quote_from_bytes(lang)}")

    # It should render, whatever the group or language asked for.
    assert response.status_code == 200
