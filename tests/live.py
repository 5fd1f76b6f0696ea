"""Real server processes for browser and integration tests.

``ServerProcess`` starts Daphne (or Celery) in a subprocess that shares the
test database and the test's Redis prefix, and waits until it answers.
"""

import itertools
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"


# Ports for the servers the tests start, below the kernel's ephemeral range
# (32768 and up, where outgoing connections take their local ports), and a
# range of its own for each xdist worker. The kernel's "any free port" is free
# only until it is used: two workers were given the same one, a drill's Redis
# Sentinel took it first, and a browser test's Daphne, unable to listen,
# found the sentinel there and sent it its requests.
PORTS_FROM, PORTS_PER_WORKER = 12000, 2000
# Where in its range this process starts: apart from another test session's.
_ports = itertools.count(random.randrange(PORTS_PER_WORKER))


def free_port() -> int:
    """A port nobody listens on, from this test process's own range."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = PORTS_FROM + (index % 10) * PORTS_PER_WORKER
    for _attempt in range(PORTS_PER_WORKER):
        port = first + next(_ports) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (a server of an earlier test still closing, or another program)
            return port
    raise RuntimeError(f"no free port in {first}–{first + PORTS_PER_WORKER - 1}")


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that sees what this test sees."""
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.server_settings",
        SECRET_KEY=settings.SECRET_KEY,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONUNBUFFERED="1",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env.update(extra)
    return env


def wait_for_port(port: int, *, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet; there is no event to wait on
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


class ServerProcess:
    def __init__(self, args: list[str], *, env: dict[str, str], log_name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"{log_name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Daphne(ServerProcess):
    def __init__(self, *, name: str = "daphne", port: int | None = None, **extra_env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable, "-m", "daphne", "-e", f"tcp:port={self.port}:interface=127.0.0.1:backlog=2048",
            "--websocket-max-message-size", "65536", "chatstatus.asgi:application",
        ]  # fmt: skip
        super().__init__(args, env=server_env(**extra_env), log_name=f"{name}-{self.port}")
        try:
            wait_for_port(self.port, proc=self.proc, timeout=90)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise


class Celery(ServerProcess):
    def __init__(self, role: str, *, name: str | None = None, **extra_env: str) -> None:
        args = [sys.executable, "-m", "celery", "-A", "chatstatus", role, "--loglevel", "INFO"]
        if role == "worker":
            args += ["--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        else:
            args += ["--schedule", str(ARTIFACTS / f"celerybeat-{os.getpid()}-{time.monotonic_ns()}")]
        super().__init__(args, env=server_env(**extra_env), log_name=name or f"celery-{role}-{os.getpid()}")

    def wait_ready(self, *, timeout: float = 90) -> "Celery":
        """Until a worker consumes from the broker, or a beat has sent its first task."""
        sign = " ready." if "worker" in self.proc.args else "Sending due task"
        deadline = time.monotonic() + timeout
        while sign not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.log_path.name} exited with {self.proc.returncode} before it was ready")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.log_path.name} not ready within {timeout} s")
            time.sleep(0.1)  # a child's log is all there is to watch: no event to wait on
        return self
