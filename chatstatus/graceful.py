"""Shortcut: a web process that gets SIGTERM restarts gracefully.

Daphne's own shutdown (``daphne.server.Server.kill_all_applications``, run by
Twisted's "before shutdown" trigger on SIGTERM/SIGINT) cancels every
application instance at once and lets the reactor drop the connections:
clients see an abnormal close (1006) and in-flight requests are cut, while the
process keeps accepting new connections until the very end. Here the same
trigger first:

1. stops listening, so the load balancer sends new connections to another
   process at once (nginx moves on to the next upstream on a refused connect);
2. closes every open WebSocket with **1012** (service restart), so widgets and
   dashboards reconnect straight away — through the load balancer, to another
   process. The consumers' ``disconnect`` runs as for any close: an operator's
   connection ends with the grace period ahead of them (the store keeps them
   present meanwhile), never with a logout, so the operator reconnecting to
   the other process within the grace period loses nothing;
3. waits until those sockets are closed and the requests in flight are
   answered, at most ``SHUTDOWN_DRAIN_SECONDS``;

then calls daphne's own method, which cancels whatever is left.

It relies on daphne 4.x (pinned): ``Server.kill_all_applications``,
``Server.connections`` and ``Server.http_factory``; and on autobahn's
``WebSocketProtocol.sendCloseFrame``, because its public ``sendClose`` refuses
codes outside 1000 and 3000–4999 (1012 is a registered code autobahn does not
know). ``install`` checks that they are there; when they are not it changes
nothing (daphne's shutdown as it is) and a system check (``chatstatus.W003``)
says so.

Daphne's ``--proxy-headers`` takes the client's address from the left-most
``X-Forwarded-For`` of any peer, which a client chooses itself; the wrapped
``Server.run`` refuses to start with it (``TRUSTED_PROXIES`` does it safely,
``chatstatus.proxy``).
"""

import asyncio
import logging
import time

from django.core import checks

from chatstatus.metrics import SHUTDOWN_SOCKETS_CLOSED

logger = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012

_state: dict[str, float | bool] = {"drain_seconds": 10.0, "installed": False}


def _classes():
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
        from twisted.internet import tcp
    except ImportError:
        return None
    return Server, WebSocketProtocol, tcp


def supported() -> bool:
    classes = _classes()
    if classes is None:
        return False
    server, protocol, tcp = classes
    return (
        callable(getattr(server, "kill_all_applications", None))
        and callable(getattr(server, "run", None))
        and callable(getattr(protocol, "sendCloseFrame", None))
        and hasattr(protocol, "STATE_OPEN")
        and hasattr(protocol, "STATE_CLOSED")
        and isinstance(getattr(tcp, "Port", None), type)
    )


def _stop_listening(server: object, tcp: object) -> int:
    from twisted.internet import reactor

    factory = getattr(server, "http_factory", None)
    ports = [
        reader
        for reader in reactor.getReaders()
        if isinstance(reader, tcp.Port) and getattr(reader, "factory", None) is factory
    ]
    for port in ports:
        port.stopListening()
    return len(ports)


async def drain(server: object, *, protocol_class: type, tcp: object, seconds: float) -> None:
    """Steps 1–3 of the module's docstring."""
    started = time.monotonic()
    ports = _stop_listening(server, tcp)
    connections: dict = getattr(server, "connections", {})
    closing = []
    for protocol in list(connections):
        if isinstance(protocol, protocol_class) and protocol.state == protocol.STATE_OPEN:
            protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART, isReply=False)
            closing.append(protocol)
    SHUTDOWN_SOCKETS_CLOSED.inc(len(closing))
    logger.info("shutting down: stopped %d listener(s), closing %d socket(s) with 1012", ports, len(closing))

    def busy() -> int:
        pending = sum(1 for protocol in closing if protocol.state != protocol.STATE_CLOSED)
        for details in list(connections.values()):
            instance = details.get("application_instance")
            if instance is not None and not instance.done():
                pending += 1  # a request still being answered, a consumer's disconnect still running
        return pending

    deadline = started + seconds
    while busy() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # polling daphne's connection table: it has no event for "all closed"
    logger.info("shutting down: drained in %.2f s (%d still busy)", time.monotonic() - started, busy())


def install(*, drain_seconds: float) -> bool:
    """Make daphne's SIGTERM graceful; True when it is."""
    _state["drain_seconds"] = drain_seconds
    if _state["installed"]:
        return True
    if not supported():
        logger.warning("daphne's server is not the one known: shutdown is daphne's own (sockets close with 1006)")
        return False
    from twisted.internet import defer

    server_class, protocol_class, tcp = _classes()
    kill_all, run = server_class.kill_all_applications, server_class.run

    def checked_run(self):
        if getattr(self, "proxy_forwarded_address_header", None):
            logger.critical(
                "daphne --proxy-headers trusts X-Forwarded-For from any client; "
                "start without it and set TRUSTED_PROXIES to the proxies' addresses"
            )
            raise SystemExit(2)
        return run(self)

    def graceful_kill_all(self):
        future = asyncio.ensure_future(
            drain(self, protocol_class=protocol_class, tcp=tcp, seconds=float(_state["drain_seconds"]))
        )
        drained = defer.Deferred.fromFuture(future)
        drained.addErrback(lambda failure: logger.error("graceful drain failed: %s", failure.getErrorMessage()))
        drained.addBoth(lambda _result: kill_all(self))
        return drained

    server_class.run = checked_run
    server_class.kill_all_applications = graceful_kill_all
    _state["installed"] = True
    return True


@checks.register()
def graceful_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    if supported():
        return []
    return [
        checks.Warning(
            "daphne or autobahn changed: a web process's shutdown drops its sockets (1006) instead of "
            "closing them with 1012, and keeps accepting until it exits",
            hint="Take the process out of the load balancer before stopping it.",
            id="chatstatus.W003",
        )
    ]
