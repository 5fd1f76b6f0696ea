"""The production recipe, started as the README says: from ``deploy/``.

``deploy/Procfile`` gives each process's command (``web``, ``worker``,
``beat``), run as a Procfile runner runs it (``/bin/sh -c``, ``$PORT`` per web
process); ``deploy/nginx.conf`` is the site nginx serves, rendered with this
stack's ports and a self-signed certificate. Everything listens on loopback,
on free ports; nginx runs from a temporary prefix with its own configuration
(never the system's). PostgreSQL is the suite's test database; Redis is a
``redis-server`` of the stack's own.

What differs from a real installation, and why:
* ``DJANGO_SETTINGS_MODULE=tests.server_settings`` — the production settings
  with the tests' fast password hasher first, so operators the test creates
  can log in;
* the host is ``127.0.0.1`` (``ALLOWED_HOSTS``, ``CSRF_TRUSTED_ORIGINS``) and
  the certificate is self-signed;
* the beat's schedule file is in the stack's temporary directory
  (``CELERY_BEAT_SCHEDULE``), and each child's output goes to ``artifacts/``.
"""

import contextlib
import datetime as dt
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.test import override_settings

from presence.store import get_store
from tests.drills.conftest import START_SECONDS, SWEEP_SUCCEEDED, RedisServer, ready, wait_until
from tests.live import ARTIFACTS, ROOT, ServerProcess, free_port, server_env, wait_for_port

DEPLOY = ROOT / "deploy"
PROCFILE = DEPLOY / "Procfile"
NGINX_SITE = DEPLOY / "nginx.conf"
NGINX_PROXY_ADDRESS = "127.0.0.1"  # nginx connects to the web processes from here: the trusted proxy
HOST = "127.0.0.1"


def nginx_binary() -> str:
    """Debian's nginx (scripts/test installs it); a missing one is a failure, never a skip."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if Path(path).exists()), None
    )
    if found is None:
        pytest.fail("nginx is not installed: apt-get install -y nginx (scripts/test does it)")
    return found


def procfile() -> dict[str, str]:
    """``role: command`` lines of deploy/Procfile, as honcho or foreman read them."""
    roles = {}
    for line in PROCFILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            roles[match[1]] = match[2]
    return roles


def render_nginx_site(*, web_ports: list[int], listen: int, certificate: Path, key: Path) -> str:
    servers = "\n    ".join(f"server {HOST}:{port} max_fails=0;" for port in web_ports)
    site = NGINX_SITE.read_text()
    for name, value in {
        "@WEB_SERVERS@": servers,
        "@LISTEN@": f"{HOST}:{listen}",
        "@SERVER_NAME@": HOST,
        "@TLS_CERTIFICATE@": str(certificate),
        "@TLS_CERTIFICATE_KEY@": str(key),
    }.items():
        site = site.replace(name, value)
    assert "@" not in re.sub(r"#.*", "", site), "a placeholder of deploy/nginx.conf was left unrendered"
    return site


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def client_tls() -> ssl.SSLContext:
    """The clients trust the stack's self-signed certificate (they check nothing else)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ProcfileProcess(ServerProcess):
    """One line of deploy/Procfile, run as a Procfile runner runs it."""

    def __init__(self, role: str, *, env: dict[str, str], name: str) -> None:
        self.role = role
        super().__init__(["/bin/sh", "-c", "exec " + procfile()[role]], env=env, log_name=name)


class Nginx(ServerProcess):
    def __init__(self, *, prefix: Path, site: str, port: int) -> None:
        self.port = port
        for sub in ("conf", "logs", "temp"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        (prefix / "conf" / "chatstatus.conf").write_text(site)
        temp = prefix / "temp"
        user = "user root root;" if os.getuid() == 0 else ""
        (prefix / "conf" / "nginx.conf").write_text(
            f"""{user}
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/logs/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {prefix}/conf/chatstatus.conf;
}}
"""
        )
        args = [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "conf" / "nginx.conf"), "-e", "stderr"]
        test = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        super().__init__(args, env=dict(os.environ), log_name=f"nginx-{port}")
        wait_for_port(port, proc=self.proc, timeout=20)

    def kill(self) -> None:
        """SIGTERM, nginx's fast shutdown: its master takes its workers along (a
        SIGKILL of the master would leave them running)."""
        self.stop()


