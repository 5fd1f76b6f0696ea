"""The embeddable widget in real headless Chromium, on a website of another origin.

The server is a separate Daphne process sharing the test database and Redis:
what the test does through services (presence, status) reaches it, and its
pushes reach the page, exactly as in production.
"""

import re
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Status
from hours.services import opening_hours_set
from tests.browser.conftest import PHONE
from tests.factories import make_account, make_operator, make_token
from tests.live import free_port
from tests.widget.helpers import make_present

ONLINE_TEXT = "Chat with us"
OFFLINE_TEXT = "We\u2019re offline \u2014 leave us a message"
HOSTILE = "<img src=x onerror=alert(1)>"

# Page CSS that would wreck a widget living in the light DOM.
HOSTILE_CSS = """
* { color: red !important; font-family: "Courier New", serif !important; letter-spacing: 4px !important;
    line-height: 3 !important; text-transform: uppercase !important; box-sizing: content-box !important; }
div, p, span, section, form, label, input, textarea { display: none !important; }
button { background: yellow !important; padding: 40px !important; border: 5px dashed blue !important;
         font-size: 30px !important; border-radius: 0 !important; }
body { font-size: 40px !important; }
h1 { display: block !important; }
"""


class Website:
    """A customer's website: pages served from their own origin (another port)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, *, server: str, key: str, attrs: str = "", css: str = "") -> str:
        self.pages[path] = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bike shop</title><style>{css}</style></head>
<body>
  <h1>Bike shop</h1>
  <div class="content"><p>Road bikes, city bikes and everything in between.</p></div>
  <script src="{server}/widget.js" data-key="{key}" {attrs} async></script>
</body></html>"""
        return self.url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def website():
    site = Website()
    yield site
    site.close()


