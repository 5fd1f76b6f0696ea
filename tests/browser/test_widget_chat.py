"""The widget's chat panel in real headless Chromium, against a stand-in chat server.

The stand-in (tests/browser/fake_chat.py) answers the widget contract of
ARCHITECTURE.md §4 through Playwright routes, so these tests pin what the widget
does with each answer: acknowledgements, repeats, errors, pushes and reloads.
"""

import json
import re
import time
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.fake_chat import JANA, PETR, FakeChat
from tests.browser.test_widget import Website
from tests.factories import make_account, make_operator, make_token

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
BUSY = "We\u2019re a bit busy right now. Leave us your e-mail and we\u2019ll reply there."


@pytest.fixture
def fake():
    return FakeChat()


@pytest.fixture
def open_chat(new_context, fake):
    """A page of the shop with the widget, its panel open; returns (page, watched)."""

    def make(*, viewport: dict = DESKTOP, attrs: str = "", context=None, **kwargs):
        if context is None:
            context = new_context(viewport=viewport, **kwargs)
            fake.install(context)
        page = context.new_page()
        seen = watch(page)
        page.goto(fake.page(attrs=attrs))
        page.locator("chatstatus-widget .bubble").click()
        expect(page.locator("chatstatus-widget .panel")).to_be_visible()
        return page, seen

    return make


def watch(page) -> dict[str, list[str]]:
    """Collect what must never happen: dialogs (injected script ran) and uncaught errors."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(dialog) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    return seen


def widget(page, selector: str):
    return page.locator(f"chatstatus-widget {selector}")


def write(page, text: str) -> None:
    box = widget(page, "textarea")
    box.fill(text)
    box.press("Enter")


def visitor(page, fake: FakeChat) -> str:
    """Wait until every message is acknowledged, the page's socket has identified
    the visitor (pushes reach it from then on) and the page has read its new
    conversation back once; return the visitor's token."""
    expect(widget(page, ".log .m.v .st:not(:empty)")).to_have_count(0)
    token = fake.only_token()
    for _ in range(200):
        read_back = any(c.token == token and c.path.startswith("/conversations/current") for c in fake.calls)
        if read_back and any(socket["token"] == token for socket in fake.sockets):
            return token
        page.wait_for_timeout(20)  # lets Playwright deliver the socket's frames to the fake
    raise AssertionError("the widget never sent its visitor frame or never read its conversation back")


def stored(page, name: str):
    return page.evaluate("name => localStorage.getItem(name)", f"chatstatus:k3y-demo:{name}")


def outbox(page) -> dict:
    return json.loads(stored(page, "outbox") or "{}")


def test_enter_sends_shift_enter_breaks_the_line_and_the_operator_answers_by_name(open_chat, fake, screenshot):
    page, seen = open_chat(attrs='data-group="sales"')
    box = widget(page, "textarea")
    expect(box).to_be_focused()

    box.type("Is the blue gravel bike")
    box.press("Shift+Enter")
    box.type("in stock?")
    assert box.input_value() == "Is the blue gravel bike\nin stock?"
    assert fake.posted() == []
    box.press("Enter")

    mine = widget(page, ".log .m.v")
    expect(mine).to_have_count(1)
    expect(mine.locator(".tx")).to_have_text("Is the blue gravel bike\nin stock?")
    expect(mine.locator(".st")).to_be_hidden()  # acknowledged: no "Sending…"
    expect(box).to_have_value("")
    [call] = fake.posted()
    assert call.path == "/conversations" and call.token is None
    assert call.body["body"] == "Is the blue gravel bike\nin stock?"
    assert UUID.match(call.body["client_id"])
    assert call.body["group"] == "sales"
    assert call.body["page_url"] == "http://shop.test/index.html"
    token = visitor(page, fake)
    assert stored(page, "visitor") == token
    assert {"type": "visitor", "token": token} in fake.frames  # the socket now carries this visitor

    fake.push(token, {"type": "typing", "operator": {"id": JANA["id"], "display_name": JANA["display_name"]}})
    expect(widget(page, ".typing")).to_have_text("Jana Nov\u00e1kov\u00e1 is typing\u2026")
    fake.say(token, body="Yes, in sizes M and L. https://shop.test/gravel-blue")
    reply = widget(page, ".log .m.o")
    expect(reply.locator(".who")).to_have_text("Jana Nov\u00e1kov\u00e1")
    expect(reply.locator("img.av")).to_have_attribute("src", "http://chat.test/media/avatars/jana.png")
    expect(widget(page, ".typing")).to_be_hidden()  # her message ends her typing

    # A second message goes to the conversation, with the token.
    write(page, "Great, thanks!")
    expect(widget(page, ".log .m.v")).to_have_count(2)
    expect(widget(page, ".log .m.v").last.locator(".st")).to_be_hidden()
    second = fake.posted()[-1]
    assert second.path == f"/conversations/{fake.conversations[token]['id']}/messages"
    assert second.token == token and set(second.body) == {"body", "client_id"}
    screenshot(page, "widget-chat-en-desktop")
    assert seen == {"dialogs": [], "errors": []}


