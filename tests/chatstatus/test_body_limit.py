"""An oversized request body is refused as it arrives and costs a web process no memory.

A real Daphne process (as scripts/run and the production recipe start it) is
sent what a probe sent: bodies far over ``REQUEST_BODY_MAX_BYTES``, declared
and chunked, to a path that needs no login.
"""

import socket
import threading
from pathlib import Path

import pytest
from django.conf import settings

from tests.live import Daphne

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def read_status(sock: socket.socket) -> int | None:
    """The status code of the answer on ``sock``, None when the server just closed it."""
    sock.settimeout(10)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split(b" ", 2)[1])


def post_chunked(port: int, *, total: int) -> tuple[int | None, int]:
    """Stream up to ``total`` bytes chunked; returns (status, bytes sent before the server stopped us)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    try:
        sock.sendall(
            b"POST /no-such-page/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        while sent < total:
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        else:
            sock.sendall(b"0\r\n\r\n")
        return read_status(sock), sent
    finally:
        sock.close()


@pytest.fixture
def server():
    daphne = Daphne(name="body-limit")
    yield daphne
    daphne.stop()


def test_a_declared_oversized_body_is_refused_before_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /widget/v1/no-such-key/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
        )
        # It should answer 413 on the headers alone, without waiting for 200 MB.
        assert read_status(sock) == 413


def test_three_huge_chunked_uploads_leave_the_process_as_it_was(server):
    pid = server.proc.pid
    before = rss_bytes(pid)
    results: list[tuple[int | None, int]] = []
    uploads = [
        threading.Thread(target=lambda: results.append(post_chunked(server.port, total=250 * MiB))) for _ in range(3)
    ]
    for upload in uploads:
        upload.start()
    for upload in uploads:
        upload.join(timeout=120)
    grown = rss_bytes(pid) - before

    assert len(results) == 3
    # Each upload is cut off near the limit, not read to its end.
    assert all(sent < 64 * MiB for _status, sent in results), results
    # It should not grow the process by more than a few MiB, during or after.
    assert grown < 16 * MiB, f"the web process grew by {grown / MiB:.1f} MiB"
    assert server.proc.poll() is None


def test_a_body_under_the_limit_is_still_served(server):
    body = b"{}" + b" " * (settings.REQUEST_BODY_MAX_BYTES // 2)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /no-such-page/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        # It should reach Django, which answers this unknown page with its 404.
        assert read_status(sock) == 404
