"""The inbox in real headless Chromium against a real Daphne process.

Visitors write through the widget's public endpoint on the live server; the
operator's open inbox hears it over the operator socket, replies, and the
operator's other tab shows the reply at once.
"""

import datetime
import itertools
import threading

import pytest
import requests
from django.db import connection
from playwright.sync_api import Page, expect

from accounts.models import Account, Operator, Status
from conversations import services
from conversations.models import Message
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_dashboard import log_in, wait_until_live
from tests.factories import make_account, make_group, make_operator

_ids = itertools.count(1)

# Notification and WebAudio stand-ins that count what the page asked for
# (headless Chromium has neither a notification centre nor speakers).
ALERT_STUBS = """
window.__alerts = {asked: 0, notes: [], beeps: 0};
class FakeNotification {
  constructor(title, options) { window.__alerts.notes.push({title, body: options.body, tag: options.tag}); }
  addEventListener() {}
  close() {}
}
FakeNotification.permission = "default";
FakeNotification.requestPermission = () => {
  window.__alerts.asked += 1;
  FakeNotification.permission = "granted";
  return Promise.resolve("granted");
};
window.Notification = FakeNotification;
class FakeAudioContext {
  constructor() { this.state = "suspended"; this.currentTime = 0; this.destination = {}; }
  resume() { this.state = "running"; return Promise.resolve(); }
  createOscillator() {
    return {frequency: {setValueAtTime() {}}, connect() {}, start() { window.__alerts.beeps += 1; }, stop() {}};
  }
  createGain() { return {gain: {setValueAtTime() {}, exponentialRampToValueAtTime() {}}, connect() {}}; }
}
window.AudioContext = FakeAudioContext;
"""


@pytest.fixture
def shop(transactional_db):
    account = make_account(name="Kavárna U Lípy", timezone="Europe/Prague")
    make_group(account=account, key="sales")
    return account


def visitor_writes(server, account: Account, body: str, *, token: str | None = None, language: str = "en", **fields):
    """A visitor's message through the widget's public endpoint; returns its answer."""
    headers = {"Accept-Language": language}
    if token:
        headers["X-Visitor-Token"] = token
    response = requests.post(
        f"{server.url}/widget/v1/{account.widget_key}/conversations",
        json={"body": body, "client_id": f"visitor-{next(_ids)}", **fields},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def beside_playwright(service, **kwargs):
    """Call a service that publishes (``async_to_sync``) from a thread of its
    own: Playwright's sync API keeps an event loop running in this one."""
    outcome = {}

    def run() -> None:
        try:
            outcome["value"] = service(**kwargs)
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=30)
    return outcome["value"]


def open_inbox(page: Page, server, path: str = "/inbox/") -> Page:
    page.goto(server.url + path)
    wait_until_live(page)
    return page


def row(page: Page, conversation_id: int):
    return page.locator(f'.conversation-row[data-conversation="{conversation_id}"]')


def nav_count(page: Page):
    return page.locator(".nav-count [data-inbox-count]")


def alerts(page: Page) -> dict:
    return page.evaluate("window.__alerts")