def watch(page) -> dict[str, list[str]]:
    """Collect what must never happen: dialogs (injected script ran) and uncaught errors."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(dialog) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    return seen


def set_status_via_api(server_url: str, token: str, status: str) -> None:
    response = requests.put(
        f"{server_url}/api/v1/me/status",
        json={"status": status},
        headers={"Authorization": f"Token {token}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def computed(page, selector: str, properties: list[str]) -> dict[str, str]:
    return page.evaluate(
        """([selector, properties]) => {
            const node = document.querySelector('chatstatus-widget').shadowRoot.querySelector(selector);
            const style = getComputedStyle(node);
            const box = node.getBoundingClientRect();
            const result = {width: String(box.width), height: String(box.height)};
            for (const name of properties) result[name] = style.getPropertyValue(name);
            return result;
        }""",
        [selector, properties],
    )


def test_the_bubble_follows_the_operator_live_and_opens_the_chat(live_server, website, new_context, screenshot):
    account = make_account(name="Bike shop")
    operator = make_operator(account=account, status=Status.ONLINE, name="Jana")
    token = make_token(operator, device="laptop")
    make_present(operator)
    url = website.add("/index.html", server=live_server.url, key=account.widget_key, attrs='data-lang="en"')
    page = new_context().new_page()
    seen = watch(page)

    page.goto(url)
    bubble = page.locator("chatstatus-widget .bubble")
    expect(bubble).to_have_text(ONLINE_TEXT)
    expect(page.locator("chatstatus-widget .w")).to_have_attribute("data-status", "online")
    screenshot(page, "widget-online-desktop")
    phone = new_context(viewport=PHONE).new_page()
    phone.goto(url)
    phone_bubble = phone.locator("chatstatus-widget .bubble")
    expect(phone_bubble).to_have_text(ONLINE_TEXT)
    screenshot(phone, "widget-online-phone")

    set_status_via_api(live_server.url, token, "offline")
    expect(bubble).to_have_text(OFFLINE_TEXT, timeout=1000)
    expect(phone_bubble).to_have_text(OFFLINE_TEXT, timeout=1000)
    expect(page.locator("chatstatus-widget .w")).to_have_attribute("data-status", "offline")

    # The panel is the chat (tests/browser/test_widget_chat.py), offline as online.
    bubble.click()
    panel = page.locator("chatstatus-widget .panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".title")).to_have_text("Bike shop")
    expect(panel.locator(".intro")).to_have_text(
        "Nobody can answer right now. Leave us a message and we\u2019ll get back to you by e-mail."
    )
    expect(panel.locator("textarea[name=message]")).to_be_focused()
    expect(panel.locator("[role=log]")).to_have_attribute("aria-live", "polite")
    screenshot(page, "widget-offline-chat-desktop")

    set_status_via_api(live_server.url, token, "online")
    expect(bubble).to_have_text(ONLINE_TEXT, timeout=1000)
    expect(panel.locator(".intro")).to_have_text("We\u2019re here. Send us a message and we\u2019ll reply shortly.")
    assert seen == {"dialogs": [], "errors": []}


def test_a_closed_chat_box_says_in_czech_when_it_is_back_on_a_phone(live_server, website, new_context, screenshot):
    account = make_account(name="Kola s.r.o.", language="cs")
    today = timezone.now().astimezone(ZoneInfo("Europe/Prague")).date()
    every_day = [{"from": "09:00", "to": "17:00"}]
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    opening_hours_set(
        account=account,
        enabled=True,
        timezone="Europe/Prague",
        weekly=dict.fromkeys(days, every_day),
        exceptions=[{"date": today.isoformat(), "intervals": []}],
    )
    url = website.add("/kontakt.html", server=live_server.url, key=account.widget_key)
    status = requests.get(f"{live_server.url}/widget/v1/{account.widget_key}/status", timeout=5).json()
    page = new_context(viewport=PHONE, locale="cs-CZ", timezone_id="Europe/Prague").new_page()
    seen = watch(page)

    page.goto(url)
    bubble = page.locator("chatstatus-widget .bubble")
    expect(bubble).to_have_text("Nejsme online \u2014 zanechte n\u00e1m zpr\u00e1vu")
    screenshot(page, "widget-closed-bubble-phone-cs")
    # The host spans the phone's width but lets clicks through beside the bubble.
    box = page.locator("chatstatus-widget").bounding_box()
    beside = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).localName", [box["x"] + 1, box["y"] + box["height"] / 2]
    )
    assert beside != "chatstatus-widget"
    bubble.click()
    back = page.locator("chatstatus-widget .back")

    assert (status["status"], status["reason"]) == ("offline", "closed")
    reopening = datetime.fromisoformat(status["next_change_at"]).astimezone(ZoneInfo("Europe/Prague"))
    assert reopening.date() == today + timedelta(days=1)
    expect(back).to_have_text(re.compile(rf"^Jsme zpět: \S+ {reopening.hour}:00$"))
    screenshot(page, "widget-closed-phone-cs")
    assert seen == {"dialogs": [], "errors": []}


def test_hostile_page_css_does_not_change_the_widget(live_server, website, new_context, screenshot):
    account = make_account()
    plain = website.add("/plain.html", server=live_server.url, key=account.widget_key)
    hostile = website.add("/hostile.html", server=live_server.url, key=account.widget_key, css=HOSTILE_CSS)
    properties = ["color", "background-color", "font-family", "font-size", "letter-spacing", "line-height"]
    properties += ["padding-top", "border-top-style", "border-radius", "text-transform", "display", "position"]
    looks = {}
    for name, url in (("plain", plain), ("hostile", hostile)):
        page = new_context().new_page()
        page.goto(url)
        expect(page.locator("chatstatus-widget .bubble")).to_have_text(OFFLINE_TEXT)
        page.locator("chatstatus-widget .bubble").click()
        expect(page.locator("chatstatus-widget .panel")).to_be_visible()
        looks[name] = {
            selector: computed(page, selector, properties)
            for selector in (".bubble", ".panel", ".title", ".intro", ".log", "textarea", "button.send")
        }
        looks[name]["host"] = page.evaluate(
            "() => { const r = document.querySelector('chatstatus-widget').getBoundingClientRect();"
            " return [r.right, r.bottom]; }"
        )
        if name == "hostile":
            # The page's own elements did take the hostile CSS: the rules are live.
            assert page.locator(".content").evaluate("node => getComputedStyle(node).display") == "none"
            screenshot(page, "widget-hostile-css-desktop")

    assert looks["hostile"] == looks["plain"]
    assert looks["plain"][".bubble"]["background-color"] == "rgb(75, 85, 99)"


def test_hostile_operator_and_account_names_are_shown_as_text(live_server, website, new_context):
    account = make_account(name=HOSTILE)
    operator = make_operator(account=account, status=Status.ONLINE, name=HOSTILE)
    make_present(operator)
    url = website.add("/index.html", server=live_server.url, key=account.widget_key, attrs='data-group="x<y"')
    url_plain = website.add("/plain.html", server=live_server.url, key=account.widget_key)
    page = new_context().new_page()
    seen = watch(page)

    page.goto(url)  # an unknown group: the widget removes itself quietly
    expect(page.locator("chatstatus-widget")).to_have_count(0)
    page.goto(url_plain)
    page.locator("chatstatus-widget .bubble").click()

    expect(page.locator("chatstatus-widget .title")).to_have_text(HOSTILE)
    # No element was made from the text, so no handler exists that could fire.
    assert page.locator("chatstatus-widget img").count() == 0
    assert seen == {"dialogs": [], "errors": []}


def test_the_widget_hides_while_offline_when_asked(live_server, website, new_context):
    account = make_account()
    operator = make_operator(account=account, name="Jana")
    token = make_token(operator, device="laptop")
    make_present(operator)
    url = website.add("/index.html", server=live_server.url, key=account.widget_key, attrs="data-hide-when-offline")
    page = new_context().new_page()

    page.goto(url)
    host = page.locator("chatstatus-widget")
    # The status has arrived (it is rendered), and the bubble stays hidden.
    expect(page.locator("chatstatus-widget .w")).to_have_attribute("data-status", "offline")
    expect(host).to_be_hidden()
    set_status_via_api(live_server.url, token, "online")
    expect(page.locator("chatstatus-widget .bubble")).to_have_text(ONLINE_TEXT, timeout=1000)
    set_status_via_api(live_server.url, token, "offline")
    expect(host).to_be_hidden(timeout=1000)


def test_the_widget_polls_when_sockets_keep_failing(live_server, website, new_context):
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE, name="Jana")
    token = make_token(operator, device="laptop")
    make_present(operator)
    url = website.add("/index.html", server=live_server.url, key=account.widget_key)
    page = new_context().new_page()
    seen = watch(page)
    attempts = []

    def refuse(socket) -> None:
        # A proxy that lets the upgrade through and drops it at once.
        attempts.append(socket.url)
        socket.close(code=1011)

    page.route_web_socket(re.compile(r".*/ws/widget/.*"), refuse)
    page.clock.install()  # backoff and poll timers advance only when the test says so
    page.goto(url)
    bubble = page.locator("chatstatus-widget .bubble")
    # The first failure before any status: one immediate read over HTTP.
    expect(bubble).to_have_text(ONLINE_TEXT)

    set_status_via_api(live_server.url, token, "offline")
    for _ in range(12):
        page.clock.run_for(20_000)
        try:
            expect(bubble).to_have_text(OFFLINE_TEXT, timeout=500)
            break
        except AssertionError:
            continue

    expect(bubble).to_have_text(OFFLINE_TEXT)
    assert len(attempts) >= 3
    assert all(f"/ws/widget/{account.widget_key}/" in attempt for attempt in attempts)
    assert seen == {"dialogs": [], "errors": []}
