"""The README's production recipe, run as documented: nginx in front of two web
processes, a worker and a beat, PostgreSQL and Redis (tests/production/stack.py).

Through nginx: the dashboard's log-in and status switch, the operator socket,
the widget's status, socket and offline form, the probes. Behind it, every
limit counts the real client: 300 visitors from 300 addresses are all served,
and so are 300 behind one address; a flood from one address is stopped; the
log-in throttle stops one guesser without stopping anyone else; a client that
forges ``X-Forwarded-For`` gains nothing, through nginx or straight to a web
process.
"""

import asyncio
import http.client
import json
import re
import time
import urllib.parse
from http.cookies import SimpleCookie

import pytest
import websockets
from websockets.asyncio.client import connect

from accounts.models import Status
from conversations.models import Conversation
from presence.models import StatusEvent
from tests.drills.conftest import report
from tests.factories import PASSWORD, make_account, owner_of
from tests.live import ROOT
from tests.production.stack import HOST, NGINX_SITE, PROCFILE, client_tls, stack_settings, start_stack
from widget.consumers import CONNECT_LIMIT

pytestmark = pytest.mark.production_only

CLOSE_RATE_LIMITED = 4429


# --- clients with a source address of their own (127.x.y.z) -------------------------------


class Browser:
    """An HTTP client from one loopback address, with cookies."""

    def __init__(self, *, host: str, port: int, source: str, tls: bool = True) -> None:
        self.host, self.port, self.source, self.tls = host, port, source, tls
        self.cookies: dict[str, str] = {}

    @property
    def origin(self) -> str:
        return f"https://{self.host}:{self.port}"

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict, bytes]:
        if self.tls:
            conn = http.client.HTTPSConnection(
                self.host, self.port, source_address=(self.source, 0), context=client_tls(), timeout=20
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, source_address=(self.source, 0), timeout=20)
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{key}={value}" for key, value in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
            for raw in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie(raw)
                for key, morsel in cookie.items():
                    self.cookies[key] = morsel.value
            return response.status, dict(response.headers), data
        finally:
            conn.close()

    def form(self, path: str, fields: dict, *, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """POST a form as the page would, with the CSRF token of this browser's cookie."""
        if "csrftoken" not in self.cookies:
            self.request("GET", "/login/")
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.cookies["csrftoken"], **fields}).encode()
        sent = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.origin,
            "Referer": self.origin + path,
            **(headers or {}),
        }
        return self.request("POST", path, body=body, headers=sent)

    def json(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict | None]:
        body = None if data is None else json.dumps(data).encode()
        status, _headers, raw = self.request(method, path, body=body, headers={"Content-Type": "application/json"})
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None


async def widget_socket_status(url: str, *, source: str, headers: dict | None = None, tls: bool = True) -> object:
    """Open a widget socket from ``source``: its first status message, or its close code when refused."""
    kwargs = {"ssl": client_tls()} if tls else {}
    async with connect(url, local_addr=(source, 0), additional_headers=headers or {}, open_timeout=20, **kwargs) as ws:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
        except websockets.exceptions.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return message