def test_a_visitor_writes_the_operator_replies_and_every_tab_follows(live_server, new_context, shop, screenshot):
    operator = make_operator(account=shop, status=Status.ONLINE, name="Jana Dvořáková")
    # Before anyone is online: the visitor gets the automatic offline message.
    earlier = visitor_writes(
        live_server, shop, "Máte zítra otevřeno?", name="Karel Čapek", email="karel@example.cz",
        page_url="https://kavarna.example/menu",
    )  # fmt: skip
    browser = new_context()
    browser.add_init_script(ALERT_STUBS)
    tab = open_inbox(log_in(browser, live_server, operator), live_server)
    other_tab = open_inbox(browser.new_page(), live_server)

    expect(row(tab, earlier["conversation"]["id"])).to_be_visible()
    expect(nav_count(tab)).to_have_text("1")
    expect(tab).to_have_title("(1) Inbox · chatstatus")
    # Notifications are asked for only when the operator clicks, never on load.
    assert alerts(tab)["asked"] == 0
    for page in (tab, other_tab):
        page.get_by_role("button", name="Turn on desktop notifications").click()
        expect(page.locator("#notify-state")).to_have_text("Desktop notifications are on")
    # One tab looks at the earlier conversation; its history shows the automatic message apart.
    row(tab, earlier["conversation"]["id"]).click()
    expect(tab.locator('#thread .message[data-author="system"]')).to_have_count(1)
    expect(tab.locator('#thread .message[data-author="visitor"] .message-text')).to_have_text("Máte zítra otevřeno?")
    expect(tab.locator('[data-detail="email"] a')).to_have_attribute("href", "mailto:karel@example.cz")
    expect(tab.locator('[data-detail="page"] a')).to_have_attribute("rel", "noopener noreferrer nofollow")

    started = visitor_writes(
        live_server, shop, "Do you ship to Brno? See https://example.com/item?id=7.", name="Petr Novák",
        page_url="https://kavarna.example/shop",
    )  # fmt: skip
    conversation_id = started["conversation"]["id"]

    # It should appear at once at the top of both tabs' lists, waiting, and count.
    for page in (tab, other_tab):
        expect(page.locator(".conversation-row").first).to_have_attribute("data-conversation", str(conversation_id))
        expect(row(page, conversation_id).locator(".badge-waiting")).to_be_visible()
        expect(row(page, conversation_id).locator(".preview-body")).to_contain_text("Do you ship to Brno?")
        expect(nav_count(page)).to_have_text("2")
        expect(page).to_have_title("(2) Inbox · chatstatus")
    # Neither tab was looking at it: one beep and one notification between them (the first tab claims it).
    notes = alerts(tab)["notes"] + alerts(other_tab)["notes"]
    assert [(note["title"], note["tag"]) for note in notes] == [
        ("New conversation: Petr Novák", f"conversation-{conversation_id}")
    ]
    assert alerts(tab)["beeps"] + alerts(other_tab)["beeps"] == 1

    other_tab.goto(f"{live_server.url}/inbox/{conversation_id}/")
    wait_until_live(other_tab)
    row(tab, conversation_id).click()
    expect(tab.locator("#pane-title")).to_have_text("Petr Novák")
    link = tab.locator('#thread .message[data-author="visitor"] .message-text a')
    expect(link).to_have_attribute("href", "https://example.com/item?id=7")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")

    box = tab.get_by_label("Reply")
    box.type("Yes, we do.")
    box.press("Shift+Enter")
    box.type("Delivery takes two days.")
    box.press("Enter")

    mine = tab.locator('#thread .message[data-author="operator"]')
    expect(mine).to_have_count(1)
    expect(mine.locator(".message-text")).to_have_text("Yes, we do.\nDelivery takes two days.")
    expect(mine.locator(".message-state")).to_be_hidden()
    expect(box).to_have_value("")
    # The other tab shows the reply at once (over the socket), once.
    theirs = other_tab.locator('#thread .message[data-author="operator"]')
    expect(theirs).to_have_count(1)
    expect(theirs.locator(".message-author")).to_have_text("You")
    expect(theirs.locator(".message-text")).to_have_text("Yes, we do.\nDelivery takes two days.")
    for page in (tab, other_tab):
        expect(nav_count(page)).to_have_text("1")
        expect(page).to_have_title("(1) Inbox · chatstatus")
        expect(row(page, conversation_id).locator(".badge-waiting")).to_be_hidden()
        expect(row(page, conversation_id).locator(".conversation-assignee")).to_have_text("You")
    tab.wait_for_timeout(300)
    expect(mine).to_have_count(1)  # the socket's copy and the answer's are one message
    stored = Message.objects.filter(conversation_id=conversation_id, author="operator")
    assert [m.body for m in stored] == ["Yes, we do.\nDelivery takes two days."]
    assert stored[0].client_id.startswith("op-")
    # The visitor's widget reads the reply too.
    current = requests.get(
        f"{live_server.url}/widget/v1/{shop.widget_key}/conversations/current",
        headers={"X-Visitor-Token": started["visitor_token"]},
        timeout=10,
    ).json()
    assert current["messages"][-1]["body"] == "Yes, we do.\nDelivery takes two days."
    screenshot(tab, "inbox-live-reply-desktop-en")

    # Close it: it leaves the open lists of both tabs and shows in the closed list.
    tab.get_by_role("button", name="Close conversation").click()
    expect(tab.locator("#pane-closed")).to_be_visible()
    expect(tab.locator("#reply-form")).to_be_hidden()
    expect(row(other_tab, conversation_id)).to_have_count(0)
    other_tab.locator('.inbox-views a[data-view="closed"]').click()
    expect(row(other_tab, conversation_id)).to_be_visible()


