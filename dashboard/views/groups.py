"""Dashboard pages for groups (admin only)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dashboard.forms.groups import GroupForm
from dashboard.forms.operators import form_add_service_errors
from dashboard.views.base import dashboard_page, render_page
from groups import services
from groups.models import Group


@dashboard_page(admin=True)
def group_list(request: HttpRequest) -> HttpResponse:
    groups = Group.objects.filter(account=request.user.account).prefetch_related("members").order_by("name", "key")
    return render_page(request, "dashboard/groups.html", {"groups": groups, "nav": "groups"})


@dashboard_page(admin=True)
def group_create(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    form = GroupForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.group_create(account=account, **form.service_fields())
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Group %(name)s created.") % {"name": group.name})
            return redirect("dashboard:groups")
    return render_page(request, "dashboard/group_form.html", {"form": form, "group": None, "nav": "groups"})


@dashboard_page(admin=True)
def group_edit(request: HttpRequest, group_id: int) -> HttpResponse:
    group = get_object_or_404(Group, id=group_id, account=request.user.account)
    form = GroupForm(request.POST or None, account=request.user.account, group=group)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_update(group=group, **form.service_fields())
        except ValidationError as error:
            group.refresh_from_db()
            form_add_service_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("dashboard:groups")
    return render_page(request, "dashboard/group_form.html", {"form": form, "group": group, "nav": "groups"})


@require_POST
@dashboard_page(admin=True)
def group_delete(request: HttpRequest, group_id: int) -> HttpResponse:
    group = get_object_or_404(Group, id=group_id, account=request.user.account)
    name = group.name
    services.group_delete(group=group)
    messages.success(request, _("Group %(name)s deleted.") % {"name": name})
    return redirect("dashboard:groups")
