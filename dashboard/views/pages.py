"""Dashboard pages: thin views that read through selectors and write through services.

Every query is scoped by ``request.user.account``: another account's object
is a 404, an admin page for an agent is a 403.
"""

import datetime
import re
import zoneinfo

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import services as account_services
from accounts.models import ApiToken, Operator, Status
from accounts.throttles import login_form_throttled, login_throttle_wait
from dashboard.forms.automatic_messages import AutomaticMessagesForm
from dashboard.forms.operators import (
    AllowedOriginsForm,
    EmailAuthenticationForm,
    HistoryFilterForm,
    OperatorCreateForm,
    OperatorEditForm,
    ProfileForm,
    StatusForm,
    form_add_service_errors,
)
from dashboard.views.base import (
    REASONS,
    dashboard_page,
    device_tag,
    next_change_text,
    parse_moment,
    render_page,
    safe_next,
)
from groups.models import Group
from groups.services import operator_set_groups
from hours.models import OpeningHours
from presence import services
from presence.models import Source, StatusEvent
from presence.selectors import operator_connections, operators_present

HISTORY_PAGE_SIZE = 50


# --- log in and out ------------------------------------------------------------------


class DashboardLoginView(LoginView):
    """Logging in never switches anyone online: the operator chooses that.

    Password guesses through this form count against the same budget as the
    API's token endpoint (``LoginRateThrottle``): one rule, whichever door a
    guesser knocks on.
    """

    template_name = "dashboard/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Checked before the form authenticates: a throttled guess learns nothing, not even a right password.
        seconds = login_throttle_wait(request)
        if seconds is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
        response = self.render_to_response(
            self.get_context_data(form=login_form_throttled(form, seconds=seconds)), status=429
        )
        response["Retry-After"] = str(seconds)
        return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    operator = request.user if request.user.is_authenticated and request.user.account_id is not None else None
    # Read before the session ends: its tag names the connections this logout closes.
    device = device_tag(request) if operator is not None else ""
    # The session ends first: the logout push sends this browser's other tabs,
    # and this one, to the login page, and the browser then drops this request
    # (Django cancels a view whose client went away). Ended after the push, the
    # session could outlive it, and the tabs were let back in.
    auth_logout(request)
    if operator is not None:
        services.operator_logout(operator=operator, device=device)
    return redirect("login")


# --- overview -------------------------------------------------------------------------


def box_timezones(*, account_id: int, default: str) -> dict[int | None, str]:
    """The zone in which each box's schedule is written (group id, None = account)."""
    zones = dict(OpeningHours.objects.filter(account_id=account_id).values_list("group_id", "timezone"))
    enabled = set(OpeningHours.objects.filter(account_id=account_id, enabled=True).values_list("group_id", flat=True))
    account_zone = zones.get(None, default)
    groups = Group.objects.filter(account_id=account_id).values_list("id", flat=True)
    return {None: account_zone, **{gid: zones[gid] if gid in enabled else account_zone for gid in groups}}


def _box(*, key: str, label: str, box: dict, tz: str, now: datetime.datetime) -> dict:
    return {
        "key": key,
        "label": label,
        "status": box["status"],
        "status_label": Status(box["status"]).label,
        "reason_label": REASONS.get(box["reason"], box["reason"]),
        "next_text": next_change_text(
            reason=box["reason"], next_change_at=parse_moment(box["next_change_at"]), tz=zoneinfo.ZoneInfo(tz), now=now
        ),
        "tz": tz,
    }


def team_rows(*, account_id: int) -> list[dict]:
    present = operators_present(account_id=account_id)
    operators = (
        Operator.objects.filter(account_id=account_id, is_active=True)
        .prefetch_related("chat_groups")
        .order_by("display_name", "id")
    )
    rows = [{"operator": op, "present": op.id in present} for op in operators]
    # Who can answer now first, then online-but-away, then offline.
    rows.sort(key=lambda row: (row["operator"].status != Status.ONLINE, not row["present"]))
    return rows


