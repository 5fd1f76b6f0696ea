"""ASGI entry point: HTTP to Django, WebSockets to the consumers."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatstatus.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from chatstatus.handler import asgi_handler  # noqa: E402

# Django's handler, with each request's middleware and view in one crossing to
# its thread (see chatstatus/handler.py).
django_asgi_app = asgi_handler()

from channels.auth import AuthMiddlewareStack  # noqa: E402 (Django must be set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver, path  # noqa: E402

from api.asgi import with_operator_replies  # noqa: E402
from chatstatus import bodylimit, graceful  # noqa: E402
from chatstatus.admission import with_admission  # noqa: E402
from chatstatus.edgemetrics import with_edge_metrics  # noqa: E402
from chatstatus.health import with_health  # noqa: E402
from chatstatus.logs import with_request_id  # noqa: E402
from chatstatus.proxy import with_trusted_proxies  # noqa: E402
from chatstatus.ticker import with_ticker  # noqa: E402
from conversations.asgi import with_visitor_messages  # noqa: E402
from conversations.consumers import InboxConsumer  # noqa: E402
from widget.asgi import with_widget_status  # noqa: E402
from widget.consumers import WidgetConsumer  # noqa: E402

# Daphne refuses an oversized request body as it arrives (see chatstatus/bodylimit.py).
bodylimit.install(limit=settings.REQUEST_BODY_MAX_BYTES)
# SIGTERM closes sockets with 1012 and drains before exiting (see chatstatus/graceful.py).
graceful.install(drain_seconds=settings.SHUTDOWN_DRAIN_SECONDS)

# Widget sockets are public and many: they skip the session/auth lookup that
# operator sockets need, so connecting a visitor costs no database query.
websocket_urlpatterns = [
    path("ws/operator/", AuthMiddlewareStack(InboxConsumer.as_asgi())),
    path("ws/widget/<str:widget_key>/", WidgetConsumer.as_asgi()),
]

# The widget status read, the hottest request, and the two messages of a chat,
# the busiest writes, are answered in front of Django when they are the common
# case (see widget/asgi.py, conversations/asgi.py, api/asgi.py); Django serves
# REQUEST_CONCURRENCY requests at a time and sheds the rest with a 503 after a
# short wait in line (see chatstatus/admission.py).
router = ProtocolTypeRouter(
    {
        "http": with_widget_status(with_visitor_messages(with_operator_replies(with_admission(django_asgi_app)))),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Outermost first: the client's address behind trusted proxies (every limit counts
# per client), a request id for the logs, requests, sockets and heartbeats
# counted, the probes and /metrics answered in front of everything else.
edge = with_trusted_proxies(with_request_id(with_edge_metrics(with_health(router))))

application = with_ticker(edge) if settings.EMBEDDED else edge

# What start-up built (Django, the URL conf, every view's module) lives as long
# as the process. Frozen, it is left out of the garbage collector's passes: a
# full pass walked it all and stopped the event loop for 80-150 ms, what the
# slowest chat messages under load waited for. With so little left to count as
# long-lived, full passes would come every 10 young ones (walking every
# socket's objects, 100-200 ms with thousands of sockets): 100 instead.
get_resolver().url_patterns  # noqa: B018 (every view imported now, not on the first request)
gc.collect()
gc.freeze()
GC_THRESHOLDS = (2000, 10, 100)  # Python's defaults, but full passes 10 times rarer
gc.set_threshold(*GC_THRESHOLDS)