@dataclass
class Stack:
    redis: RedisServer
    directory: Path
    env: dict[str, str]
    webs: dict[int, ProcfileProcess] = field(default_factory=dict)
    others: list[ServerProcess] = field(default_factory=list)
    nginx: Nginx | None = None
    web_ports: list[int] = field(default_factory=list)
    web_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return f"https://{HOST}:{self.nginx.port}"

    @property
    def ws_url(self) -> str:
        assert self.nginx is not None
        return f"wss://{HOST}:{self.nginx.port}"

    def web(self, port: int) -> ProcfileProcess:
        """Start (or start again) the web process on ``port`` and wait until it listens."""
        env = {**self.env, **self.web_env, "PORT": str(port)}
        process = ProcfileProcess("web", env=env, name=f"stack-web-{port}-{time.monotonic_ns()}")
        self.webs[port] = process
        wait_for_port(port, proc=process.proc, timeout=START_SECONDS)
        return process

    def stop(self) -> None:
        for process in [*self.webs.values(), *self.others, *([self.nginx] if self.nginx else [])]:
            process.kill()
            process.stop()
        self.redis.stop()
        artifacts_copy(self)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_stack(*, name: str, webs: int = 2, web_env: dict[str, str] | None = None, **extra_env: str) -> Stack:
    directory = Path(tempfile.mkdtemp(prefix="chatstatus-stack-"))
    redis = RedisServer(name=name)
    nginx_port = free_port()
    certificate, key = self_signed(directory)
    env = server_env(
        REDIS_URL=redis.url,
        ALLOWED_HOSTS=HOST,
        CSRF_TRUSTED_ORIGINS=f"https://{HOST}:{nginx_port}",
        SECURE_HTTPS="1",
        TRUSTED_PROXIES=NGINX_PROXY_ADDRESS,
        METRICS_ALLOW_FROM="127.0.0.1",
        CELERY_BEAT_SCHEDULE=str(directory / "celerybeat-schedule"),
        LOG_LEVEL="INFO",
        **extra_env,
    )
    stack = Stack(redis=redis, directory=directory, env=env, web_env=web_env or {})
    try:
        stack.others = [
            ProcfileProcess("worker", env=env, name=f"stack-worker-{nginx_port}"),
            ProcfileProcess("beat", env=env, name=f"stack-beat-{nginx_port}"),
        ]
        stack.web_ports = [free_port() for _ in range(webs)]
        for port in stack.web_ports:
            stack.web(port)
        site = render_nginx_site(web_ports=stack.web_ports, listen=nginx_port, certificate=certificate, key=key)
        stack.nginx = Nginx(prefix=directory / "nginx", site=site, port=nginx_port)
        worker, beat = stack.others
        wait_until(lambda: " ready." in worker.log(), timeout=START_SECONDS, what="the worker ready", every=0.2)
        ready(beat)
        wait_until(
            lambda: SWEEP_SUCCEEDED.search(worker.log()), timeout=START_SECONDS, what="the first sweep", every=0.2
        )
    except BaseException:
        stack.stop()
        raise
    return stack


@contextlib.contextmanager
def stack_settings(stack: Stack) -> Iterator[None]:
    """This test process uses the stack's Redis too (factories, services)."""
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [stack.redis.url], "prefix": f"{settings.REDIS_PREFIX}:layer"},
        }
    }
    with override_settings(REDIS_URL=stack.redis.url, CHANNEL_LAYERS=layers):
        get_store.cache_clear()
        try:
            yield
        finally:
            get_store.cache_clear()


def artifacts_copy(stack: Stack) -> None:
    """Keep nginx's error log with the children's logs."""
    log = stack.directory / "nginx" / "logs" / "error.log"
    if log.exists():
        shutil.copy(log, ARTIFACTS / f"nginx-error-{stack.nginx.port if stack.nginx else 0}.log")
