"""Every dashboard page speaks Czech to an operator who chose Czech."""

import gettext
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import Operator, Status
from accounts.services import operator_update
from conversations.faq.services import faq_entry_create
from hours.services import opening_hours_set
from presence.models import Source
from presence.services import operator_set_status
from tests.conversations.conftest import visitor_writes
from tests.factories import make_account, make_group, make_operator, owner_of

PO_FILE = Path(settings.BASE_DIR) / "locale" / "cs" / "LC_MESSAGES" / "django.po"
# Shorter strings ("API", "Name") are too likely to turn up inside other words.
MIN_LENGTH = 6
SHOWN_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt", "data-confirm"}


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw)


def po_entries() -> list[tuple[str, str]]:
    entries = []
    for block in PO_FILE.read_text(encoding="utf-8").split("\n\n"):
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        match = re.search(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', body + "\n", re.M)
        if match:
            msgid, msgstr = ("".join(re.findall(r'"(.*)"', part)) for part in match.groups())
            entries.append((_unquote(msgid), _unquote(msgstr)))
    return entries


def english_texts() -> set[str]:
    """English msgids whose Czech differs, cut at placeholders into plain fragments."""
    texts = set()
    for msgid, msgstr in po_entries():
        if not msgid or not msgstr or msgid == msgstr:
            continue
        for fragment in re.split(r"%\(\w+\)[sd]|<[^>]+>", msgid):
            fragment = fragment.strip(" .,:;·")
            if len(fragment) >= MIN_LENGTH and fragment not in msgstr:
                texts.add(fragment)
    return texts


class ShownText(HTMLParser):
    """The text a person sees or hears: text nodes (not scripts) and labelling attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden_depth += 1
        self.parts += [value for name, value in attrs if name in SHOWN_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden_depth -= 1

    def handle_data(self, data):
        if not self._hidden_depth:
            self.parts.append(data)


def shows(text: str, page: str) -> bool:
    """Whole words only: "status" is not in "chatstatus"."""
    return re.search(rf"(?<!\w){re.escape(text)}(?!\w)", page) is not None


def shown_text(html: str) -> str:
    parser = ShownText()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


@pytest.fixture
def team(db):
    # A Czech account: the automatic messages' built-in texts (shown as placeholders) are in its language.
    account = make_account(name="Kavárna U Lípy", language="cs")
    owner = owner_of(account)
    operator_update(operator=owner, display_name="Marie Vlastníková", language="cs")
    agent = make_operator(account=account, status=Status.ONLINE, name="Jiří Novák")
    operator_update(operator=agent, language="cs")
    group = make_group(account=account, key="prodej", members=[agent])
    opening_hours_set(
        account=account,
        enabled=True,
        timezone="Europe/Prague",
        weekly={"monday": [{"from": "09:00", "to": "17:00"}], "friday": [{"from": "22:00", "to": "06:00"}]},
        exceptions=[
            {"date": "2026-12-24", "intervals": []},
            {"date": "2026-12-31", "intervals": [{"from": "10:00", "to": "12:00"}]},
        ],
    )
    for source in (Source.DASHBOARD, Source.STALE_SWEEP):
        operator_set_status(operator=owner, status=Status.ONLINE, source=Source.API)
        operator_set_status(operator=owner, status=Status.OFFLINE, source=source)
    conversation = visitor_writes(
        account, "Dobrý den", client_id="cz-1", group_key="prodej", name="Karel", page_url="https://kavarna.cz/"
    ).conversation
    return {
        "account": account,
        "owner": owner,
        "agent": agent,
        "group": group,
        "conversation": conversation,
        "other": make_account(name="Jinde"),
    }


def pages(team) -> list[tuple[str, str, dict | None]]:
    """(who, path, POST data or None) for every page, with forms shown with errors too."""
    agent, group = team["agent"], team["group"]
    return [
        ("owner", reverse("dashboard:overview"), None),
        ("owner", reverse("dashboard:operators"), None),
        ("owner", reverse("dashboard:operator_create"), None),
        ("owner", reverse("dashboard:operator_create"), {"email": "x"}),
        ("owner", reverse("dashboard:operator_edit", args=[agent.id]), None),
        ("owner", reverse("dashboard:groups"), None),
        ("owner", reverse("dashboard:group_create"), {"key": "Bad Key"}),
        ("owner", reverse("dashboard:group_edit", args=[group.id]), None),
        ("owner", reverse("dashboard:hours"), None),
        ("owner", reverse("dashboard:group_hours", args=[group.key]), None),
        (
            "owner",
            reverse("dashboard:hours"),
            {
                "timezone": "Europe/Prague",
                "monday_from": ["9"],
                "monday_to": ["17:00"],
                "exception_date": ["2026-12-24"],
                "exception_kind": ["hours"],
                "exception_hours": ["x"],
            },
        ),
        (
            "owner",
            reverse("dashboard:hours"),
            {"timezone": "Europe/Prague", "monday_from": ["09:00", "10:00"], "monday_to": ["17:00", "11:00"]},
        ),
        ("owner", reverse("dashboard:history"), None),
        ("owner", reverse("dashboard:history") + "?date_from=2026-12-02&date_to=2026-12-01", None),
        ("owner", reverse("dashboard:widget"), None),
        ("owner", reverse("dashboard:widget"), {"allowed_origins": "kavarna.cz"}),
        ("owner", reverse("dashboard:automatic_messages"), None),
        ("owner", reverse("dashboard:automatic_messages"), {"busy_after_seconds": "5", "busy_message": "x" * 1001}),
        ("owner", reverse("dashboard:inbox"), None),
        ("owner", reverse("dashboard:inbox") + "?view=closed", None),
        ("owner", reverse("dashboard:inbox_conversation", args=[team["conversation"].id]), None),
        ("agent", reverse("dashboard:inbox"), None),
        ("owner", reverse("dashboard:profile"), None),
        ("owner", reverse("dashboard:profile"), {"form": "password", "old_password": "x"}),
        ("agent", reverse("dashboard:overview"), None),
        ("agent", reverse("dashboard:operators"), None),
        ("owner", reverse("dashboard:group_edit", args=[make_group(account=team["other"], key="cizi").id]), None),
        ("anonymous", reverse("login"), None),
        ("anonymous", reverse("login"), {"username": "nikdo@example.cz", "password": "spatne-heslo"}),
        ("owner", reverse("dashboard:faq"), None),
        ("owner", reverse("dashboard:faq") + "?q=oteviraci+doba", None),
        ("owner", reverse("dashboard:faq") + "?q=prodavate+kola", None),
        ("owner", reverse("dashboard:faq_create"), {"question": "", "answer": "<b>x</b>", "language": "cs"}),
        ("owner", reverse("dashboard:faq_edit", args=[faq_entry(team).id]), None),
        ("owner", reverse("dashboard:faq_report"), None),
    ]


def faq_entry(team):
    return faq_entry_create(
        account=team["account"],
        question="Jaká je otevírací doba?",
        phrasings=["Kdy máte otevřeno?"],
        answer="Po–Pá 9–17.",
        language="cs",
    )


def render(team, who: str, path: str, data: dict | None, *, language: str) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    if who != "anonymous":
        operator = team[who]
        Operator.objects.filter(id=operator.id).update(language=language)
        client.force_login(operator)
    response = client.get(path) if data is None else client.post(path, data)
    assert response.status_code in (200, 400, 403, 404), (path, response.status_code)
    return shown_text(response.content.decode())


def test_the_czech_catalogue_is_complete_and_compiled():
    entries = po_entries()
    assert len(entries) > 100
    assert [msgid for msgid, msgstr in entries if msgid and not msgstr] == []
    # The committed .mo must match the .po: the server reads only the .mo.
    with PO_FILE.with_suffix(".mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [msgid for msgid, msgstr in entries if msgid and compiled.gettext(msgid) != msgstr]
    assert stale == [], "run: msgfmt -o locale/cs/LC_MESSAGES/django.mo locale/cs/LC_MESSAGES/django.po"


def test_no_english_is_left_on_any_page_in_czech(team):
    english = english_texts()
    for who, path, data in pages(team):
        czech = render(team, who, path, data, language="cs")
        left = sorted(text for text in english if shows(text, czech))
        assert left == [], f"{who} {path} {data}: {left}"


def test_the_same_pages_in_english_show_those_texts(team):
    """The check above would pass on a blank page; here the same texts do show in English."""
    english = english_texts()
    for who, path, data in pages(team):
        shown = render(team, who, path, data, language="en")
        assert any(shows(text, shown) for text in english), f"{who} {path}"