def test_a_reply_lost_on_the_way_is_sent_again_with_the_same_client_id_and_stored_once(live_server, new_context, shop):
    operator = make_operator(account=shop, status=Status.ONLINE)
    started = visitor_writes(live_server, shop, "Hello?", name="Eva")
    conversation_id = started["conversation"]["id"]
    page = log_in(new_context(), live_server, operator)
    sent: list[str] = []

    def lose(route, request):
        sent.append(request.post_data)
        if len(sent) == 1:
            route.abort("connectionreset")  # the first reply never reaches the server
        elif len(sent) == 3:
            route.fetch()  # the second reply is stored...
            route.abort("connectionreset")  # ...and its answer is lost on the way back
        else:
            route.continue_()

    page.route("**/inbox/*/messages", lose)
    open_inbox(page, live_server, f"/inbox/{conversation_id}/")
    box = page.get_by_label("Reply")
    mine = page.locator('#thread .message[data-author="operator"]')

    box.fill("Hi Eva!")
    box.press("Enter")
    # It should retry by itself with the very same client_id, and show the reply as sent.
    expect(mine.locator(".message-state")).to_be_hidden(timeout=15_000)
    assert len(sent) == 2 and sent[0] == sent[1]

    box.fill("How can I help?")
    box.press("Enter")
    # The socket brings the stored reply (or a retry gets it with a 200): one message either way.
    expect(mine).to_have_count(2)
    expect(mine.locator(".message-state")).to_have_count(2)
    expect(mine.nth(1).locator(".message-state")).to_be_hidden(timeout=15_000)
    page.wait_for_timeout(2500)  # longer than the first retry's delay
    expect(mine).to_have_count(2)
    assert len(set(sent[2:])) == 1
    stored = Message.objects.filter(conversation_id=conversation_id, author="operator").order_by("seq")
    assert [m.body for m in stored] == ["Hi Eva!", "How can I help?"]
    assert page.evaluate(f"localStorage.getItem('chatstatus.inbox.pending.{operator.id}')") == "[]"


LOOKS = [("desktop", DESKTOP), ("phone", PHONE)]


@pytest.mark.parametrize("language", ["en", "cs"])
@pytest.mark.parametrize(("device", "viewport"), LOOKS)
def test_screenshots_of_the_inbox(live_server, new_context, shop, screenshot, language, device, viewport):
    Account.objects.filter(id=shop.id).update(language=language)
    operator = make_operator(account=shop, status=Status.ONLINE, name="Jana Dvořáková")
    Operator.objects.filter(id=operator.id).update(language=language)
    colleague = make_operator(account=shop, name="Věra Veselá")
    offline = visitor_writes(
        live_server, shop, "Máte zítra otevřeno? Chtěli bychom přijít ve čtyřech.", name="Karel Čapek",
        email="karel@example.cz", page_url="https://kavarna.example/menu", language="cs", time_zone="Europe/Prague",
    )  # fmt: skip
    page = log_in(new_context(viewport=viewport), live_server, operator)
    answered = visitor_writes(
        live_server, shop, "Hi! Is the terrace open today?\nWe have a dog with us.", name="Petr Novák",
        page_url="https://kavarna.example/", group="sales",
    )  # fmt: skip
    beside_playwright(
        services.operator_message_post,
        conversation_id=answered["conversation"]["id"], operator=colleague,
        body="Hello Petr, yes it is, until 22:00. Dogs are welcome: https://kavarna.example/dogs", client_id="c1",
    )  # fmt: skip
    visitor_writes(live_server, shop, "Great, thank you!", token=answered["visitor_token"], language="en")
    visitor_writes(live_server, shop, "Do you sell gift cards?", email="anna@example.com")
    suffix = f"{device}-{language}"

    open_inbox(page, live_server)
    expect(page.locator(".conversation-row")).to_have_count(3)
    screenshot(page, f"inbox-list-{suffix}")
    row(page, offline["conversation"]["id"]).click()
    expect(page.locator('#thread .message[data-author="system"]')).to_have_count(1)
    screenshot(page, f"inbox-offline-message-{suffix}")
    if device == "phone":
        # The visitor's details fold away on a phone.
        expect(page.locator("#visitor-card")).to_be_hidden()
        page.get_by_role("button", name="Visitor details" if language == "en" else "Údaje o návštěvníkovi").click()
        expect(page.locator("#visitor-card")).to_be_visible()
        screenshot(page, f"inbox-visitor-details-{suffix}")
        # The list and the conversation stack; the back button returns to the list.
        expect(page.locator(".inbox-list")).to_be_hidden()
        page.locator("#back-button").click()
        expect(page.locator(".inbox-list")).to_be_visible()
        expect(page.locator(".inbox-pane")).to_be_hidden()
    row(page, answered["conversation"]["id"]).click()
    expect(page.locator("#thread .message")).to_have_count(3)
    page.get_by_label("Reply" if language == "en" else "Odpověď").fill("See you tonight!")
    page.keyboard.press("Enter")
    expect(page.locator('#thread .message[data-mine="true"]')).to_have_count(1)
    expect(page.locator('#thread .message[data-mine="true"] .message-state')).to_be_hidden()
    screenshot(page, f"inbox-conversation-{suffix}")


