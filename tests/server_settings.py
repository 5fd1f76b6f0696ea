"""Settings of the server processes that tests start (Daphne, Celery).

The production settings, with the tests' fast password hasher first so the
operators the tests create can log in without a slow hash upgrade at every
login (which, on a loaded 2-core machine, stalls the server's one sync thread).
"""

import os

from chatstatus.settings import *  # noqa: F403

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Browser tests and drills wait for the busy message in seconds, not 45.
if os.environ.get("CHATSTATUS_TEST_BUSY_AFTER_SECONDS"):
    CONVERSATION_BUSY_AFTER_SECONDS = float(os.environ["CHATSTATUS_TEST_BUSY_AFTER_SECONDS"])
