"""Who may call which part of the REST API.

Roles are checked before any object is looked up, so an agent gets the same
403 whether or not an object exists; objects of other accounts are never found
at all (querysets are scoped to the caller's account), which answers 404.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission


class IsAccountOperator(BasePermission):
    """A logged-in operator of an account (site staff without one have no API)."""

    message = _("This API is for operators of an account.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.account_id is not None)


class IsAccountAdmin(IsAccountOperator):
    """The account's owner or an admin."""

    message = _("Only the account's owner or an admin may do this.")

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.is_account_admin
