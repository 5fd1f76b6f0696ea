"""The README's first command: one process, SQLite, no Redis, demo data.

Runs migrate, seed_demo and Daphne exactly as scripts/run does (the venv
creation is the only step left out) and talks to the server like a user.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
from http.cookiejar import CookieJar

import pytest

from tests.live import ROOT, ServerProcess, free_port, wait_for_port


def embedded_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REDIS", "DATABASE", "PRESENCE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="chatstatus.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        SECRET_KEY="embedded-acceptance-secret-key-0123456789abcdefghijklmnop",
    )
    return env


@pytest.fixture
def embedded_server(tmp_path):
    env = embedded_env(tmp_path)
    port = free_port()
    for args in (["migrate", "--noinput"], ["seed_demo", "--url", f"http://127.0.0.1:{port}"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    seed_output = result.stdout
    server = ServerProcess(
        [sys.executable, "-m", "daphne", "-e", f"tcp:port={port}:interface=127.0.0.1", "chatstatus.asgi:application"],
        env=env,
        log_name=f"embedded-{port}",
    )
    wait_for_port(port, proc=server.proc)
    yield f"http://127.0.0.1:{port}", seed_output
    server.stop()


def test_the_embedded_server_answers_with_the_demo_data(embedded_server):
    url, seed_output = embedded_server
    assert f"{url}/" in seed_output
    assert "owner@demo.example / demo-pass-123" in seed_output
    widget_key = re.search(r"Widget key:\s+(\S+)", seed_output).group(1)

    with urllib.request.urlopen(f"{url}/widget/v1/{widget_key}/status", timeout=10) as response:
        status = json.load(response)
    assert status["status"] == "offline"
    assert status["reason"] in {"no_operator_online", "closed"}

    with urllib.request.urlopen(f"{url}/widget/v1/{widget_key}/status?group=support", timeout=10) as response:
        assert json.load(response)["status"] == "offline"

    # The dashboard sends anonymous visitors to the login page, and the demo login works.
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{url}/", timeout=10) as response:
        assert response.url.startswith(f"{url}/login/")
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": "owner@demo.example", "password": "demo-pass-123"}
    ).encode()
    request = urllib.request.Request(f"{url}/login/", data=form, headers={"Referer": f"{url}/login/"})
    with opener.open(request, timeout=10) as response:
        assert response.url == f"{url}/"
        assert "Demo Shop" in response.read().decode()


def _call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}


def test_the_embedded_server_is_live_without_redis(embedded_server):
    url, seed_output = embedded_server
    widget_key = re.search(r"Widget key:\s+(\S+)", seed_output).group(1)
    _status, body = _call(
        f"{url}/api/v1/auth/token", "POST", {"email": "owner@demo.example", "password": "demo-pass-123"}
    )
    token = body["token"]

    _call(f"{url}/api/v1/me/status", "PUT", {"status": "online"}, token=token)
    _status, widget = _call(f"{url}/widget/v1/{widget_key}/status")
    assert (widget["status"], widget["reason"]) == ("online", "operators_online")

    # An explicit logout of the only device switches the owner offline at once.
    status, _body = _call(f"{url}/api/v1/auth/logout", "POST", token=token)
    assert status == 204
    _status, widget = _call(f"{url}/widget/v1/{widget_key}/status")
    assert (widget["status"], widget["reason"]) == ("offline", "no_operator_online")
