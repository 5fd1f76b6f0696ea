from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override

# Answers that are the same whoever asks (the widget's script, status, messages
# and demo page; static files; avatar images under unguessable names): caches
# may keep them, and looking at the session for them would add Vary: Cookie.
PUBLIC_PATHS = ("/widget", "/static/", "/media/")
# Every REST endpoint answers one caller (or hands out a token): never stored.
API_PATHS = "/api/v1/"


class OperatorLanguageMiddleware:
    """The dashboard speaks the operator's chosen language (else the account's)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Public and API paths never touch the session (no lookup, no Vary: Cookie).
        if request.path.startswith(("/widget", "/api/")):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            language = user.language or (user.account.language if user.account_id else "")
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = language
        return self.get_response(request)


class PrivatePagesMiddleware:
    """``Cache-Control: no-store`` (with Django's other never-cache headers) on
    every answer meant for one signed-in person: dashboard pages, the admin,
    the API. The one place that says so, for every view: a shared computer's
    browser cache, or a proxy, must not keep an operator's pages.

    "Signed in" is read after the view ran, so the API's token authentication
    (which DRF hands down to ``request.user``) counts as well as a session.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(PUBLIC_PATHS):
            return response
        if request.path.startswith(API_PATHS) or _signed_in(request):
            add_never_cache_headers(response)
        return response


def _signed_in(request) -> bool:
    user = getattr(request, "user", None)  # None: the API found no credentials
    return user is not None and user.is_authenticated


class PagePolicyMiddleware:
    """What a page's Content-Security-Policy needs beyond ``settings.SECURE_CSP``,
    which Django's ``ContentSecurityPolicyMiddleware`` (outside this one) sends.

    * Sockets: ``connect-src`` names this host's ``ws://`` and ``wss://``.
      CSP 3 counts them as ``'self'``, but Safari before 16 does not.
    * Framing follows ``X-Frame-Options`` (``XFrameOptionsMiddleware`` runs
      inside this one): a page its view lets this site frame
      (``xframe_options_sameorigin``: the widget demo in the dashboard's Embed
      page) gets ``frame-ancestors 'self'``, every other one the settings'
      ``'none'``. Browsers obey the CSP over X-Frame-Options, so the two must agree.

    Only HTML documents: a JSON or script answer keeps the settings' policy
    exactly, which the widget status fast path (``widget/asgi.py``) reproduces.
    A view that chose its own policy with ``csp_override`` keeps it (Django's
    debug pages switch the policy off that way).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.own_policy_marks = _csp_override_marks()

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.SECURE_CSP
        if not policy or not response.get("Content-Type", "").startswith("text/html"):
            return response
        if any(hasattr(response, name) for name in self.own_policy_marks):
            return response
        policy = dict(policy)
        sources = policy.get("connect-src")
        if isinstance(sources, list | tuple):
            try:
                host = request.get_host()
            except DisallowedHost:
                host = None
            if host is not None:
                policy["connect-src"] = [*sources, f"ws://{host}", f"wss://{host}"]
        if response.get("X-Frame-Options", "").upper() == "SAMEORIGIN":
            policy["frame-ancestors"] = [CSP.SELF]
        # Django's public way to give one answer its own policy is the view
        # decorator; applied here to the answer at hand.
        return csp_override(policy)(lambda _request: response)(request)


def _csp_override_marks() -> set[str]:
    """The attributes Django's public ``csp_override`` decorator sets on a
    response, found by trying it once at start-up rather than naming a private
    attribute (none found: every HTML page gets the adjusted policy)."""
    marked = csp_override({})(lambda _request: HttpResponse())(None)
    return set(vars(marked)) - set(vars(HttpResponse()))
