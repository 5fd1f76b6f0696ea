"""The Prometheus metrics of chatstatus: every metric object is defined here.

Each process keeps its own (no multiprocess mode): a web process answers
``/metrics`` on its own port (``chatstatus.health``), a Celery worker or beat
on ``METRICS_LISTEN`` when set (``chatstatus.celery``). Scrape every process
on its own — never through the load balancer, which would hand each scrape to
a different process.

The lowest floor of the project (it imports only prometheus_client), so every
app may count here. docs/OPERATIONS.md says which to alert on.
"""

import time

from prometheus_client import Counter, Gauge, Histogram

# --- HTTP (chatstatus.edgemetrics, at the ASGI edge: the widget fast path too) ---------
HTTP_RESPONSES = Counter(
    "chatstatus_http_responses_total",
    "HTTP answers of this process, by kind of route, method and status.",
    ["kind", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "chatstatus_http_request_seconds",
    "Time from a request's arrival to the end of its answer, by kind of route.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_SHED = Counter(
    "chatstatus_http_shed_total",
    "Requests answered 503 because every request slot stayed busy for REQUEST_QUEUE_SECONDS (chatstatus.admission).",
)

# --- database (chatstatus.dbmetrics, an execute wrapper on every connection) -----------
DB_QUERIES = Counter("chatstatus_db_queries_total", "Database queries run by this process.", ["vendor"])
DB_QUERY_SECONDS = Histogram(
    "chatstatus_db_query_seconds",
    "Duration of one database query.",
    ["vendor"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DB_ERRORS = Counter(
    "chatstatus_db_errors_total", "Database queries that raised, by exception type.", ["vendor", "type"]
)


class DbQueryMeasured:
    """``with DbQueryMeasured(vendor):`` around one statement: counted, timed,
    and, when it raises, its exception counted by type. Django's connections
    (``chatstatus.dbmetrics``) and the event loop's (``chatstatus.adb``) alike."""

    __slots__ = ("started", "vendor")

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is not None and issubclass(kind, Exception):
            DB_ERRORS.labels(vendor=self.vendor, type=kind.__name__).inc()
        DB_QUERIES.labels(vendor=self.vendor).inc()
        DB_QUERY_SECONDS.labels(vendor=self.vendor).observe(time.perf_counter() - self.started)


# --- sockets (chatstatus.edgemetrics, at the ASGI edge) ----------------------------------
OPEN_SOCKETS = Gauge("chatstatus_open_sockets", "WebSockets open on this process, by kind.", ["kind"])
SOCKETS_OPENED = Counter("chatstatus_sockets_opened_total", "WebSockets accepted by this process, by kind.", ["kind"])
HEARTBEATS = Counter(
    "chatstatus_heartbeats_total",
    "Operator heartbeats received by this process (rate() gives heartbeats per second), by way: socket or rest.",
    ["via"],
)
WIDGET_CONNECTS_REFUSED = Counter(
    "chatstatus_widget_connects_refused_total", "Widget sockets closed with 4429 by the connect limit."
)
SHUTDOWN_SOCKETS_CLOSED = Counter(
    "chatstatus_shutdown_sockets_closed_total", "WebSockets closed with 1012 (service restart) at shutdown."
)

# --- pushes (presence.events, presence.pipeline) -----------------------------------
PUSHES_PUBLISHED = Counter(
    "chatstatus_pushes_published_total", "Messages published to the channel layer, by group kind.", ["kind"]
)
PUBLISH_SECONDS = Histogram(
    "chatstatus_publish_seconds",
    "Time to hand one batch of pushes to the channel layer (the fan-out's send).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PUBLISH_RETRIES = Counter(
    "chatstatus_publish_retries_total", "Publish batches sent again after a Redis connection error."
)
PUBLISH_FAILURES = Counter(
    "chatstatus_publish_failures_total", "Publish batches given up (their pushes are lost; reads stay right)."
)

# --- the sweep (chatstatus.celery, around presence.tasks.presence_sweep) -------------
SWEEP_SECONDS = Histogram(
    "chatstatus_sweep_seconds",
    "Duration of one presence sweep.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OPERATORS_SWEPT = Counter("chatstatus_operators_swept_total", "Operators switched offline by the sweep.")
SWEEP_FAILURES = Counter("chatstatus_sweep_failures_total", "Sweeps that raised.")

# --- the presence store (presence.store's Redis clients) --------------------------------
STORE_ERRORS = Counter(
    "chatstatus_store_errors_total",
    "Failed attempts to reach the presence store's Redis (connection or timeout errors, each retry counted).",
    ["client"],
)
REDIS_FAILOVERS = Counter(
    "chatstatus_redis_failovers_total", "Sentinel master switches seen by this process (+switch-master)."
)

# --- automatic-message timers (conversations) ----------------------------------------
# The conversations app counts its timers here: a timer is *due* when its moment
# has come and a worker picked it up, *fired* when it sent its automatic message
# (a due timer that finds an operator already replied fires nothing).
AUTOMATIC_MESSAGE_TIMERS_DUE = Counter(
    "chatstatus_automatic_message_timers_due_total", "Automatic-message timers that came due, by kind.", ["kind"]
)
AUTOMATIC_MESSAGE_TIMERS_FIRED = Counter(
    "chatstatus_automatic_message_timers_fired_total",
    "Automatic messages sent by a due timer, by kind (busy, offline).",
    ["kind"],
)


def group_kind(group: str) -> str:
    """``acct``, ``op`` or ``widget`` from a channel-layer group name (``prefix.kind.id``)."""
    parts = group.rsplit(".", 2)
    return parts[-2] if len(parts) == 3 else "other"
