"""The client's address behind trusted proxies (chatstatus/proxy.py)."""

from ipaddress import ip_network

import pytest
from asgiref.testing import ApplicationCommunicator

from chatstatus.proxy import client_address, with_trusted_proxies

NGINX = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        pytest.param("203.0.113.9", ["198.51.100.1"], "203.0.113.9", id="untrusted-peer-forges"),
        pytest.param("127.0.0.1", ["198.51.100.1"], "198.51.100.1", id="through-nginx"),
        pytest.param("127.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1", id="client-forged-to-the-left"),
        pytest.param("127.0.0.1", ["198.51.100.1", "10.1.2.3"], "198.51.100.1", id="two-trusted-hops"),
        pytest.param("127.0.0.1", ["junk", "10.1.2.3"], "10.1.2.3", id="broken-chain-stops-at-last-trusted"),
        pytest.param("127.0.0.1", [], "127.0.0.1", id="no-header"),
        pytest.param("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1", id="ipv6-with-port"),
        pytest.param("127.0.0.1", ["198.51.100.1:5678"], "198.51.100.1", id="ipv4-with-port"),
        pytest.param("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1", id="mapped-peer"),
    ],
)
def test_the_client_is_the_nearest_untrusted_hop(peer, forwarded, client):
    assert client_address(peer=peer, forwarded_for=forwarded, networks=NGINX) == client


async def _scope_seen(scope: dict) -> dict:
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    communicator = ApplicationCommunicator(with_trusted_proxies(app), scope)
    await communicator.send_input({"type": "http.request"})
    await communicator.wait(timeout=1)
    return seen


def _http(peer: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "GET", "path": "/", "client": (peer, 5000), "scheme": "http", "headers": headers}


FORGED = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https"), (b"x-request-id", b"mine")]


async def test_a_trusted_proxy_gives_the_client_and_the_scheme(settings):
    settings.TRUSTED_PROXIES = NGINX
    seen = await _scope_seen(_http("127.0.0.1", FORGED))

    assert seen["client"] == ("198.51.100.1", 0)
    assert seen["scheme"] == "https"


async def test_a_client_talking_to_the_web_process_directly_gains_nothing_by_forging(settings):
    settings.TRUSTED_PROXIES = NGINX
    seen = await _scope_seen(_http("203.0.113.9", FORGED))

    # It should keep the connection's address and drop what the client claims.
    assert seen["client"] == ("203.0.113.9", 5000)
    assert seen["scheme"] == "http"
    assert seen["headers"] == []


async def test_without_trusted_proxies_nothing_changes(settings):
    settings.TRUSTED_PROXIES = ()
    scope = _http("127.0.0.1", FORGED)
    seen = await _scope_seen(scope)

    assert seen["client"] == ("127.0.0.1", 5000)
    assert seen["headers"] == FORGED