def test_messages_are_announced_in_a_polite_log(open_chat, fake):
    page, _ = open_chat()
    log = widget(page, ".log")
    expect(log).to_have_attribute("role", "log")
    expect(log).to_have_attribute("aria-live", "polite")
    write(page, "Hello")
    token = visitor(page, fake)
    before = page.evaluate(
        "() => { const log = document.querySelector('chatstatus-widget').shadowRoot.querySelector('.log');"
        " window.added = []; new MutationObserver(records => records.forEach(r => r.addedNodes.forEach("
        "n => window.added.push(n.textContent)))).observe(log, {childList: true}); return log.children.length; }"
    )

    fake.say(token, body="Hi, how can I help?")

    expect(log.locator(".m.o")).to_have_text("Jana Nov\u00e1kov\u00e1Hi, how can I help?")
    assert before == 1
    # Exactly one node was added to the live region (the reply), so it is read out once,
    # and the visitor's own message was not re-inserted.
    assert page.evaluate("() => window.added") == ["Jana Nov\u00e1kov\u00e1Hi, how can I help?"]


def test_a_busy_message_asks_for_the_email_which_goes_to_patch_visitor(open_chat, fake):
    page, seen = open_chat()
    write(page, "Do you ship to Slovakia?")
    token = visitor(page, fake)

    fake.say(token, author="system", kind="busy", body=BUSY, asks_email=True)

    automatic = widget(page, ".log .m.a")
    expect(automatic.locator(".who")).to_have_text("Automatic message")
    expect(automatic.locator(".tx")).to_have_text(BUSY)
    email = automatic.locator("input[name=email]")
    expect(email).to_be_visible()
    # Styled apart from the operator's replies.
    styles = automatic.evaluate("n => getComputedStyle(n).backgroundColor")
    assert styles != "rgb(243, 244, 246)"
    email.fill("petr@example.com")
    automatic.locator("input[name=name]").fill("Petr Nov\u00e1k")
    automatic.locator("button.send").click()

    expect(automatic.locator(".ok")).to_have_text("Thank you! We\u2019ll reply to petr@example.com.")
    expect(email).to_be_hidden()
    [patch] = [c for c in fake.calls if c.method == "PATCH"]
    assert (patch.path, patch.token) == ("/visitor", token)
    assert patch.body == {"email": "petr@example.com", "name": "Petr Nov\u00e1k"}

    # The visitor has an e-mail now: a later automatic message does not ask again.
    fake.say(token, author="system", kind="busy", body=BUSY, asks_email=True)
    expect(widget(page, ".log .m.a")).to_have_count(2)
    expect(widget(page, "input[name=email]")).to_have_count(1)
    expect(widget(page, ".log .m.a").last.locator("input")).to_have_count(0)
    assert seen == {"dialogs": [], "errors": []}


def test_a_bot_answer_is_styled_apart_from_an_operator_reply(open_chat, fake):
    page, _ = open_chat()
    write(page, "What are your opening hours?")
    token = visitor(page, fake)

    fake.say(token, author="bot", kind="faq", body="We are open 9\u201317 on weekdays.")
    fake.say(token, body="Anything else?", operator=PETR)

    bot = widget(page, ".log .m.b")
    operator = widget(page, ".log .m.o")
    expect(bot.locator(".who")).to_have_text("Virtual assistant")
    expect(operator.locator(".who")).to_have_text("Petr")
    expect(operator.locator("img")).to_have_count(0)  # no avatar_url, no image
    colours = [node.evaluate("n => getComputedStyle(n).backgroundColor") for node in (bot, operator)]
    assert colours[0] != colours[1]


