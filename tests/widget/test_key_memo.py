"""The widget key memo: known accounts and unknown keys are kept apart, so
guessing keys can never push a real account out (its widgets keep answering
without a query), the memory of unknown keys stays bounded, and keys longer
than any issued are refused before any lookup."""

import secrets

import pytest

from accounts.models import Account
from tests.factories import make_account
from tests.widget.helpers import status_url
from widget import selectors
from widget.selectors import UNKNOWN_MEMO_MAX, WIDGET_KEY_MAX, awidget_account, widget_account

pytestmark = pytest.mark.django_db

GUESSES = 5_000


def test_guessing_many_unknown_keys_never_evicts_a_known_account(django_assert_num_queries):
    account = make_account()
    assert widget_account(widget_key=account.widget_key).account_id == account.id  # memoised now

    guessed = [widget_account(widget_key=secrets.token_urlsafe(16)) for _ in range(GUESSES)]

    assert guessed == [None] * GUESSES
    # It should still answer the real account from memory (no query), and keep the guesses apart,
    # no more of them than the bound.
    with django_assert_num_queries(0):
        assert widget_account(widget_key=account.widget_key).account_id == account.id
    assert list(selectors._known) == [account.widget_key]
    assert UNKNOWN_MEMO_MAX < GUESSES
    assert len(selectors._unknown) <= UNKNOWN_MEMO_MAX


def test_a_recent_unknown_key_is_answered_without_a_query(django_assert_num_queries):
    widget_account(widget_key="guessed-key")

    # It should remember the miss for a while: a guesser repeating a key costs no query.
    with django_assert_num_queries(0):
        assert widget_account(widget_key="guessed-key") is None


def test_an_unknown_key_that_becomes_an_account_is_found_once_forgotten():
    account = make_account()
    widget_account(widget_key="soon-real")
    Account.objects.filter(id=account.id).update(widget_key="soon-real")

    selectors.widget_account_forget(widget_key="soon-real")

    # It should look it up again and find the account.
    assert widget_account(widget_key="soon-real").account_id == account.id


@pytest.mark.parametrize("length", [WIDGET_KEY_MAX + 1, 200, 10_000])
def test_a_key_longer_than_any_issued_is_refused_without_a_query(django_assert_num_queries, length):
    # It should refuse before any lookup, and remember nothing of it.
    with django_assert_num_queries(0):
        assert widget_account(widget_key="k" * length) is None
    assert "k" * length not in selectors._unknown


async def test_the_async_lookup_refuses_a_key_longer_than_any_issued_without_a_query(monkeypatch):
    monkeypatch.setattr(selectors, "database_sync_to_async", lambda func: pytest.fail("went to the database"))

    # It should answer at once, without the hop to a database thread.
    assert await awidget_account(widget_key="k" * (WIDGET_KEY_MAX + 1)) is None


def test_a_key_of_the_longest_length_is_still_looked_up(django_assert_num_queries):
    # It should look it up (the limit refuses only longer keys).
    with django_assert_num_queries(1):
        assert widget_account(widget_key="k" * WIDGET_KEY_MAX) is None


def test_the_status_read_refuses_a_key_longer_than_any_issued_without_a_query(client, django_assert_num_queries):
    account = make_account()
    too_long = account.widget_key + "x" * WIDGET_KEY_MAX

    with django_assert_num_queries(0):
        response = client.get(status_url(account).replace(account.widget_key, too_long))

    # It should be the plain 404 of any unknown key.
    assert response.status_code == 404
    assert response.content == b'{"error":"not_found"}'
