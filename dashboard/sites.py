"""The admin site: Django's, with its login form throttled like every other."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from accounts.throttles import login_form_throttled, login_throttle_wait


class ChatstatusAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        seconds = login_throttle_wait(request) if request.method == "POST" else None
        if seconds is None:
            return super().login(request, extra_context)
        form = (self.login_form or AdminAuthenticationForm)(
            request, initial={"username": request.POST.get("username", "")}
        )
        context = {
            **self.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
            "form": login_form_throttled(form, seconds=seconds),
            REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME, ""),
            **(extra_context or {}),
        }
        request.current_app = self.name
        response = TemplateResponse(request, self.login_template or "admin/login.html", context, status=429)
        response["Retry-After"] = str(seconds)
        return response
