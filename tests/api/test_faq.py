"""/api/v1/faq and /api/v1/faq/match: admins write, agents read and match,
other accounts' entries are not found, and bad input is a clear 400."""

import pytest

from conversations.faq.services import faq_entry_create
from conversations.models import FaqEntry
from tests.factories import make_group

ENTRY = {
    "question": "What are your opening hours?",
    "phrasings": ["When are you open?", "Are you open on Saturday?"],
    "answer": "Mon–Fri 8–18, see https://shop.example/hours",
    "language": "en",
}


@pytest.fixture
def entry(account):
    return faq_entry_create(account=account, **ENTRY)


def test_admins_add_an_entry_and_everyone_reads_it(as_admin, as_agent, account):
    created = as_admin.post("/api/v1/faq", {**ENTRY, "group": None})
    assert created.status_code == 201
    body = created.json()
    assert {key: body[key] for key in ENTRY} == ENTRY
    assert body["group"] is None and body["enabled"] is True
    # It should be readable by agents, in the list and alone.
    assert [item["id"] for item in as_agent.get("/api/v1/faq").json()] == [body["id"]]
    assert as_agent.get(f"/api/v1/faq/{body['id']}").json() == body


def test_agents_may_not_write(as_agent, entry):
    assert as_agent.post("/api/v1/faq", ENTRY).status_code == 403
    assert as_agent.patch(f"/api/v1/faq/{entry.id}", {"enabled": False}).status_code == 403
    assert as_agent.delete(f"/api/v1/faq/{entry.id}").status_code == 403


def test_an_admin_changes_and_removes_an_entry(as_admin, account, entry):
    sales = make_group(account=account, key="sales")
    changed = as_admin.patch(f"/api/v1/faq/{entry.id}", {"enabled": False, "group": "sales", "phrasings": []})
    assert changed.status_code == 200
    assert (changed.json()["enabled"], changed.json()["group"], changed.json()["phrasings"]) == (False, "sales", [])
    entry.refresh_from_db()
    assert entry.group == sales and entry.question == ENTRY["question"]
    assert as_admin.delete(f"/api/v1/faq/{entry.id}").status_code == 204
    assert not FaqEntry.objects.exists()


def test_another_accounts_entry_is_not_found(as_stranger, entry):
    assert as_stranger.get(f"/api/v1/faq/{entry.id}").status_code == 404
    assert as_stranger.patch(f"/api/v1/faq/{entry.id}", {"enabled": False}).status_code == 404
    assert as_stranger.delete(f"/api/v1/faq/{entry.id}").status_code == 404
    assert as_stranger.get("/api/v1/faq").json() == []
    assert as_stranger.get("/api/v1/faq/nonsense").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 301}, "question"),
        ({"answer": ""}, "answer"),
        ({"answer": "x" * 2001}, "answer"),
        ({"answer": "<b>Open</b> daily"}, "answer"),
        ({"answer": "Hi &amp; welcome"}, "answer"),
        ({"question": "<img src=x onerror=alert(1)>"}, "question"),
        ({"phrasings": ["ok", "<script>"]}, "phrasings"),
        ({"phrasings": "When are you open?"}, "phrasings"),
        ({"phrasings": [1, 2]}, "phrasings"),
        ({"phrasings": ["p"] * 21}, "phrasings"),
        ({"language": "de"}, "language"),
        ({"language": None}, "language"),
        ({"group": "no-such-group"}, "group"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_bad_entries_are_400s_naming_the_field(as_admin, change, field):
    response = as_admin.post("/api/v1/faq", {**ENTRY, **change})
    assert response.status_code == 400
    assert field in response.json()
    assert not FaqEntry.objects.exists()


def test_a_group_of_another_account_is_an_unknown_group(as_admin, other_account):
    make_group(account=other_account, key="elsewhere-sales")
    response = as_admin.post("/api/v1/faq", {**ENTRY, "group": "elsewhere-sales"})
    assert response.status_code == 400 and response.json() == {"group": ["Unknown group."]}


def test_match_answers_with_the_entry_and_its_score(as_agent, entry):
    found = as_agent.post("/api/v1/faq/match", {"question": "openning hours on saturday?"}).json()
    match = found["match"]
    assert (match["id"], match["question"], match["answer"]) == (entry.id, entry.question, entry.answer)
    assert 0 < match["score"] <= 1


def test_match_is_null_when_nothing_answers(as_agent, entry):
    assert as_agent.post("/api/v1/faq/match", {"question": "do you sell bikes?"}).json() == {"match": None}
    assert as_agent.post("/api/v1/faq/match", {"question": "hours?", "language": "cs"}).json() == {"match": None}


def test_match_sees_edits_at_once(as_admin, entry):
    as_admin.patch(f"/api/v1/faq/{entry.id}", {"enabled": False})
    assert as_admin.post("/api/v1/faq/match", {"question": "opening hours"}).json() == {"match": None}


def test_match_uses_only_the_callers_entries(as_stranger, entry):
    assert as_stranger.post("/api/v1/faq/match", {"question": "opening hours"}).json() == {"match": None}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"question": ""},
        {"question": "  "},
        {"question": 5},
        {"question": "x" * 4001},
        {"question": "a", "group": "x"},
    ],
)
def test_bad_match_requests_are_400s(as_agent, body):
    assert as_agent.post("/api/v1/faq/match", body).status_code == 400


def test_the_account_sets_the_bot_mode(as_admin, account):
    assert as_admin.patch("/api/v1/account", {"bot_mode": "off"}).json()["bot_mode"] == "off"
    assert as_admin.patch("/api/v1/account", {"bot_mode": "always"}).status_code == 400
