"""Settings of the server processes that tests start (Daphne, Celery).

The production settings, with the tests' fast password hasher first so the
operators the tests create can log in without a slow hash upgrade at every
login (which, on a loaded 2-core machine, stalls the server's one sync thread).
"""

from chatstatus.settings import *  # noqa: F403

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
