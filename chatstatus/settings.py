"""Settings for chatstatus, read from the environment (see README "Configuration").

Unset variables give the embedded mode: SQLite in ``var/``, in-memory presence
store and channel layer, an in-process ticker instead of Celery beat.
Setting ``REDIS_URL`` switches to the production mode.
"""

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from chatstatus.env import env_bool, env_choice, env_host_ports, env_int, env_list, env_networks, env_str
from chatstatus.redis_ha import RedisTarget, celery_broker, channel_layer_host

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
# The embedded database, secret key and media live here; a fresh clone has none.
VAR_DIR.mkdir(exist_ok=True)


def _secret_key() -> str:
    value = env_str("SECRET_KEY")
    if value is not None:
        if len(value) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
        return value
    # Embedded mode: keep one random key per installation so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Redis: one server (REDIS_URL), or the master Redis Sentinel names ------------
# With sentinels, REDIS_URL gives only the database number and the password
# (its host and port are not used); every Redis user asks chatstatus.redis_ha.
REDIS_SENTINELS = env_host_ports("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER") or None
if REDIS_SENTINELS and REDIS_SENTINEL_MASTER is None:
    raise ImproperlyConfigured("REDIS_SENTINEL_MASTER must name the master's service when REDIS_SENTINELS is set")
if REDIS_SENTINEL_MASTER is not None and not REDIS_SENTINELS:
    raise ImproperlyConfigured(
        "REDIS_SENTINELS must list the sentinels (host:port,...) when REDIS_SENTINEL_MASTER is set"
    )
REDIS_URL = env_str("REDIS_URL") or None
if REDIS_URL is not None and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")
if REDIS_URL is None and REDIS_SENTINELS:
    REDIS_URL = "redis://sentinel-master/0"  # database 0, no password; the host is never used
EMBEDDED = REDIS_URL is None
REDIS_TARGET = None if EMBEDDED else RedisTarget(url=REDIS_URL, sentinels=REDIS_SENTINELS, master=REDIS_SENTINEL_MASTER)
# One prefix for every Redis key and channel-layer name of this installation.
REDIS_PREFIX = env_str("REDIS_PREFIX", "cs") or "cs"

# --- presence timing (ARCHITECTURE §2) -------------------------------------
PRESENCE_HEARTBEAT_SECONDS = env_int("PRESENCE_HEARTBEAT_SECONDS", 25, minimum=1, maximum=600)
PRESENCE_CONNECTION_TTL_SECONDS = env_int("PRESENCE_CONNECTION_TTL_SECONDS", 75, minimum=3, maximum=3600)
PRESENCE_SWEEP_SECONDS = env_int("PRESENCE_SWEEP_SECONDS", 15, minimum=1, maximum=600)
# How often due automatic-message timers are fired (rules 7–8 promise ±2 s).
CONVERSATION_TIMERS_SECONDS = 1
# Replaces every account's busy delay when set (tests go below its 15 s minimum).
CONVERSATION_BUSY_AFTER_SECONDS: float | None = None
# A connection must survive two lost heartbeats before it counts as dead.
if PRESENCE_CONNECTION_TTL_SECONDS < 3 * PRESENCE_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "PRESENCE_CONNECTION_TTL_SECONDS must be at least 3 × PRESENCE_HEARTBEAT_SECONDS "
        f"({PRESENCE_CONNECTION_TTL_SECONDS} < 3 × {PRESENCE_HEARTBEAT_SECONDS})"
    )

