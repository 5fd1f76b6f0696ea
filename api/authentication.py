"""``Authorization: Token <key>`` for the REST API (tokens: ``accounts.auth``)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts.auth import token_lookup, token_touch_due
from accounts.models import ApiToken, Operator


class ApiTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Operator, ApiToken]:
        token = token_lookup(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        if token_touch_due(token, now=now):
            ApiToken.objects.filter(id=token.id).update(last_used_at=now)
        return token.operator, token