def test_the_visitors_local_time_shows_in_their_zone_and_moves_with_the_minute(live_server, new_context, shop):
    operator = make_operator(account=shop, status=Status.ONLINE, name="Jana Dvořáková")
    far = visitor_writes(live_server, shop, "Konnichiwa!", name="Aiko", time_zone="Asia/Tokyo")
    unknown = visitor_writes(live_server, shop, "Hello?", name="Bob")
    context = new_context(timezone_id="Europe/Prague")
    # The operator's browser keeps the clock: 10:15:30 UTC is 19:15 in Tokyo.
    context.clock.install(time=datetime.datetime(2026, 3, 2, 10, 15, 30, tzinfo=datetime.UTC))
    page = open_inbox(log_in(context, live_server, operator), live_server)

    row(page, far["conversation"]["id"]).click()
    local = page.locator('[data-detail="local-time"]')
    expect(local).to_have_text("19:15 (Asia/Tokyo)")
    expect(page.locator("dt", has_text="Local time")).to_be_visible()
    # It should move on by itself when the minute turns, without a request.
    context.clock.run_for(60_000)
    expect(local).to_have_text("19:16 (Asia/Tokyo)")
    # A visitor whose browser told no zone: no row rather than a guess.
    row(page, unknown["conversation"]["id"]).click()
    expect(page.locator("#pane-title")).to_have_text("Bob")
    expect(page.locator('[data-detail="page"]')).to_have_text("Not given")
    expect(local).to_be_hidden()


def test_a_hello_that_came_before_the_inbox_script_still_brings_what_changed_since_the_page(
    live_server, new_context, shop
):
    operator = make_operator(account=shop, status=Status.ONLINE)
    page = log_in(new_context(), live_server, operator)
    held = []
    page.route("**/static/dashboard/inbox.js*", lambda route: held.append(route))  # inbox.js arrives late
    page.goto(live_server.url + "/inbox/", wait_until="commit")  # "load" waits for every script
    wait_until_live(page)  # app.js has the hello; inbox.js has not run yet
    assert len(held) == 1
    expect(page.locator(".conversation-row")).to_have_count(0)
    # Written after the page was rendered, while nobody listened for its frame.
    conversation = beside_playwright(
        services.visitor_conversation_start,
        account_id=shop.id,
        token=None,
        body="Late",
        client_id="late-1",
        name="Late",
    ).conversation
    held[0].continue_()
    expect(row(page, conversation.id)).to_be_visible()
    expect(nav_count(page)).to_have_text("1")


def test_the_lists_switch_without_a_reload_and_show_older_pages(live_server, new_context, shop):
    operator = make_operator(account=shop, status=Status.ONLINE)

    def many() -> list[int]:
        return [
            services.visitor_conversation_start(
                account_id=shop.id, token=None, body=f"Question {n}", client_id=f"many-{n}", name=f"Visitor {n:02}"
            ).conversation.id
            for n in range(52)
        ]

    ids = beside_playwright(many)
    page = log_in(new_context(), live_server, operator)
    # The first page asked again after the socket's hello is held back, to answer
    # after "Show older" has added the older page: it must not take those rows away.
    held = []

    def first_page(url: str) -> bool:
        return url.endswith("/inbox/list.json?view=all")

    def hold(route) -> None:
        held.append(route)

    page.route(first_page, hold)
    with page.expect_request(lambda request: first_page(request.url), timeout=10_000):  # after the hello
        open_inbox(page, live_server)
    rows = page.locator(".conversation-row")

    # It should show the newest 50, then the older ones on demand, in order.
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-conversation", str(ids[-1]))
    page.get_by_role("link", name="Show older").click()
    expect(rows).to_have_count(52)
    expect(rows.last).to_have_attribute("data-conversation", str(ids[0]))
    expect(page.get_by_role("link", name="Show older")).to_be_hidden()
    assert len(held) == 1
    with page.expect_response(lambda response: first_page(response.url)):
        held[0].continue_()
    page.unroute(first_page, hold)
    page.wait_for_timeout(200)
    expect(rows).to_have_count(52)
    expect(page.get_by_role("link", name="Show older")).to_be_hidden()
    url = page.url

    # "Mine" is empty until I reply; the reply moves the conversation there, live.
    page.locator('.inbox-views a[data-view="mine"]').click()
    expect(rows).to_have_count(0)
    expect(page.locator("#list-empty")).to_be_visible()
    assert page.url != url and page.url.endswith("?view=mine")
    beside_playwright(
        services.operator_message_post, conversation_id=ids[3], operator=operator, body="Hi!", client_id="mine-1"
    )
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-conversation", str(ids[3]))
    page.locator('.inbox-views a[data-view="waiting"]').click()
    expect(rows).to_have_count(50)
    expect(row(page, ids[3])).to_have_count(0)