def test_the_offline_panel_is_the_same_chat_and_the_server_asks_for_an_email(new_context, fake, screenshot):
    fake.status.update(status="offline", reason="no_operator_online")
    context = new_context()
    fake.install(context)
    page = context.new_page()
    page.goto(fake.page(attrs="data-hide-when-offline"))
    host = page.locator("chatstatus-widget")
    expect(widget(page, ".w")).to_have_attribute("data-status", "offline")
    expect(host).to_be_hidden()  # offline, asked to hide, and no conversation yet
    fake.set_status("online")
    widget(page, ".bubble").click()
    write(page, "Hello?")
    token = visitor(page, fake)

    fake.set_status("offline")
    expect(widget(page, ".intro")).to_have_text(
        "Nobody can answer right now. Leave us a message and we\u2019ll get back to you by e-mail."
    )
    write(page, "Anyone there?")
    offline = "We\u2019re offline now. Leave us your e-mail and we\u2019ll write back."
    fake.say(token, author="system", kind="offline", body=offline, asks_email=True)
    expect(widget(page, ".log .m.a .tx")).to_have_text(offline)
    expect(widget(page, ".log .m.a input[name=email]")).to_be_visible()
    screenshot(page, "widget-chat-offline-en-desktop")

    # Closed and reloaded while offline: the visitor has a conversation, so the widget stays.
    widget(page, ".x").click()
    expect(host).to_be_visible()
    page.reload()
    expect(widget(page, ".w")).to_have_attribute("data-status", "offline")
    expect(widget(page, ".bubble")).to_be_visible()
    widget(page, ".bubble").click()
    expect(widget(page, ".log .m")).to_have_count(3)

    # Another visitor (no token) on the same offline page sees nothing.
    stranger = new_context()
    fake.install(stranger)
    other = stranger.new_page()
    other.goto(fake.page(attrs="data-hide-when-offline"))
    expect(widget(other, ".w")).to_have_attribute("data-status", "offline")
    expect(other.locator("chatstatus-widget")).to_be_hidden()


def test_a_reload_keeps_the_history_and_resends_the_unacknowledged_message_once(open_chat, fake):
    page, seen = open_chat()
    write(page, "First question")
    token = visitor(page, fake)
    fake.say(token, body="Hello! Ask away.")
    expect(widget(page, ".log .m.o")).to_have_count(1)

    # The network drops every attempt at the second message for now.
    for _ in range(10):
        fake.plan("POST", r"/messages$", abort=True)
    write(page, "Second question")
    pending = widget(page, ".log .m.v").last
    expect(pending.locator(".st")).to_have_text("Sending\u2026")
    [entry] = outbox(page).values()
    assert entry["b"] == "Second question"

    calls_before = len(fake.calls)
    page.reload()
    widget(page, ".bubble").click()
    # The history came back from the server with the stored token; the unacknowledged
    # message from this browser's outbox, still "sending…".
    expect(widget(page, ".log .m")).to_have_count(3)
    expect(widget(page, ".log .m").nth(0).locator(".tx")).to_have_text("First question")
    expect(widget(page, ".log .m").nth(1).locator(".tx")).to_have_text("Hello! Ask away.")
    expect(widget(page, ".log .m").nth(2).locator(".st")).to_have_text("Sending\u2026")
    reloaded = fake.calls[calls_before:]
    assert [c.token for c in reloaded if c.path.startswith("/conversations/current")] == [token]

    fake.planned.clear()  # the network is back: the next retry goes through
    expect(widget(page, ".log .m").nth(2).locator(".st")).to_be_hidden(timeout=20_000)
    attempts = [c.body["client_id"] for c in fake.posted() if c.body["body"] == "Second question"]
    assert len(attempts) >= 2
    assert set(attempts) == {entry["c"]}
    assert outbox(page) == {}
    assert [m["body"] for m in fake.messages[fake.conversations[token]["id"]]] == [
        "First question",
        "Hello! Ask away.",
        "Second question",
    ]
    assert seen == {"dialogs": [], "errors": []}


def test_a_lost_acknowledgement_is_retried_and_the_server_repeat_is_not_a_duplicate(open_chat, fake):
    page, _ = open_chat()
    fake.plan("POST", r"^/conversations$", store_then_abort=True)

    write(page, "Hello")

    expect(widget(page, ".log .m.v .st")).to_be_hidden(timeout=10_000)
    first, second = fake.posted()
    assert first.body["client_id"] == second.body["client_id"]
    assert len(fake.messages[fake.conversations[fake.only_token()]["id"]]) == 1
    expect(widget(page, ".log .m")).to_have_count(1)