@dashboard_page()
def overview(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    now = timezone.now()
    snapshot = services.chat_box_read(account_id=account.id)
    zones = box_timezones(account_id=account.id, default=account.timezone)
    boxes = [_box(key="", label=_("Website chat box"), box=snapshot, tz=zones[None], now=now)]
    for group in Group.objects.filter(account=account).order_by("name", "key"):
        box = snapshot["groups"].get(group.key)
        if box is not None:
            boxes.append(_box(key=group.key, label=group.name, box=box, tz=zones[group.id], now=now))
    return render_page(
        request,
        "dashboard/overview.html",
        {"boxes": boxes, "team": team_rows(account_id=account.id), "nav": "overview"},
    )


@require_GET
@dashboard_page()
def team_json(request: HttpRequest) -> JsonResponse:
    """Status and presence of the account's operators, for the live pages to resync."""
    rows = team_rows(account_id=request.user.account_id)
    return JsonResponse(
        {"operators": [{"id": r["operator"].id, "status": r["operator"].status, "present": r["present"]} for r in rows]}
    )


@require_POST
@dashboard_page()
def status_set(request: HttpRequest) -> HttpResponse:
    """The status switch without JavaScript (the page's socket does it otherwise)."""
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            services.operator_set_status(
                operator=request.user,
                status=form.cleaned_data["status"],
                source=Source.DASHBOARD,
                device=device_tag(request),
            )
        except services.StatusChangeLimited as exc:
            messages.error(
                request, _("Too many status changes. Try again in %(seconds)d seconds.") % {"seconds": exc.retry_after}
            )
    else:
        messages.error(request, _("Choose Online or Offline."))
    return redirect(safe_next(request, reverse("dashboard:overview")))


# --- operators (admin) ------------------------------------------------------------------


def _device_label(tag: str, *, tokens: dict[int, ApiToken], mine: str) -> str:
    if tag == mine:
        return _("This browser")
    if tag.startswith("s:"):
        return _("Browser")
    if re.fullmatch(r"t:[0-9]+", tag) and int(tag[2:]) in tokens:
        token = tokens[int(tag[2:])]
        kind = _("Mobile app") if token.is_mobile else _("API client")
        return f"{kind} · {token.device}" if token.device else kind
    return _("Device")


def operator_devices(*, operators: list[Operator], mine: str, now: datetime.datetime) -> dict[int, list[dict]]:
    """Each operator's live connections, labelled (one token query for all)."""
    connections = {op.id: operator_connections(operator=op, now=now) for op in operators}
    token_ids = {
        int(c.device[2:]) for conns in connections.values() for c in conns if re.fullmatch(r"t:[0-9]+", c.device)
    }
    tokens = {t.id: t for t in ApiToken.objects.filter(operator__in=operators, id__in=token_ids)}
    return {
        op_id: [
            {
                "label": _device_label(c.device, tokens=tokens, mine=mine),
                "seen": datetime.datetime.fromtimestamp(c.last_heartbeat, tz=datetime.UTC),
                "recent": now.timestamp() - c.last_heartbeat < 60,
            }
            for c in conns
        ]
        for op_id, conns in connections.items()
    }


@dashboard_page(admin=True)
def operator_list(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    now = timezone.now()
    present = operators_present(account_id=account.id, now=now)
    mine = device_tag(request)
    operators = list(
        Operator.objects.filter(account=account).prefetch_related("chat_groups").order_by("display_name", "id")
    )
    devices = operator_devices(operators=operators, mine=mine, now=now)
    rows = [{"operator": op, "present": op.id in present, "devices": devices[op.id]} for op in operators]
    return render_page(request, "dashboard/operators.html", {"rows": rows, "nav": "operators"})


@dashboard_page(admin=True)
def operator_create(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    form = OperatorCreateForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                operator = account_services.operator_create(
                    account=account,
                    email=data["email"],
                    display_name=data["display_name"],
                    password=data["password"],
                    role=data["role"],
                )
                operator_set_groups(operator=operator, group_ids=[g.id for g in data["groups"]])
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("%(name)s can now log in.") % {"name": operator.display_name})
            return redirect("dashboard:operators")
    return render_page(request, "dashboard/operator_create.html", {"form": form, "nav": "operators"})


@dashboard_page(admin=True)
def operator_edit(request: HttpRequest, operator_id: int) -> HttpResponse:
    operator = get_object_or_404(Operator, id=operator_id, account=request.user.account)
    form = OperatorEditForm(request.POST or None, operator=operator, editor=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {name: data[name] for name in ("display_name", "role", "is_active") if name in form.fields}
        try:
            with transaction.atomic():
                account_services.operator_update(operator=operator, actor=request.user, **fields)
                operator_set_groups(operator=operator, group_ids=[g.id for g in data["groups"]])
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("dashboard:operators")
    now = timezone.now()
    context = {
        "operator": operator,
        "form": form,
        "present": operator.id in operators_present(account_id=operator.account_id, now=now),
        "devices": operator_devices(operators=[operator], mine=device_tag(request), now=now)[operator.id],
        "nav": "operators",
    }
    return render_page(request, "dashboard/operator_edit.html", context)


@require_POST
@dashboard_page(admin=True)
def operator_force_offline(request: HttpRequest, operator_id: int) -> HttpResponse:
    operator = get_object_or_404(Operator, id=operator_id, account=request.user.account)
    services.operator_set_status(operator=operator, status=Status.OFFLINE, source=Source.ADMIN)
    messages.success(request, _("%(name)s is offline now.") % {"name": operator.display_name})
    return redirect(safe_next(request, reverse("dashboard:operators")))


# --- status history ---------------------------------------------------------------------


@dashboard_page()
def history(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    tz = zoneinfo.ZoneInfo(account.timezone)
    form = HistoryFilterForm(request.GET or None, account=account)
    events = StatusEvent.objects.filter(account=account).select_related("operator")
    if form.is_valid():
        data = form.cleaned_data
        if data["operator"]:
            events = events.filter(operator=data["operator"])
        if data["source"]:
            events = events.filter(source=data["source"])
        # Dates are days of the account's calendar, not UTC days.
        if data["date_from"]:
            events = events.filter(at__gte=datetime.datetime.combine(data["date_from"], datetime.time(), tzinfo=tz))
        if data["date_to"]:
            end = data["date_to"] + datetime.timedelta(days=1)
            events = events.filter(at__lt=datetime.datetime.combine(end, datetime.time(), tzinfo=tz))
    page = Paginator(events, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "events": [{"event": e, "at": e.at.astimezone(tz)} for e in page.object_list],
        "query": query.urlencode(),
        "tz": account.timezone,
        "nav": "history",
    }
    return render_page(request, "dashboard/history.html", context)


# --- widget -----------------------------------------------------------------------------


@dashboard_page()
def widget_settings(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    can_edit = request.user.is_account_admin
    initial = {"allowed_origins": "\n".join(account.allowed_origins)}
    form = AllowedOriginsForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        if form.is_valid():
            try:
                account_services.account_update(account=account, allowed_origins=form.cleaned_data["allowed_origins"])
            except ValidationError as error:
                account.refresh_from_db()
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("Saved."))
                return redirect("dashboard:widget")
    origin = f"{request.scheme}://{request.get_host()}"
    snippet = f'<script src="{origin}/widget.js" data-key="{account.widget_key}" async></script>'
    groups = [
        {
            "group": group,
            "snippet": (
                f'<script src="{origin}/widget.js" data-key="{account.widget_key}" data-group="{group.key}" async>'
                "</script>"
            ),
        }
        for group in Group.objects.filter(account=account).order_by("name", "key")
    ]
    context = {
        "snippet": snippet,
        "group_snippets": groups,
        "form": form,
        "can_edit": can_edit,
        "demo_url": f"/widget/demo/{account.widget_key}/",
        "nav": "widget",
    }
    return render_page(request, "dashboard/widget.html", context)


# --- automatic messages (admin) ------------------------------------------------------------


@dashboard_page(admin=True)
def automatic_messages(request: HttpRequest) -> HttpResponse:
    """The busy message's delay and the busy and offline texts (rules 7–8)."""
    account = request.user.account
    form = AutomaticMessagesForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            account_services.account_update(account=account, **form.cleaned_data)
        except ValidationError as error:
            account.refresh_from_db()
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("dashboard:automatic_messages")
    context = {"form": form, "language": account.get_language_display(), "nav": "automatic_messages"}
    return render_page(request, "dashboard/automatic_messages.html", context)


# --- profile -------------------------------------------------------------------------------


@dashboard_page()
def profile(request: HttpRequest) -> HttpResponse:
    me = request.user
    which = request.POST.get("form") if request.method == "POST" else None
    profile_form = ProfileForm(
        request.POST if which == "profile" else None,
        request.FILES if which == "profile" else None,
        operator=me,
    )
    password_form = PasswordChangeForm(me, request.POST if which == "password" else None)
    if which == "profile" and profile_form.is_valid():
        try:
            account_services.operator_update(operator=me, actor=me, **profile_form.service_fields())
        except ValidationError as error:
            me.refresh_from_db()
            form_add_service_errors(profile_form, error)
        else:
            messages.success(request, _("Your profile is saved."))
            return redirect("dashboard:profile")
    elif which == "password" and password_form.is_valid():
        # Changing the password ends every other session, socket and token of
        # mine, not this browser: its device is read before its session key
        # is cycled, and its session then takes the new hash.
        account_services.operator_set_password(
            operator=me, password=password_form.cleaned_data["new_password1"], keep_device=device_tag(request)
        )
        update_session_auth_hash(request, me)
        messages.success(request, _("Your password is changed."))
        return redirect("dashboard:profile")
    context = {"profile_form": profile_form, "password_form": password_form, "nav": "profile"}
    return render_page(request, "dashboard/profile.html", context)
