"""What every REST endpoint shares: base views, strict JSON parsing, error shapes."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.auth import session_device_tag, token_device_tag
from accounts.models import ApiToken
from api.permissions import IsAccountAdmin, IsAccountOperator
from api.serializers import (
    MAX_ID,
    ErrorSerializer,
)
from presence.json_input import InvalidJson, json_parse
from presence.models import Source

logger = logging.getLogger(__name__)

# --- shared plumbing (also used by groups.api and hours.api) ---------------------------


class PresenceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Presence is unavailable for a moment; send the heartbeat again shortly.")
    default_code = "presence_unavailable"


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "too_large"


class StrictJSONParser(BaseParser):
    """JSON bodies only, bounded, and only text a database can store.

    The stock parser answers an oversized body with Django's HTML 400, lets a
    deeply nested document end in ``RecursionError`` and accepts lone UTF-16
    surrogates (``"\\ud800"``) that no database can encode (a 500); the
    project's one parser of client JSON (``presence.json_input``) refuses
    them. Not a ``JSONParser`` subclass: DRF would read the whole body before
    this sees it.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise TooLarge()
        try:
            return json_parse(raw)
        except InvalidJson as exc:
            raise exceptions.ParseError(_("The body is not valid JSON: %(error)s") % {"error": str(exc)}) from None


# Base of every authenticated endpoint: JSON in, JSON out, an account's operator.
# (No docstring: the OpenAPI descriptions would inherit it.)
class ApiView(APIView):
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    permission_classes = [IsAccountOperator]


class AdminApiView(ApiView):
    permission_classes = [IsAccountAdmin]


def field_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A service's ``ValidationError`` as DRF field errors with the same keys."""
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if key == "__all__" else key): messages for key, messages in exc.message_dict.items()
        }
    return {"non_field_errors": exc.messages}


@contextmanager
def service_errors() -> Iterator[None]:
    try:
        yield
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(field_errors(exc)) from None


def valid(serializer_class, request: Request, *, partial: bool = False, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, partial=partial, context={"request": request}, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def int_or_404(value: str) -> int:
    """A path id; anything that cannot be one is simply not found."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or not 0 < int(value) <= MAX_ID:
        raise Http404
    return int(value)


ERROR = OpenApiResponse(response=ErrorSerializer, description=_("What went wrong, in `detail`."))
FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description=_("Field errors: each bad field's name → its messages; `non_field_errors` for the whole body."),
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an endpoint documents besides its success."""
    return {code: (FIELD_ERRORS if code == 400 else ERROR) for code in codes}


AUTHENTICATED = (401, 403)


def device_of(request: Request) -> str:
    """The presence device tag of this request's credentials (what its logout ends)."""
    if isinstance(request.auth, ApiToken):
        return token_device_tag(request.auth)
    return session_device_tag(request.session.session_key or "")


def source_of(request: Request) -> str:
    if isinstance(request.auth, ApiToken) and request.auth.is_mobile:
        return Source.MOBILE
    return Source.API


# --- lists ------------------------------------------------------------------------------


class NewestFirstPagination(CursorPagination):
    """Cursor pages of a list ordered by a moment, newest first: ``ordering``
    names the datetime column first, then ``-id`` to break ties."""

    ordering: tuple[str, ...] = ()
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request) -> int:
        # Stricter than DRF's (which quietly falls back to the default): a bad
        # size is the caller's mistake and is named.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if len(raw) > 6 or not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            message = _("A whole number from 1 to %(max)d.") % {"max": self.max_page_size}
            raise exceptions.ValidationError({self.page_size_query_param: [message]})
        return int(raw)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        # The position is compared with a datetime column: a forged one must be
        # a bad cursor (404, like any other forged cursor), not a database
        # error. Given in UTC, as the cursors this API writes are: an offset
        # PostgreSQL refuses (beyond ±15:59) or a moment past year 9999 in UTC
        # (9999-12-31T23:00-14:00, which SQLite's adapter cannot convert)
        # would fail in the query.
        moment = _utc_moment(cursor.position)
        if moment is None:
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor._replace(position=moment.isoformat())


def _utc_moment(value: str) -> datetime | None:
    """An aware ISO 8601 moment as UTC; None for anything else."""
    try:
        moment = parse_datetime(value)
        return moment.astimezone(UTC) if moment is not None and moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