def test_html_in_a_message_is_text_and_links_are_made_safe(open_chat, fake):
    page, seen = open_chat()
    write(page, HOSTILE)
    expect(widget(page, ".log .m.v .tx")).to_have_text(HOSTILE)
    token = visitor(page, fake)

    fake.say(
        token,
        body=f"{HOSTILE} Our terms: https://shop.test/terms?x=1&y=2. Not this: javascript:alert(3) "
        'nor <a href="javascript:alert(4)">this</a> nor data:text/html,hi',
        operator=PETR,
    )

    reply = widget(page, ".log .m.o .tx")
    expect(reply).to_contain_text(HOSTILE)
    links = reply.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://shop.test/terms?x=1&y=2")
    expect(links).to_have_text("https://shop.test/terms?x=1&y=2")  # the full stop stays text
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(links).to_have_attribute("target", "_blank")
    assert widget(page, ".log img").count() == 0  # Petr has no avatar: no image at all
    assert widget(page, ".log script").count() == 0
    page.wait_for_timeout(200)  # an injected handler would have fired by now
    assert seen == {"dialogs": [], "errors": []}


def test_a_429_waits_for_retry_after_and_then_sends(open_chat, fake):
    page, _ = open_chat()
    fake.plan("POST", r"^/conversations$", status=429, body={"error": "rate_limited"}, headers={"Retry-After": "2"})

    started = time.monotonic()
    write(page, "Hello")
    expect(widget(page, ".log .m.v .st")).to_have_text("Sending\u2026")
    expect(widget(page, ".log .m.v .st")).to_be_hidden(timeout=10_000)

    assert time.monotonic() - started >= 1.9
    first, second = fake.posted()
    assert first.body["client_id"] == second.body["client_id"]


def test_a_400_shows_the_error_next_to_the_message_and_lets_the_visitor_edit_it(open_chat, fake):
    page, _ = open_chat()
    reason = "This message contains a forbidden word."
    fake.plan("POST", r"^/conversations$", status=400, body={"error": "invalid", "fields": {"body": [reason]}})

    write(page, "Hello dumbo")

    message = widget(page, ".log .m.v")
    expect(message.locator(".st")).to_have_text(reason)
    message.locator("button.ed").click()
    expect(widget(page, ".log .m")).to_have_count(0)
    box = widget(page, "textarea")
    expect(box).to_have_value("Hello dumbo")
    expect(box).to_be_focused()
    box.fill("Hello there")
    box.press("Enter")
    expect(widget(page, ".log .m.v .st")).to_be_hidden()
    assert [c.body["body"] for c in fake.posted()] == ["Hello dumbo", "Hello there"]


def test_a_message_over_4000_characters_is_refused_in_the_browser(open_chat, fake):
    page, _ = open_chat()
    box = widget(page, "textarea")
    box.fill("a" * 4001)
    expect(widget(page, ".cnt")).to_have_text("4001 / 4000")
    box.press("Enter")
    expect(widget(page, ".compose .note")).to_have_text("Your message is too long (4,000 characters at most).")
    expect(box).to_have_attribute("aria-invalid", "true")
    assert fake.posted() == []
    box.press("Backspace")
    box.press("Enter")
    expect(widget(page, ".log .m.v .st")).to_be_hidden()
    assert len(fake.posted()[0].body["body"]) == 4000


def test_a_conversation_gone_from_the_server_drops_the_token_and_starts_afresh(open_chat, fake):
    page, _ = open_chat()
    write(page, "Hello")
    old = visitor(page, fake)
    del fake.conversations[old], fake.visitors[old]  # deleted on the server

    write(page, "Still there?")

    expect(widget(page, ".log .m.v")).to_have_count(1)
    expect(widget(page, ".log .m.v .tx")).to_have_text("Still there?")
    expect(widget(page, ".log .m.v .st")).to_be_hidden()
    new = fake.only_token()
    assert new != old and stored(page, "visitor") == new
    last, fresh = fake.posted()[-2:]
    assert last.path.endswith("/messages") and last.token == old
    assert (fresh.path, fresh.token) == ("/conversations", None)
    assert fresh.body["client_id"] == last.body["client_id"]


def test_a_token_from_another_tab_is_picked_up(new_context, fake, open_chat):
    context = new_context()
    fake.install(context)
    first, _ = open_chat(context=context)
    second, _ = open_chat(context=context)

    write(first, "Written in the first tab")
    token = visitor(first, fake)

    expect(widget(second, ".log .m.v .tx")).to_have_text("Written in the first tab")
    assert fake.frames.count({"type": "visitor", "token": token}) == 2  # each tab's own socket
    fake.say(token, body="Hello to both tabs")
    for page in (first, second):
        expect(widget(page, ".log .m.o .tx")).to_have_text("Hello to both tabs")


