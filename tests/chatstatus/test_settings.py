"""Configuration comes from the environment; a bad value stops start-up naming the variable."""

import os
import subprocess
import sys

import pytest

from tests.live import ROOT

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-secret-key-that-is-long-enough-0123456789abcdefgh",
    "ALLOWED_HOSTS": "status.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "SECURE_HTTPS": "1",
    "TRUSTED_PROXIES": "10.0.0.0/8",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and not k.startswith(("PRESENCE_", "PYTEST"))
    }
    base["DJANGO_SETTINGS_MODULE"] = "chatstatus.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


BAD_VALUES = [
    ("PRESENCE_HEARTBEAT_SECONDS", "soon"),
    ("PRESENCE_HEARTBEAT_SECONDS", "0"),
    ("PRESENCE_CONNECTION_TTL_SECONDS", "-5"),
    ("PRESENCE_SWEEP_SECONDS", "1.5"),
    ("DEBUG", "maybe"),
    ("REDIS_URL", "localhost:6379"),
    ("SECRET_KEY", "short"),
    ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ("TRUSTED_PROXIES", "nginx"),
    ("METRICS_ALLOW_FROM", "everyone"),
    ("METRICS_TOKEN", "too-short"),
    ("METRICS_LISTEN", "9101"),
    ("REDIS_SENTINELS", "sentinel-a"),
    ("REDIS_SENTINELS", "sentinel-a:port"),
    ("REDIS_SENTINEL_MASTER", "mymaster"),  # without REDIS_SENTINELS
    ("SHUTDOWN_DRAIN_SECONDS", "forever"),
    ("LOG_FORMAT", "xml"),
    ("DATABASE_PREPARED_STATEMENTS", "sometimes"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_bad_value_stops_start_up_with_a_message_naming_the_variable(name, value):
    result = manage("check", **{name: value})
    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


def test_the_connection_ttl_must_cover_three_heartbeats():
    result = manage("check", PRESENCE_HEARTBEAT_SECONDS="30", PRESENCE_CONNECTION_TTL_SECONDS="60")
    assert result.returncode != 0
    assert "PRESENCE_CONNECTION_TTL_SECONDS" in result.stderr
    assert "PRESENCE_HEARTBEAT_SECONDS" in result.stderr


def test_unset_variables_give_the_embedded_defaults():
    code = (
        "from django.conf import settings as s;"
        "print(s.EMBEDDED, s.PRESENCE_HEARTBEAT_SECONDS, s.PRESENCE_CONNECTION_TTL_SECONDS, s.PRESENCE_SWEEP_SECONDS,"
        "s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'])"
    )
    result = manage("shell", "-v", "0", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "25",
        "75",
        "15",
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
    ]


def test_the_documented_production_settings_pass_the_deployment_checks():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_sentinels_need_the_master_s_name():
    result = manage("check", REDIS_SENTINELS="127.0.0.1:26379,127.0.0.1:26380")
    assert result.returncode != 0
    assert "REDIS_SENTINEL_MASTER" in result.stderr


def test_sentinels_configure_every_redis_user():
    code = (
        "from django.conf import settings as s;"
        "print(s.EMBEDDED, s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]['master_name'],"
        "s.CACHES['default']['BACKEND'], s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS['master_name'],"
        "s.REDIS_SENTINELS)"
    )
    result = manage(
        "shell",
        "-v",
        "0",
        "-c",
        code,
        REDIS_SENTINELS="127.0.0.1:26379,[::1]:26380",
        REDIS_SENTINEL_MASTER="chat",
        REDIS_URL="redis://:pw@ignored:1/3",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(maxsplit=4) == [
        "False",
        "chat",
        "chatstatus.cache.SentinelRedisCache",
        "sentinel://:pw@127.0.0.1:26379/3;sentinel://:pw@[::1]:26380/3",
        "chat (('127.0.0.1', 26379), ('::1', 26380))",
    ]


def test_behind_https_without_trusted_proxies_the_deployment_check_warns():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "TRUSTED_PROXIES"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "chatstatus.W002" in result.stdout + result.stderr


@pytest.mark.production_only
def test_celery_s_queue_lives_under_the_installation_s_key_prefix():
    import redis
    from django.conf import settings

    from chatstatus.celery import app

    client = redis.Redis.from_url(settings.REDIS_URL)
    ours, shared = f"{settings.REDIS_PREFIX}:celery", "celery"
    before = client.llen(shared)
    try:
        app.send_task("presence.tasks.presence_sweep", expires=60)

        # It should queue the task under REDIS_PREFIX, not in the queue every installation shares.
        assert client.llen(ours) == 1
        assert client.llen(shared) == before
    finally:
        client.delete(ours)


def test_postgresql_prepares_statements_unless_turned_off():
    code = (
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS'];"
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
    )
    postgres = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}
    on = manage("shell", "-v", "0", "-c", code, **postgres)
    off = manage("shell", "-v", "0", "-c", code, DATABASE_PREPARED_STATEMENTS="false", **postgres)
    sqlite = manage("shell", "-v", "0", "-c", code)
    assert on.returncode == off.returncode == sqlite.returncode == 0, on.stderr + off.stderr + sqlite.stderr
    assert on.stdout.split() == ["True", "5"]
    assert off.stdout.split() == ["None", "None"]
    assert sqlite.stdout.split() == ["None", "None"]


def test_smtp_without_a_host_sends_through_this_host_as_django_always_did():
    code = "from django.core.mail import mailers; print(mailers['default'].host, mailers['default'].port)"
    smtp = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"}
    default = manage("shell", "-v", "0", "-c", code, **smtp)
    named = manage("shell", "-v", "0", "-c", code, EMAIL_HOST="smtp.example.com", EMAIL_PORT="587", **smtp)
    assert default.returncode == named.returncode == 0, default.stderr + named.stderr
    assert default.stdout.split() == ["localhost", "25"]
    assert named.stdout.split() == ["smtp.example.com", "587"]


@pytest.mark.production_only
@pytest.mark.django_db
def test_a_statement_the_orm_repeats_is_prepared_on_its_connection():
    from django.db import connection

    from accounts.models import Account

    for account_id in range(1, 8):  # the same statement, other parameters
        Account.objects.filter(id=account_id).first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    table = f'FROM "{Account._meta.db_table}" WHERE "{Account._meta.db_table}"."id" = $1'
    assert any(table in statement for statement in prepared), prepared
