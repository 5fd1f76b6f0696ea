"""GET /widget/v1/{key}/status: the public, cached, zero-query status read."""

import json
from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import Status
from presence.services import operator_set_status
from tests.factories import make_account, make_group, make_operator
from tests.widget.helpers import make_open_monday_nine_to_five_with_someone_online, make_present, status_url
from widget import selectors

CONTRACT_FIELDS = {"status", "reason", "version", "next_change_at"}


@pytest.mark.django_db
def test_it_answers_the_account_status_from_the_snapshot(client):
    account = make_account(language="cs", name="Obchod")
    make_present(make_operator(account=account, status=Status.ONLINE))

    response = client.get(status_url(account))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert CONTRACT_FIELDS <= set(body)
    assert body["status"] == "online"
    assert body["reason"] == "operators_online"
    assert body["next_change_at"] is None
    assert isinstance(body["version"], int)
    assert body["language"] == "cs"
    assert body["account_name"] == "Obchod"


@pytest.mark.django_db
def test_it_answers_a_groups_status_separately_from_the_account(client):
    account = make_account()
    seller = make_operator(account=account, status=Status.ONLINE)
    make_group(account=account, key="sales", members=[seller])
    make_group(account=account, key="support")
    make_present(seller)

    answers = {group: client.get(status_url(account, group)).json() for group in (None, "sales", "support")}

    assert answers[None]["status"] == "offline"
    assert answers["sales"]["status"] == "online"
    assert answers["support"]["status"] == "offline"
    assert answers["support"]["reason"] == "no_operator_online"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/widget/v1/no-such-key/status",
        "/widget/v1/{key}/status?group=no-such-group",
        "/widget/v1/{long}/status",
        "/widget/v1/{key}/status?group={long}",
    ],
)
def test_an_unknown_key_or_group_is_a_404_that_reveals_nothing(client, path):
    account = make_account()
    make_group(account=account, key="sales")
    reference = client.get("/widget/v1/no-such-key/status")

    response = client.get(path.format(key=account.widget_key, long="k" * 200))

    assert response.status_code == 404
    assert response.content == b'{"error":"not_found"}'
    assert response.content == reference.content
    assert response["Content-Type"] == reference["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_it_answers_304_when_the_etag_still_matches(client):
    account = make_account()
    first = client.get(status_url(account))
    etag = first["ETag"]

    again = client.get(status_url(account), headers={"If-None-Match": etag})
    weak = client.get(status_url(account), headers={"If-None-Match": f'"other", W/{etag}'})

    assert etag.startswith('"') and etag.endswith('"')
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert weak.status_code == 304


@pytest.mark.django_db
def test_the_etag_changes_with_the_version_and_differs_per_group(client):
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE)
    make_group(account=account, key="sales")
    before = client.get(status_url(account))
    group = client.get(status_url(account, "sales"))

    make_present(operator)  # the operator becomes available: a new snapshot version
    after = client.get(status_url(account), headers={"If-None-Match": before["ETag"]})

    assert group["ETag"] != before["ETag"]
    assert after.status_code == 200
    assert after.json()["status"] == "online"
    assert after.json()["version"] > before.json()["version"]
    assert after["ETag"] != before["ETag"]


@pytest.mark.django_db
def test_it_may_be_cached_briefly_by_anyone(client):
    response = client.get(status_url(make_account()))

    assert response["Cache-Control"] == "public, max-age=5"


@pytest.mark.django_db
def test_a_warm_read_makes_no_database_query(client, django_assert_num_queries):
    account = make_account()
    make_group(account=account, key="sales")
    client.get(status_url(account))

    with django_assert_num_queries(0):
        plain = client.get(status_url(account))
        grouped = client.get(status_url(account, "sales"))
        unchanged = client.get(status_url(account), headers={"If-None-Match": plain["ETag"]})

    assert (plain.status_code, grouped.status_code, unchanged.status_code) == (200, 200, 304)


@pytest.mark.django_db
def test_repeated_guesses_of_unknown_keys_make_no_database_query(client, django_assert_num_queries):
    client.get("/widget/v1/guessed-key/status")

    with django_assert_num_queries(0):
        response = client.get("/widget/v1/guessed-key/status")

    assert response.status_code == 404


@pytest.mark.django_db
def test_a_read_past_a_schedule_flip_recomputes_the_snapshot(client):
    monday_morning = datetime(2026, 3, 2, 8, 59, tzinfo=UTC)
    with time_machine.travel(monday_morning, tick=False) as traveller:
        account = make_open_monday_nine_to_five_with_someone_online()
        closed = client.get(status_url(account)).json()

        # No beat ran in between: the read itself notices the snapshot is due.
        traveller.move_to(datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC))
        opened = client.get(status_url(account)).json()

    assert (closed["status"], closed["reason"]) == ("offline", "closed")
    assert closed["next_change_at"] == "2026-03-02T09:00:00Z"
    assert (opened["status"], opened["reason"]) == ("online", "operators_online")
    assert opened["next_change_at"] == "2026-03-02T17:00:00Z"
    assert opened["version"] > closed["version"]


@pytest.mark.django_db
def test_it_follows_an_operator_going_offline(client, django_capture_on_commit_callbacks):
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE)
    make_present(operator)
    online = client.get(status_url(account)).json()

    with django_capture_on_commit_callbacks(execute=True):
        operator_set_status(operator=operator, status=Status.OFFLINE, source="api")
    offline = client.get(status_url(account)).json()

    assert online["status"] == "online"
    assert offline["status"] == "offline"


@pytest.mark.django_db
def test_a_renamed_account_shows_once_the_memo_expires(client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(selectors, "_clock", lambda: clock[0])
    account = make_account(name="Old name")
    client.get(status_url(account))
    account.name = "New name"
    account.save()

    clock[0] += selectors.ACCOUNT_MEMO_SECONDS - 1
    still_memoised = client.get(status_url(account)).json()
    clock[0] += 2
    fresh = client.get(status_url(account)).json()

    assert still_memoised["account_name"] == "Old name"
    assert fresh["account_name"] == "New name"


@pytest.mark.django_db
def test_only_get_is_allowed(client):
    response = client.post(status_url(make_account()), data=json.dumps({}), content_type="application/json")

    assert response.status_code == 405
