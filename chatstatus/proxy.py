"""The client's real address behind the reverse proxies named in ``TRUSTED_PROXIES``.

Every limit counted per client (the log-in throttle, widget socket connects,
offline messages) reads the address of the connection: ``scope["client"]``
(``REMOTE_ADDR`` in Django). Behind a proxy that is the proxy's, so every
visitor would share one budget. This ASGI middleware, in front of everything,
puts the client's address there instead — but only from a proxy the
configuration trusts:

* the direct peer is not in ``TRUSTED_PROXIES``: its own address counts, and
  (when any proxy is configured) the forwarding headers it sent are dropped,
  so a client talking to a web process directly gains nothing by forging them;
* the peer is trusted: ``X-Forwarded-For`` is read from the right (the hop
  nearest to us) and the first address that is not a trusted proxy is the
  client. nginx appends the address it saw to what the client sent
  (``$proxy_add_x_forwarded_for``), so whatever a client writes there itself
  stays to the left of its real address and is never reached.
  ``X-Forwarded-Proto`` gives the scheme.

Daphne's own ``--proxy-headers`` trusts the left-most ``X-Forwarded-For`` of
any peer, which is the client's to choose; ``chatstatus.graceful`` refuses to
start a server that has it on.
"""

from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from django.conf import settings
from django.core import checks

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]
Network = IPv4Network | IPv6Network

# What a proxy tells us; from anyone else it is dropped (when proxies are configured).
FORWARDING_HEADERS = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"x-request-id"}
)
_SCHEMES = {"http": {"http": "http", "https": "https"}, "websocket": {"http": "ws", "https": "wss"}}


def parse_address(raw: str) -> IPv4Address | IPv6Address | None:
    """An address as a proxy writes it: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address is its IPv4 one."""
    value = raw.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPv4Address | IPv6Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(*, peer: str, forwarded_for: list[str], networks: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy; then the
    nearest hop of ``forwarded_for`` (its items, left to right) that is not one.
    A chain that breaks (an entry that is no address) ends at the last trusted
    hop: what lies beyond it was written by someone we do not trust."""
    current = parse_address(peer)
    if not is_trusted(current, networks):
        return peer
    for hop in reversed(forwarded_for):
        address = parse_address(hop)
        if address is None:
            break
        current = address
        if not is_trusted(address, networks):
            break
    return str(current)


def _split(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    items: list[str] = []
    for key, value in headers:
        if key == name:
            items += [item.strip() for item in value.decode("latin-1").split(",") if item.strip()]
    return items


def with_trusted_proxies(app: ASGIApp) -> ASGIApp:
    """``app`` seeing the client's address (and scheme) behind trusted proxies."""

    async def proxied(scope: dict, receive: Callable, send: Callable) -> None:
        networks: tuple[Network, ...] = settings.TRUSTED_PROXIES
        if scope["type"] not in _SCHEMES or not networks or not scope.get("client"):
            await app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        peer = str(scope["client"][0])
        if not is_trusted(parse_address(peer), networks):
            if any(key in FORWARDING_HEADERS for key, _value in headers):
                scope = {**scope, "headers": [(k, v) for k, v in headers if k not in FORWARDING_HEADERS]}
            await app(scope, receive, send)
            return
        client = client_address(peer=peer, forwarded_for=_split(headers, b"x-forwarded-for"), networks=networks)
        scope = {**scope, "client": (client, 0)}
        proto = _split(headers, b"x-forwarded-proto")
        if proto and proto[-1].lower() in _SCHEMES[scope["type"]]:
            scope["scheme"] = _SCHEMES[scope["type"]][proto[-1].lower()]
        await app(scope, receive, send)

    return proxied


@checks.register(checks.Tags.security, deploy=True)
def trusted_proxies_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    if not settings.SECURE_HTTPS or settings.TRUSTED_PROXIES:
        return []
    return [
        checks.Warning(
            "SECURE_HTTPS is set (behind a TLS proxy) but TRUSTED_PROXIES is empty: every client counts as the "
            "proxy's address, so one visitor's rate limit and one guesser's log-in throttle apply to everyone",
            hint="Set TRUSTED_PROXIES to the proxies' addresses or networks (docs/OPERATIONS.md).",
            id="chatstatus.W002",
        )
    ]