INSTALLED_APPS = [
    "daphne",
    "chatstatus.apps.ChatstatusAdminConfig",  # django.contrib.admin, login throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The apps, lowest floor first (ARCHITECTURE §5; import-linter checks it).
    "accounts",
    "groups",
    "hours",
    "presence",
    "widget",
    "conversations",
    "dashboard",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",  # SECURE_CSP below
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chatstatus.logs.RequestLogContextMiddleware",  # the account of a log line, when known
    "dashboard.middleware.PrivatePagesMiddleware",  # Cache-Control: no-store for a signed-in caller
    "dashboard.middleware.PagePolicyMiddleware",  # the page's own parts of the CSP
    "dashboard.middleware.OperatorLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatstatus.urls"
ASGI_APPLICATION = "chatstatus.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",  # csp_nonce for inline <script>/<style>
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'chatstatus.sqlite3'}",
        conn_max_age=0,
    )
}
# Read whatever the database, so that a bad value stops start-up in every mode.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
# PostgreSQL only: the event loop's own pool (chatstatus/adb.py, the chat's two
# messages), beside Django's; a web process holds up to both sizes together.
DATABASE_ASYNC_POOL_SIZE = env_int("DATABASE_ASYNC_POOL_SIZE", 10, minimum=1, maximum=500)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool per process: an ASGI process serves each request from its own
    # thread, and without a pool every request opened (and held) a connection
    # of its own, until a burst used up the server's max_connections. Requests
    # beyond the pool wait for a connection (up to 10 s) instead.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 20, minimum=1, maximum=500),
        "timeout": 10,
    }
    if DATABASE_PREPARED_STATEMENTS:
        # Parameters bound by the server, and a statement run 5 times on a
        # pooled connection prepared there: PostgreSQL plans it once, not on
        # every message (a third less of its CPU a message, docs/PERFORMANCE.md).
        # Off for a pooler in transaction mode that cannot keep them.
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Embedded mode serves from one process with threads: WAL and a busy timeout
    # keep concurrent readers and the single writer from failing with "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.Operator"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("cs", _("Czech"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or (VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [channel_layer_host(REDIS_TARGET)], "prefix": f"{REDIS_PREFIX}:layer"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_PREFIX}:cache",
        }
    }
    if REDIS_SENTINELS:
        CACHES["default"]["BACKEND"] = "chatstatus.cache.SentinelRedisCache"
        CACHES["default"]["OPTIONS"] = {"sentinels": list(REDIS_SENTINELS), "master": REDIS_SENTINEL_MASTER}

# --- Celery (production mode only; embedded mode uses the in-process ticker) --
# No result backend: every task ignores its result.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = celery_broker(REDIS_TARGET) if REDIS_TARGET else (None, {})
# Every broker key (queues, unacked messages, bindings) under REDIS_PREFIX, like
# the store's and the channel layer's: installations sharing one Redis never
# take each other's tasks.
CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = f"{REDIS_PREFIX}:"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
# LOG_FORMAT=json: Celery's processes log through LOGGING below (one JSON object per line).
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", choices=("plain", "json"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "plain"

# --- REST API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The one DRF throttle in use (accounts.throttles.LoginRateThrottle). Status
    # changes are limited by the status service, the widget by widget.ratelimit;
    # no view uses an "anon" rate, so none is set (it would only look like one).
    "DEFAULT_THROTTLE_RATES": {"login": "10/min"},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "chatstatus API",
    "DESCRIPTION": "Operators' status, presence and the chat box status of an account.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page ships its own Swagger UI: it works offline and loads nothing from another host.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One enum name per choice set, where field names alone would make several or clash.
    # The public widget endpoints are plain Django views: a hook adds them.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "api.widget_schema.add_widget_paths"],
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "accounts.models.Status",
        "RoleEnum": "accounts.models.Operator.Role",
        "NewOperatorRoleEnum": "api.serializers.NEW_OPERATOR_ROLES",
    },
}

# --- CORS: only the public widget endpoints, any origin, never credentials ----
from corsheaders.defaults import default_headers as corsheaders_default_headers  # noqa: E402

CORS_URLS_REGEX = r"^/widget/v1/.*$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_EXPOSE_HEADERS = ["ETag", "Retry-After"]
# The widget names its visitor with a header (no cookies).
CORS_ALLOW_HEADERS = (*corsheaders_default_headers, "x-visitor-token")

