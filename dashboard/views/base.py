"""What every dashboard page shares: access checks, the page config, texts for moments."""

import datetime
import functools
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.dates import WEEKDAYS as WEEKDAY_NAMES
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.auth import session_device_tag
from accounts.models import Status
from conversations.selectors import conversations_waiting_count

REASONS = {
    "operators_online": gettext_lazy("An operator is online"),
    "no_operator_online": gettext_lazy("No operator is online"),
    "closed": gettext_lazy("Outside opening hours"),
}


# --- access ---------------------------------------------------------------------


def dashboard_page(*, admin: bool = False) -> Callable:
    """Log-in required; an operator without an account (site staff) or an
    agent on an admin page gets the 403 page."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.user.account_id is None or (admin and not request.user.is_account_admin):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def dashboard_json(view: Callable) -> Callable:
    """The JSON endpoints of the dashboard's pages: a 401 for the signed out
    (the page's script sends them to the log-in page), a 403 for site staff
    without an account; never a redirect to an HTML page."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "unauthenticated"}, status=401)
        if request.user.account_id is None:
            return JsonResponse({"error": "forbidden"}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def device_tag(request: HttpRequest) -> str:
    return session_device_tag(request.session.session_key or "")


# --- text shown by the server and, through the page config, by app.js -------


def moment_text(moment: datetime.datetime, *, tz: zoneinfo.ZoneInfo, now: datetime.datetime) -> str:
    """'today 17:00', 'tomorrow 09:00', 'Monday 09:00', or a date further away."""
    local = moment.astimezone(tz)
    days = (local.date() - now.astimezone(tz).date()).days
    if days == 0:
        day = _("today")
    elif days == 1:
        day = _("tomorrow")
    elif 1 < days < 7:
        day = str(WEEKDAY_NAMES[local.weekday()])
    else:
        day = local.date().isoformat()
    return _("%(day)s %(time)s") % {"day": day, "time": local.strftime("%H:%M")}


def next_change_text(
    *, reason: str, next_change_at: datetime.datetime | None, tz: zoneinfo.ZoneInfo, now: datetime.datetime
) -> str:
    """A schedule flip is an opening when the box is closed, else a closing."""
    if next_change_at is None:
        return ""
    when = moment_text(next_change_at, tz=tz, now=now)
    if reason == "closed":
        return _("Opens %(when)s") % {"when": when}
    return _("Closes %(when)s") % {"when": when}


def parse_moment(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def page_config(request: HttpRequest, *, inbox_waiting: int) -> dict:
    """What app.js and inbox.js need: who I am, the heartbeat period, the
    inbox's count and the texts they show."""
    me = request.user
    return {
        "me": me.id,
        "status": me.status,
        "heartbeat_seconds": settings.PRESENCE_HEARTBEAT_SECONDS,
        "ws_path": "/ws/operator/",
        "login_url": reverse("login"),
        "team_url": reverse("dashboard:team"),
        "inbox_url": reverse("dashboard:inbox"),
        "inbox_count_url": reverse("dashboard:inbox_count"),
        "inbox_waiting": inbox_waiting,
        "texts": {
            "status": {value: str(label) for value, label in Status.choices},
            "reasons": {key: str(label) for key, label in REASONS.items()},
            "present": _("Connected"),
            "absent": _("No device connected"),
            "opens": _("Opens %(when)s"),
            "closes": _("Closes %(when)s"),
            "when": _("%(day)s %(time)s"),
            "today": _("today"),
            "tomorrow": _("tomorrow"),
            "weekdays": [str(WEEKDAY_NAMES[index]) for index in range(7)],
            "copied": _("Copied"),
            "copy_failed": _("Select the text and copy it"),
            "new_conversation": _("New conversation: %(name)s"),
            "new_message": _("New message from %(name)s"),
            "visitor": _("Visitor #%(id)s"),
            "someone": _("Visitor"),
        },
    }


def render_page(request: HttpRequest, template: str, context: dict | None = None, *, status: int = 200) -> HttpResponse:
    # The nav's count of conversations waiting for a reply, on every page (inbox.js keeps it live).
    waiting = conversations_waiting_count(operator=request.user)
    context = {
        "me": request.user,
        "config": page_config(request, inbox_waiting=waiting),
        "inbox_waiting": waiting,
        **(context or {}),
    }
    return render(request, template, context, status=status)


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback
