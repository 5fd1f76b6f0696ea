"""Public widget endpoints: the script, the status, a demo page (the conversation
endpoints are in ``conversations.views``).

No cookies, no sessions: CORS (``*``, never credentials) is added by
django-cors-headers for ``/widget/v1/``. Views translate HTTP and call one
selector or service.
"""

import gzip
import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from widget import selectors

logger = logging.getLogger(__name__)

STATUS_CACHE_CONTROL = "public, max-age=5"
SCRIPT_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"
GROUP_KEY_MAX = 50

# One body for an unknown key and an unknown group, so a 404 tells nothing.
NOT_FOUND_BODY = b'{"error":"not_found"}'


def _json(data: dict, *, status: int = 200) -> HttpResponse:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return HttpResponse(body, status=status, content_type="application/json")


def _not_found() -> HttpResponse:
    response = HttpResponse(NOT_FOUND_BODY, status=404, content_type="application/json")
    response["Cache-Control"] = STATUS_CACHE_CONTROL
    return response


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): proxies may have added W/.
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


# --- the script -----------------------------------------------------------------


@dataclass(frozen=True)
class _Script:
    body: bytes
    gzipped: bytes
    etag: str


def _script_load() -> _Script:
    path = finders.find("widget/widget.js") or str(Path(settings.STATIC_ROOT) / "widget" / "widget.js")
    body = Path(path).read_bytes()
    return _Script(body, gzip.compress(body, 9, mtime=0), f'"{hashlib.sha256(body).hexdigest()[:16]}"')


_script_cached = cache(_script_load)


@require_GET
def widget_script(request: HttpRequest) -> HttpResponse:
    """``/widget.js``, served from memory with an ETag, gzipped when accepted."""
    script = _script_load() if settings.DEBUG else _script_cached()
    if etag_matches(request.headers.get("If-None-Match"), script.etag):
        response = HttpResponseNotModified()
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(script.gzipped, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(script.body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = script.etag
    response["Cache-Control"] = SCRIPT_CACHE_CONTROL
    # Loadable by pages that isolate themselves with Cross-Origin-Embedder-Policy.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


# --- status -----------------------------------------------------------------------


@require_GET
def widget_status(request: HttpRequest, widget_key: str) -> HttpResponse:
    """``GET /widget/v1/{key}/status[?group=KEY]`` from the materialised snapshot."""
    group_key = request.GET.get("group") or None
    if group_key is not None and len(group_key) > GROUP_KEY_MAX:
        return _not_found()
    status = selectors.widget_status(widget_key=widget_key, group_key=group_key)
    if status is None:
        return _not_found()
    if etag_matches(request.headers.get("If-None-Match"), status.etag):
        response = HttpResponseNotModified()
    else:
        response = _json(status.body)
    response["ETag"] = status.etag
    response["Cache-Control"] = STATUS_CACHE_CONTROL
    return response


# --- demo -------------------------------------------------------------------------


@xframe_options_sameorigin  # the dashboard's Embed page previews it in an iframe
@require_GET
def widget_demo(request: HttpRequest, widget_key: str) -> HttpResponse:
    """A page that embeds the widget exactly as a customer's website would."""
    if selectors.widget_account(widget_key=widget_key) is None:
        raise Http404
    group = request.GET.get("group", "")[:GROUP_KEY_MAX]
    language = request.GET.get("lang", "")
    context = {
        "widget_key": widget_key,
        "group": group,
        "language": language if language in ("en", "cs") else "",
        "script_url": request.build_absolute_uri(reverse("widget:script")),
    }
    return render(request, "widget/demo.html", context)
