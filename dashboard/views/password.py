"""Password reset by e-mail: Django's views (``django.contrib.auth.views``) in
the dashboard's look.

* No account enumeration: a known and an unknown address get the same answer,
  the "sent" page; only an active operator with a usable password gets an
  e-mail (``PasswordResetForm.get_users``).
* Throttled: every request for a link counts against the log-in budget of the
  client address (``accounts.throttles.LoginRateThrottle``), shared with the
  log-in forms and the API token endpoint.
* The new password is saved by ``accounts.services.operator_set_password``,
  which ends the operator's other logins.
"""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy
from django.utils.translation import gettext as _

from accounts.throttles import login_throttle_wait
from dashboard.forms.password import OperatorPasswordResetForm, OperatorSetPasswordForm


class PasswordResetRequestView(auth_views.PasswordResetView):
    template_name = "dashboard/password_reset.html"
    form_class = OperatorPasswordResetForm
    subject_template_name = "dashboard/email/password_reset_subject.txt"
    email_template_name = "dashboard/email/password_reset.txt"
    success_url = reverse_lazy("password_reset_done")

    @property
    def extra_email_context(self) -> dict:
        return {"valid_hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)}

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Counted before anything is looked up, so a throttled request learns nothing either.
        seconds = login_throttle_wait(request)
        if seconds is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form_class()(initial={"email": request.POST.get("email", "")})
        form.errors[NON_FIELD_ERRORS] = form.error_class(
            [_("Too many attempts. Try again in %(seconds)d seconds.") % {"seconds": seconds}],
            error_class="nonfield",
            renderer=form.renderer,
        )
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(seconds)
        return response


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "dashboard/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "dashboard/password_reset_confirm.html"
    form_class = OperatorSetPasswordForm
    success_url = reverse_lazy("password_reset_complete")
    post_reset_login = False  # they log in with the new password, on purpose


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "dashboard/password_reset_complete.html"