def test_a_gap_in_seq_is_filled_from_the_server(open_chat, fake):
    page, _ = open_chat()
    write(page, "Hello")
    token = visitor(page, fake)
    # Said while the socket was away: stored, never pushed.
    fake.say(token, body="One", push=False)
    fake.say(token, body="Two", push=False)
    fake.say(token, body="Three")  # seq 4 after seq 1: the widget asks for what is after 1

    expect(widget(page, ".log .m.o .tx")).to_have_text(["One", "Two", "Three"])
    assert "/conversations/current?after=1" in [c.path for c in fake.calls]
    expect(widget(page, ".log .m")).to_have_count(4)


def test_a_message_answered_past_a_gap_fetches_what_is_missing(open_chat, fake):
    page, _ = open_chat()
    write(page, "Hello")
    token = visitor(page, fake)
    # Said while the socket was away: stored, never pushed. The visitor's next
    # message is answered with seq 3: the widget has seen only 1.
    fake.say(token, body="Missed", push=False)
    write(page, "Anyone?")

    expect(widget(page, ".log .m .tx")).to_have_text(["Hello", "Missed", "Anyone?"])
    assert "/conversations/current?after=1" in [c.path for c in fake.calls]


def test_after_a_reconnect_the_widget_fetches_what_it_missed_and_resends(fake, new_context):
    context = new_context()
    fake.install(context)
    page = context.new_page()
    page.clock.install()  # the reconnect backoff passes only when the test says so
    page.goto(fake.page())
    widget(page, ".bubble").click()
    write(page, "Hello")
    token = visitor(page, fake)
    fake.say(token, body="Hi!")
    expect(widget(page, ".log .m.o")).to_have_count(1)

    # The page hears the close: a 1012 asks for the status at once, and sets
    # the reconnect timer that moving the clock (below) fires.
    with page.expect_request(
        lambda request: request.method == "GET" and urlsplit(request.url).path.endswith("/status")
    ):
        for socket in list(fake.sockets):
            socket["ws"].close(code=1012)  # the server restarts
    fake.say(token, body="Said while you were away", push=False)
    for _ in range(5):
        fake.plan("POST", r"/messages$", abort=True)
    write(page, "Are you there?")
    expect(widget(page, ".log .m.v").last.locator(".st")).to_have_text("Sending\u2026")
    fake.planned.clear()
    page.clock.run_for(9_000)  # past the widget's first reconnect delay (0.5–8 s)

    expect(widget(page, ".log .m.o .tx")).to_have_text(["Hi!", "Said while you were away"])
    expect(widget(page, ".log .m.v").last.locator(".st")).to_be_hidden()
    assert "/conversations/current?after=2" in [c.path for c in fake.calls]
    assert fake.frames.count({"type": "visitor", "token": token}) == 2


def test_the_typing_indicator_goes_after_six_seconds_without_a_new_frame(fake, new_context):
    context = new_context()
    fake.install(context)
    page = context.new_page()
    page.clock.install()  # the six seconds pass only when the test says so
    page.goto(fake.page())
    widget(page, ".bubble").click()
    write(page, "Hello")
    token = visitor(page, fake)
    frame = {"type": "typing", "operator": {"id": PETR["id"], "display_name": "Petr"}}

    fake.push(token, frame)
    typing = widget(page, ".typing")
    expect(typing).to_have_text("Petr is typing\u2026")
    page.clock.run_for(5_000)
    fake.push(token, frame)  # still typing: the six seconds start again
    page.clock.run_for(5_000)
    expect(typing).to_be_visible()
    page.clock.run_for(1_100)
    expect(typing).to_be_hidden()


