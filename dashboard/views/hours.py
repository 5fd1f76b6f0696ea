"""Dashboard page for opening hours (admin only): the account's and each group's."""

import zoneinfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _

from dashboard.forms.hours import OpeningHoursForm
from dashboard.views.base import dashboard_page, moment_text, render_page
from groups.models import Group
from hours.models import OpeningHours
from hours.schedule import is_open, next_change
from hours.selectors import opening_hours_get
from hours.services import opening_hours_set


def hours_preview(hours: OpeningHours) -> str:
    """What visitors get from this schedule now, e.g. 'Closed now · Opens Monday 09:00'."""
    if not hours.pk or not hours.enabled:
        return _("Opening hours are off: the chat box follows the operators alone.")
    schedule = hours.to_schedule()
    now = timezone.now()
    tz = zoneinfo.ZoneInfo(schedule.timezone)
    change = next_change(schedule=schedule, after=now)
    if is_open(schedule=schedule, at=now):
        if change is None:
            return _("Open now, always.")
        return _("Open now · Closes %(when)s") % {"when": moment_text(change, tz=tz, now=now)}
    if change is None:
        return _("Closed now, with no opening within a year.")
    return _("Closed now · Opens %(when)s") % {"when": moment_text(change, tz=tz, now=now)}


@dashboard_page(admin=True)
def hours_edit(request: HttpRequest, group_key: str | None = None) -> HttpResponse:
    account = request.user.account
    group = None if group_key is None else get_object_or_404(Group, account=account, key=group_key)
    hours = opening_hours_get(account=account, group=group)
    form = OpeningHoursForm(hours=hours, data=request.POST if request.method == "POST" else None)
    adding = request.method == "POST" and ("add_row" in request.POST or "add_exception" in request.POST)
    if adding:
        # Without JavaScript the "add" buttons post the form: show it again
        # with one more empty row and save nothing.
        form.add_blank(day=request.POST.get("add_row"), exception="add_exception" in request.POST)
    elif request.method == "POST" and form.is_valid():
        try:
            opening_hours_set(account=account, group=group, **form.cleaned)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("Opening hours saved."))
            return redirect(request.path)
    context = {
        "form": form,
        "group": group,
        "groups": Group.objects.filter(account=account).order_by("name", "key"),
        "preview": hours_preview(hours),
        "nav": "hours",
    }
    return render_page(request, "dashboard/hours.html", context, status=400 if form.has_errors() else 200)
