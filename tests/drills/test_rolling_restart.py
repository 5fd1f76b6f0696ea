"""A rolling restart behind nginx: each web process in turn gets SIGTERM and is started again.

The recipe's stack (tests/production/stack.py: nginx, two web processes from
deploy/Procfile, a worker, a beat). A process given SIGTERM stops listening,
closes its sockets with 1012 and drains (chatstatus/graceful.py); its clients
reconnect at once through nginx to the other process. Nobody's status is
lost: no operator is swept or logged out by the restart, and a status change
made while a process restarts reaches every widget within 5 s.
"""

import asyncio
import contextlib
import functools
import http.client
import json
import queue
import signal
import time

import pytest
import websockets
from websockets.asyncio.client import connect

from accounts.models import Operator, Status
from presence.models import Source, StatusEvent
from tests.drills.conftest import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    SWEEP_SECONDS,
    TTL_SECONDS,
    Socket,
    Sockets,
    is_hello,
    is_widget_status,
    report,
    wait_until,
)
from tests.factories import make_account, make_operator, make_token, owner_of
from tests.production.stack import HOST, client_tls, stack_settings, start_stack

pytestmark = pytest.mark.production_only

WIDGETS = 20
WRONG_AT_MOST_SECONDS = 5
CLOSE_SERVICE_RESTART = 1012


class ThroughNginx(Socket):
    """A client of nginx that, like the dashboard after a 1012, reconnects at once."""

    def __init__(self, *args, **kwargs) -> None:
        self.close_codes: list[int] = []
        super().__init__(*args, **kwargs)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async with connect(self.url, additional_headers=self.headers, open_timeout=5, ssl=client_tls()) as ws:
                    self._ws = ws
                    self.opened_at.append(time.monotonic())
                    beat = asyncio.create_task(self._beat(ws)) if self.heartbeat else None
                    try:
                        async for raw in ws:
                            self.inbox.put((time.monotonic(), json.loads(raw)))
                    finally:
                        if beat is not None:
                            beat.cancel()
                        self._ws = None
                        if ws.close_code is not None:
                            self.close_codes.append(ws.close_code)
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.05)


def through_nginx(clients: Sockets, url: str, *, headers: dict | None = None, heartbeat: dict | None = None):
    socket = ThroughNginx(clients.loop, url, headers=headers or {}, heartbeat=heartbeat)
    clients.open.append(socket)
    return socket


def latest_status(socket: Socket) -> str | None:
    for _at, message in reversed(socket.received):
        if message.get("type") == "status":
            return message["status"]
    return None


def first_arrival(socket: Socket, status: str, *, after: float, timeout: float) -> float:
    """Seconds from ``after`` until ``socket`` received ``status`` (reading its inbox)."""
    deadline = time.monotonic() + timeout
    for at, message in socket.received:
        if at >= after and message.get("type") == "status" and message.get("status") == status:
            return at - after
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = [message for _at, message in socket.received[-3:]]
            raise AssertionError(
                f"a widget did not show {status} within {timeout} s (opened {socket.opens} times, "
                f"closed with {socket.close_codes}, last messages {last})"
            )
        try:
            at, message = socket.inbox.get(timeout=remaining)
        except queue.Empty:
            continue
        socket.received.append((at, message))
        if at >= after and message.get("type") == "status" and message.get("status") == status:
            return at - after