async def many_sockets(url: str, sources: list[str], *, concurrency: int, tls: bool = True, forge=None) -> list:
    """One widget socket per entry of ``sources``, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int, source: str) -> object:
        async with gate:
            headers = {"X-Forwarded-For": forge(n)} if forge else None
            return await widget_socket_status(url, source=source, headers=headers, tls=tls)

    return await asyncio.gather(*(one(n, source) for n, source in enumerate(sources)), return_exceptions=True)


def served(results: list) -> int:
    return sum(1 for result in results if isinstance(result, dict) and result.get("type") == "status")


def refused(results: list) -> int:
    return sum(1 for result in results if result == CLOSE_RATE_LIMITED)


# --- the one source of truth --------------------------------------------------------------


def readme_block_after(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(marker)
    match = re.search(r"```[a-z]*\n(.*?)```", readme[start:], re.S)
    assert match, f"no code block after {marker!r} in README.md"
    return match[1]


def test_the_readme_shows_the_files_the_recipe_test_runs():
    # It should quote deploy/ exactly: the README and this test cannot drift apart.
    assert readme_block_after("<!-- deploy/Procfile -->") == PROCFILE.read_text()
    assert readme_block_after("<!-- deploy/nginx.conf -->") == NGINX_SITE.read_text()


# --- the recipe -----------------------------------------------------------------------------


def test_the_documented_recipe_serves_everything_through_nginx_and_counts_the_real_client(transactional_db):
    started = time.monotonic()
    stack = start_stack(name="recipe", web_env={"LOG_FORMAT": "json"})
    try:
        with stack_settings(stack):
            _walk(stack, started=started)
    finally:
        stack.stop()


def _walk(stack, *, started: float) -> None:
    start_seconds = time.monotonic() - started
    port = stack.nginx.port
    account = make_account(name="Recipe Ltd")
    owner = owner_of(account)
    key = account.widget_key

    # --- the probes, through nginx; /metrics only straight from an allowed address ---
    visitor = Browser(host=HOST, port=port, source="127.20.0.1")
    assert visitor.json("GET", "/healthz") == (200, {"status": "ok"})
    assert visitor.json("GET", "/readyz") == (200, {"status": "ready"})
    assert visitor.request("GET", "/metrics")[0] == 404
    web_port = stack.web_ports[0]
    scraper = Browser(host=HOST, port=web_port, source="127.0.0.1", tls=False)
    stranger = Browser(host=HOST, port=web_port, source="127.20.0.2", tls=False)
    assert stranger.request("GET", "/metrics")[0] == 403

    # --- the dashboard: log in, the page with the avatar, the switch without JavaScript ---
    browser = Browser(host=HOST, port=port, source="127.21.0.1")
    status, _headers, page = browser.request("GET", "/login/")
    assert status == 200 and b"csrfmiddlewaretoken" in page
    status, headers, _page = browser.form("/login/", {"username": owner.email, "password": PASSWORD})
    assert status == 302, (status, headers)
    status, _headers, page = browser.request("GET", "/")
    assert status == 200 and b'aria-haspopup="menu"' in page
    status, _headers, _page = browser.form("/status/", {"status": "online"})
    assert status == 302
    owner.refresh_from_db()
    assert owner.status == Status.ONLINE

    # --- the widget's status read and offline form, through nginx ---
    status, body = visitor.json("GET", f"/widget/v1/{key}/status")
    assert status == 200 and body["status"] in ("online", "offline")
    status, body = visitor.json(
        "POST", f"/widget/v1/{key}/messages", {"name": "Ann", "email": "ann@example.com", "message": "Hello"}
    )
    assert status == 201, body
    assert Conversation.objects.filter(account=account).count() == 1

    # --- the operator socket (session cookie, same origin) and the widget socket, through nginx ---
    async def sockets_story() -> dict:
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        operator_headers = {"Cookie": cookie, "Origin": browser.origin}
        async with (
            connect(
                f"{stack.ws_url}/ws/operator/",
                additional_headers=operator_headers,
                ssl=client_tls(),
                local_addr=("127.21.0.1", 0),
            ) as dashboard,
            connect(f"{stack.ws_url}/ws/widget/{key}/", ssl=client_tls(), local_addr=("127.22.0.1", 0)) as widget,
        ):
            hello = json.loads(await asyncio.wait_for(dashboard.recv(), 20))
            first = json.loads(await asyncio.wait_for(widget.recv(), 20))
            await dashboard.send(json.dumps({"type": "heartbeat"}))
            switched = time.monotonic()
            await dashboard.send(json.dumps({"type": "set_status", "status": "offline"}))
            while True:
                message = json.loads(await asyncio.wait_for(widget.recv(), 20))
                if message.get("type") == "status" and message["status"] == "offline":
                    return {"hello": hello, "first": first, "push_seconds": time.monotonic() - switched}

    story = asyncio.run(sockets_story())
    assert story["hello"]["type"] == "hello"
    assert story["first"]["type"] == "status"
    assert StatusEvent.objects.filter(operator=owner).count() == 2

    # --- 300 visitors from 300 addresses, all served; and 300 behind one address ---
    widget_url = f"{stack.ws_url}/ws/widget/{key}/"
    t0 = time.monotonic()
    distinct = asyncio.run(
        many_sockets(widget_url, [f"127.30.{n // 200}.{n % 200 + 1}" for n in range(300)], concurrency=60)
    )
    distinct_seconds = time.monotonic() - t0
    assert served(distinct) == 300, [result for result in distinct if not isinstance(result, dict)][:5]
    t0 = time.monotonic()
    one_office = asyncio.run(many_sockets(widget_url, ["127.31.0.1"] * 300, concurrency=60))
    office_seconds = time.monotonic() - t0
    # It should serve an office's or a carrier's 300 visitors behind one address.
    assert served(one_office) == 300

    # --- a flood from one address straight to one web process, forging X-Forwarded-For ---
    direct_url = f"ws://{HOST}:{web_port}/ws/widget/{key}/"
    t0 = time.monotonic()
    flood = asyncio.run(
        many_sockets(
            direct_url, ["127.32.0.1"] * 450, concurrency=100, tls=False, forge=lambda n: f"198.51.100.{n % 250}"
        )
    )
    flood_seconds = time.monotonic() - t0
    # It should count the connection's address, not the forged one, and stop the flood: the whole
    # bucket is served, then only what refills while the flood lasts (5 a second).
    refill = CONNECT_LIMIT.count / CONNECT_LIMIT.period * flood_seconds
    assert CONNECT_LIMIT.count - 1 <= served(flood) <= CONNECT_LIMIT.count + refill + 2, (served(flood), flood_seconds)
    assert refused(flood) == len(flood) - served(flood) > 0

    # --- the log-in throttle counts the client, not nginx; forging gains nothing ---
    guesser = Browser(host=HOST, port=port, source="127.40.0.1")
    forger = Browser(host=HOST, port=port, source="127.40.0.2")
    guesses = [guesser.form("/login/", {"username": owner.email, "password": "wrong"})[0] for _ in range(11)]
    forged = [
        forger.form(
            "/login/",
            {"username": owner.email, "password": "wrong"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )[0]
        for n in range(11)
    ]
    colleague = Browser(host=HOST, port=port, source="127.40.0.3")
    colleague_status = colleague.form("/login/", {"username": owner.email, "password": PASSWORD})[0]
    assert guesses[:10] == [200] * 10 and guesses[10] == 429
    assert forged[:10] == [200] * 10 and forged[10] == 429
    # It should let everyone else log in: nginx's address is not the one counted.
    assert colleague_status == 302

    # --- the metrics of a web process, from the allowed address ---
    status, _headers, metrics = scraper.request("GET", "/metrics")
    assert status == 200
    text = metrics.decode()
    assert "chatstatus_http_responses_total{" in text
    assert 'chatstatus_sockets_opened_total{kind="widget"}' in text
    assert "chatstatus_widget_connects_refused_total" in text

    # --- the logs are JSON, one object per line, with a request id ---
    web_log = [line for web in stack.webs.values() for line in web.log().splitlines()]
    assert not [line for line in web_log if line.strip() and not line.startswith("{")]
    parsed = [json.loads(line) for line in web_log if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in parsed)
    # The throttled log-ins were logged (django.request) with the request's id, and nothing secret.
    throttled = [line for line in parsed if "Too Many Requests" in line["message"]]
    assert throttled and all(line.get("request_id") for line in throttled)
    assert PASSWORD not in "\n".join(web_log) and "csrftoken" not in "\n".join(web_log)

    report(
        "production recipe",
        start_seconds=start_seconds,
        operator_push_to_widget_seconds=story["push_seconds"],
        distinct_addresses_served=served(distinct),
        distinct_addresses_seconds=distinct_seconds,
        one_address_served=served(one_office),
        one_address_seconds=office_seconds,
        flood_attempts=len(flood),
        flood_served=served(flood),
        flood_refused=refused(flood),
        flood_seconds=flood_seconds,
        login_guesses_before_429=guesses.index(429),
        forged_guesses_before_429=forged.index(429),
        colleague_login_status=colleague_status,
    )
