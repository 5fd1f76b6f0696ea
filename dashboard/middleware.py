from django.utils import translation


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
