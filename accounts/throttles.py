"""Rate limits of the REST API (rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``)."""

import logging
import math

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class LoginRateThrottle(SimpleRateThrottle):
    """Password guesses per client address.

    Keyed by ``REMOTE_ADDR`` only, never by a header the client sends: it is
    the client's address, also behind a reverse proxy, because
    ``chatstatus.proxy`` puts it there from ``X-Forwarded-For`` only when the
    connection comes from one of ``TRUSTED_PROXIES`` (read from the right, so a
    guesser who writes the header gains no fresh identity). Without trusted
    proxies every client behind one would share the proxy's budget.
    """

    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.META.get("REMOTE_ADDR") or "unknown"}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            # The cache (Redis) is down: a login must still work; passwords are
            # hashed slowly enough that a short outage is no open door.
            logger.warning("login throttle unavailable; request let through", exc_info=True)
            return True


def login_throttle_wait(request: HttpRequest) -> int | None:
    """Count one password attempt made through an HTML form (the dashboard's,
    the admin's) against ``LoginRateThrottle``'s budget, which the API token
    endpoint shares. Returns the seconds to wait when over budget, else None."""
    throttle = LoginRateThrottle()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def login_form_throttled(form: forms.Form, *, seconds: int) -> forms.Form:
    """``form`` (unbound: nothing was checked) showing why the attempt was refused."""
    form.errors[NON_FIELD_ERRORS] = form.error_class(
        [_("Too many log-in attempts. Try again in %(seconds)d seconds.") % {"seconds": seconds}],
        error_class="nonfield",
        renderer=form.renderer,
    )
    return form
