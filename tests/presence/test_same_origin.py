"""The dashboard socket's same-origin check (a cookie alone must not be enough:
another site's page could open a socket with the operator's cookie)."""

import pytest

from presence.consumers import same_origin


def scope(**headers: str) -> dict:
    return {"headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]}


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://chat.example.com", "chat.example.com", True),
        ("https://chat.example.com", "chat.example.com", True),
        ("https://Chat.Example.com", "chat.example.COM", True),
        ("http://localhost:8000", "localhost:8000", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://localhost:8001", "localhost:8000", False),
        ("https://evil.example", "chat.example.com", False),
        ("https://chat.example.com.evil.example", "chat.example.com", False),
        ("https://evil.example@chat.example.com", "chat.example.com", False),
        ("null", "chat.example.com", False),
        ("file://chat.example.com", "chat.example.com", False),
        ("", "chat.example.com", False),
    ],
)
def test_the_origin_must_name_the_host(origin, host, allowed):
    headers = {"host": host, **({"origin": origin} if origin else {})}
    assert same_origin(scope(**headers)) is allowed


def test_a_request_without_a_host_is_refused():
    assert same_origin(scope(origin="https://chat.example.com")) is False


def test_a_trusted_origin_is_allowed_from_another_host(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://dashboard.example.com"]
    assert same_origin(scope(origin="https://dashboard.example.com", host="10.0.0.5:8000")) is True
    assert same_origin(scope(origin="http://dashboard.example.com", host="10.0.0.5:8000")) is False


@pytest.mark.parametrize(("use_forwarded_host", "allowed"), [(True, True), (False, False)])
def test_behind_a_proxy_the_forwarded_host_counts_only_when_enabled(settings, use_forwarded_host, allowed):
    settings.USE_X_FORWARDED_HOST = use_forwarded_host
    headers = scope(origin="https://chat.example.com", host="127.0.0.1:8000", x_forwarded_host="chat.example.com")
    assert same_origin(headers) is allowed


def test_the_first_of_several_forwarded_hosts_is_the_browsers(settings):
    settings.USE_X_FORWARDED_HOST = True
    headers = scope(
        origin="https://chat.example.com", host="127.0.0.1:8000", x_forwarded_host="chat.example.com, lb.internal"
    )
    assert same_origin(headers) is True
