"""Settings for the test suite.

CHATSTATUS_TEST_MODE=production (default): real PostgreSQL and Redis.
CHATSTATUS_TEST_MODE=embedded: SQLite and the in-memory store and layer.
Each xdist worker gets its own Redis key prefix (and pytest-django its own database);
CHATSTATUS_TEST_TAG=name keeps runs of several checkouts on one machine apart.
"""

import os

MODE = os.environ.get("CHATSTATUS_TEST_MODE", "production")
WORKER = os.environ.get("CHATSTATUS_TEST_TAG", "") + os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 50)
os.environ["REDIS_PREFIX"] = f"cstest{WORKER}"
if MODE == "embedded":
    os.environ.pop("REDIS_URL", None)
    os.environ["DATABASE_URL"] = "sqlite:///" + os.path.join(os.path.dirname(__file__), "..", "var", "test.sqlite3")
else:
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

from chatstatus.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
CELERY_TASK_ALWAYS_EAGER = True
if MODE == "embedded":
    # A file, not shared-cache memory: a second writer waits for the lock instead of failing.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(os.path.dirname(__file__), "..", "var", f"test-{WORKER}.sqlite3")
    }
elif WORKER != "main":
    # Parallel runs (PYTEST_XDIST_WORKER=name, CHATSTATUS_TEST_TAG=name) each get their own test database.
    DATABASES["default"]["TEST"] = {"NAME": f"test_test_{WORKER}"}  # noqa: F405
MEDIA_ROOT = os.path.join(os.path.dirname(__file__), "..", "var", f"test-media-{WORKER}")
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405 (WhiteNoise warns when it is missing)