def ready(port: int) -> bool:
    """The restarted process itself (not through nginx) answers ``/readyz`` with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        conn.close()


def put_status(stack, token: str, status: str) -> None:
    conn = http.client.HTTPSConnection(HOST, stack.nginx.port, context=client_tls(), timeout=20)
    body = json.dumps({"status": status})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Host": f"{HOST}"}
    conn.request("PUT", "/api/v1/me/status", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200, response.status


def test_a_rolling_restart_loses_no_status_and_no_widget_stays_wrong_for_long(transactional_db):
    stack = start_stack(
        name="rolling",
        PRESENCE_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        PRESENCE_CONNECTION_TTL_SECONDS=str(TTL_SECONDS),
        PRESENCE_SWEEP_SECONDS=str(SWEEP_SECONDS),
    )
    clients = Sockets()
    try:
        with stack_settings(stack):
            _restart_each(stack, clients)
    finally:
        clients.shutdown()
        stack.stop()


def _restart_each(stack, clients: Sockets) -> None:
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    agent = make_operator(account=account)
    agent_token = make_token(agent)
    app = through_nginx(
        clients,
        f"{stack.ws_url}/ws/operator/",
        headers={"Authorization": f"Token {agent_token}"},
        heartbeat={"type": "heartbeat"},
    )
    dashboard = through_nginx(
        clients,
        f"{stack.ws_url}/ws/operator/",
        headers={"Authorization": f"Token {make_token(owner_of(account))}"},
        heartbeat={"type": "heartbeat"},
    )
    widgets = [through_nginx(clients, f"{stack.ws_url}/ws/widget/{account.widget_key}/") for _ in range(WIDGETS)]
    for socket in (app, dashboard):
        socket.wait_for(is_hello, timeout=20, what="the operator sockets' hello")
    app.send({"type": "set_status", "status": "online"})
    for widget in widgets:
        widget.wait_for(is_widget_status("online"), timeout=20, what="every widget showing the agent online")
    # Both processes hold sockets (nginx spreads them round-robin).
    assert all(socket.opens == 1 for socket in [app, dashboard, *widgets])

    figures: dict[str, object] = {}
    truth = "online"
    for round_, port in enumerate(stack.web_ports):
        process = stack.webs[port]
        before = {id(socket): len(socket.close_codes) for socket in [app, dashboard, *widgets]}
        # A process that is gone already would close its sockets with 1006, not 1012: say so if it is.
        assert process.proc.poll() is None, (
            f"web {port} exited by itself ({process.proc.returncode}): {process.log()[-3000:]}"
        )
        terminated = time.monotonic()
        process.proc.send_signal(signal.SIGTERM)
        # A change while this process drains and restarts, through nginx and the other process.
        truth = "offline" if truth == "online" else "online"
        # From the request sent: a widget on the other process may hear the
        # change before the API's answer is back here.
        changed = time.monotonic()
        put_status(stack, agent_token, truth)
        answered = time.monotonic() - changed
        process.proc.wait(timeout=30)
        exited = time.monotonic() - terminated
        restarted_at = time.monotonic()
        stack.web(port)
        # As docs/OPERATIONS.md says: the next process restarts once this one is ready.
        wait_until(functools.partial(ready, port), timeout=30, what=f"web {port} answering /readyz", every=0.2)
        restart_seconds = time.monotonic() - restarted_at
        delays = [first_arrival(widget, truth, after=changed, timeout=15) for widget in widgets]
        closed = [code for socket in [app, dashboard, *widgets] for code in socket.close_codes[before[id(socket)] :]]
        # Its sockets were told "service restart", not dropped.
        assert closed and set(closed) == {CLOSE_SERVICE_RESTART}, (
            f"{closed}; web {port} exited with {process.proc.returncode} after {exited:.2f} s: {process.log()[-3000:]}"
        )
        assert max(delays) <= WRONG_AT_MOST_SECONDS, (
            f"{delays}: the change answered after {answered:.2f} s, web {port} exited after {exited:.2f} s "
            f"and was ready again after {restart_seconds:.2f} s more"
        )
        figures[f"round{round_ + 1}_exit_seconds"] = exited
        figures[f"round{round_ + 1}_restart_seconds"] = restart_seconds
        figures[f"round{round_ + 1}_sockets_closed_1012"] = len(closed)
        figures[f"round{round_ + 1}_widget_truth_max_seconds"] = max(delays)
        figures[f"round{round_ + 1}_widget_truth_median_seconds"] = sorted(delays)[len(delays) // 2]
        log = process.log()
        assert "closing" in log and "with 1012" in log

    # Every socket is back, and the agent is what they chose: nobody swept or logged out.
    app.wait_for(is_hello, timeout=20, what="the app's socket back")
    wait_until(lambda: app._ws is not None and dashboard._ws is not None, timeout=20, what="both sockets open")
    agent.refresh_from_db()
    events = list(StatusEvent.objects.filter(operator=agent).order_by("at").values_list("source", flat=True))
    assert agent.status == truth == Status.ONLINE
    assert Source.STALE_SWEEP not in events and Source.LOGOUT not in events
    # It should hold exactly the three changes made: the switch online and the two during the restarts.
    assert len(events) == 3 and events[1:] == [Source.API, Source.API]
    assert Operator.objects.get(id=agent.id).status == Status.ONLINE
    report("rolling restart", widgets=WIDGETS, status_events=len(events), **figures)