# --- e-mail ------------------------------------------------------------------
# EMAIL_BACKEND names the backend class; EMAIL_HOST/EMAIL_PORT/... configure SMTP.
# Embedded mode prints e-mails to the console; production sends them by SMTP.
_email_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if EMBEDDED else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": {
            key.lower(): value
            for key, value in {
                # SMTP on this host unless told otherwise (Django's own default
                # before MAILERS, which makes SMTP without a host an error).
                "host": env_str("EMAIL_HOST", "localhost" if _email_backend.endswith(".smtp.EmailBackend") else None),
                "port": env_int("EMAIL_PORT", 0, minimum=0, maximum=65535) or None,
                "username": env_str("EMAIL_HOST_USER"),
                "password": env_str("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS", False) or None,
            }.items()
            if value is not None
        },
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "chatstatus@localhost")

# --- security (production: set SECURE_HTTPS=1 behind a TLS-terminating proxy) --
SECURE_HTTPS = env_bool("SECURE_HTTPS", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = SECURE_HTTPS
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if SECURE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every answer (django.middleware.csp). Scripts and
# styles only from this site's files, or inline with the page's nonce
# ({% csp_nonce_attr %}); no inline handlers or style attributes anywhere.
# dashboard.middleware.PagePolicyMiddleware adds, on HTML pages, this host's
# ws:// and wss:// to connect-src and frame-ancestors 'self' where the view
# allows framing by this site (X-Frame-Options SAMEORIGIN: the widget demo).
# The widget status fast path (widget/asgi.py) sends the same header.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],  # the favicon and Swagger UI's icons are data: URLs
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The largest form is the opening hours at their caps (hours.schedule): 366 dates
# × 3 fields + 7 days × 12 intervals × 2 + 4 = 1,270 fields; a group at
# MAX_MEMBERS posts 1,003. Django's default of 1,000 refused both with a bare 400.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2_000
# The largest request body a web process accepts at all, refused with 413 as it
# arrives (chatstatus/bodylimit.py): the biggest legitimate one is an avatar
# upload (2 MiB, dashboard.forms) with its form fields.
REQUEST_BODY_MAX_BYTES = 4 * 1024 * 1024

# --- behind a reverse proxy, operations --------------------------------------
# The proxies whose X-Forwarded-For/-Proto are believed (chatstatus.proxy):
# addresses or CIDR networks; empty: none, every client is the connection's peer.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
# Who may read /metrics: these addresses, or a caller with "Authorization: Bearer METRICS_TOKEN".
METRICS_ALLOW_FROM = env_networks("METRICS_ALLOW_FROM")
METRICS_TOKEN = env_str("METRICS_TOKEN") or None
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters long")
# host:port where a Celery worker or beat serves its /metrics (web processes serve theirs on their own port).
_metrics_listen = env_host_ports("METRICS_LISTEN")
if len(_metrics_listen) > 1:
    raise ImproperlyConfigured("METRICS_LISTEN must be one host:port")
METRICS_LISTEN = _metrics_listen[0] if _metrics_listen else None
# Requests Django serves at once per web process, and how long the next ones may
# wait for a turn before a 503 (chatstatus/admission.py). Each holds a thread and a
# database connection: keep it below DATABASE_POOL_SIZE (the sockets need some too).
REQUEST_CONCURRENCY = env_int("REQUEST_CONCURRENCY", 16, minimum=1, maximum=500)
REQUEST_QUEUE_SECONDS = env_int("REQUEST_QUEUE_SECONDS", 5, minimum=1, maximum=60)
# How long a web process given SIGTERM waits for its sockets to close and its requests to finish.
SHUTDOWN_DRAIN_SECONDS = env_int("SHUTDOWN_DRAIN_SECONDS", 10, minimum=0, maximum=300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "chatstatus.logs.JsonLogFormatter"},  # one object per line, fields fixed
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