@pytest.mark.parametrize(
    ("language", "viewport", "name"),
    [
        ("en", DESKTOP, "en-desktop"),
        ("en", PHONE, "en-phone"),
        ("cs", DESKTOP, "cs-desktop"),
        ("cs", PHONE, "cs-phone"),
    ],
)
def test_screenshots_of_the_open_chat(open_chat, fake, screenshot, language, viewport, name):
    fake.status["language"] = language
    fake.status["account_name"] = "Kola s.r.o." if language == "cs" else "Bike shop"
    page, seen = open_chat(viewport=viewport)
    first = "Hi, is the blue gravel bike in stock?"
    if language == "cs":
        first = "Dobr\u00fd den, m\u00e1te modr\u00e9 gravel kolo?"
    write(page, first)
    token = visitor(page, fake)
    busy = (
        "Moment\u00e1ln\u011b m\u00e1me hodn\u011b pr\u00e1ce. Nechte n\u00e1m e-mail a odpov\u00edme tam."
        if language == "cs"
        else BUSY
    )
    fake.say(token, author="system", kind="busy", body=busy, asks_email=True)
    fake.say(
        token,
        body="Ano, ve velikosti M i L: https://kola.example/gravel-modre"
        if language == "cs"
        else "Yes, in sizes M and L: https://shop.example/gravel-blue",
    )
    fake.push(token, {"type": "typing", "operator": {"id": JANA["id"], "display_name": JANA["display_name"]}})
    widget(page, "textarea").fill("D\u011bkuji!" if language == "cs" else "Thank you!")
    expect(widget(page, ".log .m")).to_have_count(3)
    expect(widget(page, ".typing")).to_be_visible()
    if language == "cs":
        expect(widget(page, ".log .m.a .who")).to_have_text("Automatick\u00e1 zpr\u00e1va")
        expect(widget(page, ".compose button.send")).to_have_text("Odeslat")
        expect(widget(page, ".ask button.send")).to_have_text("Ulo\u017eit")
        expect(widget(page, ".typing")).to_have_text("Jana Nov\u00e1kov\u00e1 p\u00ed\u0161e\u2026")
    path = screenshot(page, f"widget-chat-{name}")
    assert path.exists()
    # The panel fits the viewport, and nothing inside it overflows sideways.
    box = widget(page, ".panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    assert box["y"] >= 0
    assert widget(page, ".body").evaluate("n => n.scrollWidth <= n.clientWidth")
    assert seen == {"dialogs": [], "errors": []}


# --- against the real server ------------------------------------------------------------


def test_a_chat_through_the_real_server(live_server, new_context):
    """The same widget against Daphne, with nobody online (so it runs in either test mode):
    only public contracts, the widget's and the operator's REST API, so the fake above
    cannot drift from the server unnoticed. Automatic messages come from timers (Celery or
    the embedded ticker), which this server alone does not promise: they are not awaited."""
    account = make_account(name="Bike shop", language="en")
    operator = make_operator(account=account, name="Jana")
    auth = {"Authorization": f"Token {make_token(operator, device='laptop')}"}
    site = Website()
    try:
        url = site.add("/index.html", server=live_server.url, key=account.widget_key)
        page = new_context().new_page()
        seen = watch(page)
        page.goto(url)
        expect(widget(page, ".w")).to_have_attribute("data-status", "offline")
        widget(page, ".bubble").click()

        write(page, "Is the blue gravel bike in stock?")

        expect(widget(page, ".log .m.v .tx")).to_have_text("Is the blue gravel bike in stock?")
        expect(widget(page, ".log .m.v .st:not(:empty)")).to_have_count(0)
        token = page.evaluate("k => localStorage.getItem(k)", f"chatstatus:{account.widget_key}:visitor")
        assert token
        listed = requests.get(f"{live_server.url}/api/v1/conversations", headers=auth, timeout=5)
        assert listed.status_code == 200, listed.text
        [conversation] = listed.json()["results"]
        answer = requests.post(
            f"{live_server.url}/api/v1/conversations/{conversation['id']}/messages",
            json={"body": "Yes, in M and L: https://shop.example/gravel", "client_id": "op-1"},
            headers=auth,
            timeout=5,
        )
        assert answer.status_code == 201, answer.text

        reply = widget(page, ".log .m.o")  # pushed over the widget's socket
        expect(reply.locator(".who")).to_have_text("Jana")
        expect(reply.locator(".tx a")).to_have_attribute("href", "https://shop.example/gravel")
        # The widget's token works on the contract's own endpoints.
        patched = requests.patch(
            f"{live_server.url}/widget/v1/{account.widget_key}/visitor",
            json={"email": "petr@example.com"},
            headers={"X-Visitor-Token": token},
            timeout=5,
        )
        assert patched.status_code == 200, patched.text

        page.reload()
        widget(page, ".bubble").click()
        expect(widget(page, ".log .m.v .tx")).to_have_text("Is the blue gravel bike in stock?")
        expect(widget(page, ".log .m.o .tx")).to_have_text("Yes, in M and L: https://shop.example/gravel")
        expect(widget(page, "input[name=email]")).to_have_count(0)  # the visitor's e-mail is known now
        assert seen == {"dialogs": [], "errors": []}
    finally:
        site.close()
