"""REST API (``/api/v1/``) for mobile apps and integrations: thin views that
check the caller, translate the request and call one service or selector."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import logout as session_logout
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services as account_services
from accounts.auth import token_create, token_revoke
from accounts.models import ApiToken, Operator
from accounts.throttles import LoginRateThrottle
from api.serializers import (
    AccountSerializer,
    ChatBoxSerializer,
    HeartbeatResponseSerializer,
    HeartbeatSerializer,
    MeSerializer,
    OperatorCreateSerializer,
    OperatorSerializer,
    OperatorUpdateSerializer,
    StatusEventQuerySerializer,
    StatusEventSerializer,
    StatusSerializer,
    StatusStateSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from api.views.base import (
    AUTHENTICATED,
    AdminApiView,
    ApiView,
    NewestFirstPagination,
    PresenceUnavailable,
    StrictJSONParser,
    device_of,
    errors,
    int_or_404,
    service_errors,
    source_of,
    valid,
)
from presence import services
from presence.models import Source, StatusEvent
from presence.store import StoreUnavailable

logger = logging.getLogger(__name__)

# --- log in / log out ------------------------------------------------------------------


class AuthTokenView(APIView):
    # No authentication at all: a stale token header must not stop a fresh login,
    # and a browser session must not make this a CSRF target.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=["auth"],
        summary="Log in: a new token for this device",
        description=(
            "Returns a new token per call (one per device). Logging in never switches the operator online. "
            "Limited to 10 attempts a minute per client address."
        ),
        auth=[],
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, **errors(400, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        data = valid(TokenRequestSerializer, request)
        key, _token = token_create(operator=data["operator"], device=data["device"], is_mobile=data["mobile"])
        return Response({"token": key})


class AuthLogoutView(ApiView):
    @extend_schema(
        tags=["auth"],
        summary="Log out this device",
        description=(
            "Revokes the token used for the request (or ends the browser session). An explicit logout: if no other "
            "device of the operator is connected, the operator goes offline at once."
        ),
        request=None,
        responses={204: None, **errors(*AUTHENTICATED)},
    )
    def post(self, request: Request) -> Response:
        operator, device = request.user, device_of(request)
        with transaction.atomic():
            if isinstance(request.auth, ApiToken):
                token_revoke(token=request.auth)
            services.operator_logout(operator=operator, device=device)
        if not isinstance(request.auth, ApiToken):
            session_logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- me ------------------------------------------------------------------------------------


class MeView(ApiView):
    @extend_schema(
        tags=["me"],
        summary="The operator of these credentials",
        responses={200: MeSerializer, **errors(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        operator = Operator.objects.select_related("account").prefetch_related("chat_groups").get(id=request.user.id)
        return Response(MeSerializer(operator).data)


@contextmanager
def status_change_limit() -> Iterator[None]:
    """The status service's refusal of one change too many, as 429 with ``Retry-After``."""
    try:
        yield
    except services.StatusChangeLimited as exc:
        raise exceptions.Throttled(wait=exc.retry_after, detail=str(_("Too many status changes."))) from None


class MeStatusView(ApiView):
    @extend_schema(tags=["me"], summary="My status", responses={200: StatusStateSerializer, **errors(*AUTHENTICATED)})
    def get(self, request: Request) -> Response:
        return Response(StatusStateSerializer(request.user).data)

    @extend_schema(
        tags=["me"],
        summary="Switch my status",
        description="Also counts as a heartbeat of this device. Recorded with source `mobile` for a mobile token, "
        "else `api`. At most 10 status changes of an operator in 10 seconds (429 with `Retry-After`).",
        request=StatusSerializer,
        responses={200: StatusStateSerializer, **errors(400, *AUTHENTICATED, 413, 429)},
    )
    def put(self, request: Request) -> Response:
        data = valid(StatusSerializer, request)
        operator, device = request.user, device_of(request)
        # The device is present before the change, so an "online" from a phone
        # that holds no socket is honoured right away.
        try:
            services.presence_heartbeat(operator=operator, conn_id=device, device=device)
        except StoreUnavailable:
            # The choice is stored all the same; presence follows with the next heartbeat.
            logger.warning("presence store unavailable; heartbeat of operator %s dropped", operator.id)
        with status_change_limit():
            changed = services.operator_set_status(
                operator=operator, status=data["status"], source=source_of(request), device=device
            )
        if not changed:
            operator.refresh_from_db(fields=["status", "status_changed_at"])
        return Response(StatusStateSerializer(operator).data)


class MeHeartbeatView(ApiView):
    @extend_schema(
        tags=["me"],
        summary="Keep this device present",
        description="For a client that cannot hold the operator WebSocket (a phone app in the background). "
        "Send one every `next_heartbeat_seconds`.",
        request=HeartbeatSerializer,
        responses={200: HeartbeatResponseSerializer, **errors(400, *AUTHENTICATED, 413, 503)},
    )
    def post(self, request: Request) -> Response:
        valid(HeartbeatSerializer, request)
        operator, device = request.user, device_of(request)
        try:
            services.presence_heartbeat(operator=operator, conn_id=device, device=device)
        except StoreUnavailable:
            raise PresenceUnavailable() from None
        return Response({"status": operator.status, "next_heartbeat_seconds": settings.PRESENCE_HEARTBEAT_SECONDS})


# --- chat box ------------------------------------------------------------------------------


class ChatBoxView(ApiView):
    @extend_schema(
        tags=["chat box"],
        summary="The chat box status of my account and of each group",
        responses={200: ChatBoxSerializer, **errors(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        return Response(services.chat_box_read(account_id=request.user.account_id))


# --- account (admins) -----------------------------------------------------------------------


class AccountView(AdminApiView):
    @extend_schema(tags=["account"], summary="My account", responses={200: AccountSerializer, **errors(*AUTHENTICATED)})
    def get(self, request: Request) -> Response:
        return Response(AccountSerializer(request.user.account).data)

    @extend_schema(
        tags=["account"],
        summary="Change my account",
        request=AccountSerializer,
        responses={200: AccountSerializer, **errors(400, *AUTHENTICATED, 413)},
    )
    def patch(self, request: Request) -> Response:
        account = request.user.account
        data = valid(AccountSerializer, request, partial=True)
        with service_errors():
            account_services.account_update(account=account, **data)
        return Response(AccountSerializer(account).data)


# --- operators (admins) -----------------------------------------------------------------------


def account_operators(request: Request):
    return Operator.objects.filter(account_id=request.user.account_id).prefetch_related("chat_groups")


def account_operator(request: Request, operator_id: str) -> Operator:
    """An operator of the caller's account; any other id is not found (404), never forbidden."""
    operator = account_operators(request).filter(id=int_or_404(operator_id)).first()
    if operator is None:
        raise Http404
    return operator


OPERATOR_ID = OpenApiParameter("operator_id", int, OpenApiParameter.PATH, description=_("The operator's id."))


class OperatorListView(AdminApiView):
    @extend_schema(
        tags=["operators"],
        summary="The operators of my account",
        responses={200: OperatorSerializer(many=True), **errors(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        operators = account_operators(request).order_by("display_name", "id")
        return Response(OperatorSerializer(operators, many=True).data)

    @extend_schema(
        tags=["operators"],
        summary="Add an operator",
        description="A new operator is offline. `role` is `agent` or `admin`; an account has exactly one owner.",
        request=OperatorCreateSerializer,
        responses={201: OperatorSerializer, **errors(400, *AUTHENTICATED, 413)},
    )
    def post(self, request: Request) -> Response:
        data = valid(OperatorCreateSerializer, request)
        with service_errors():
            operator = account_services.operator_create(account=request.user.account, **data)
        return Response(OperatorSerializer(operator).data, status=status.HTTP_201_CREATED)


class OperatorDetailView(AdminApiView):
    @extend_schema(
        tags=["operators"],
        summary="One operator",
        parameters=[OPERATOR_ID],
        responses={200: OperatorSerializer, **errors(*AUTHENTICATED, 404)},
    )
    def get(self, request: Request, operator_id: str) -> Response:
        return Response(OperatorSerializer(account_operator(request, operator_id)).data)

    @extend_schema(
        tags=["operators"],
        summary="Change an operator",
        description="The owner keeps the owner role and stays active; nobody else can become owner. Only the owner "
        "changes the owner's e-mail. Nobody deactivates themselves.",
        parameters=[OPERATOR_ID],
        request=OperatorUpdateSerializer,
        responses={200: OperatorSerializer, **errors(400, *AUTHENTICATED, 404, 413)},
    )
    def patch(self, request: Request, operator_id: str) -> Response:
        operator = account_operator(request, operator_id)
        data = valid(OperatorUpdateSerializer, request, partial=True)
        with service_errors():
            account_services.operator_update(operator=operator, actor=request.user, **data)
        return Response(OperatorSerializer(operator).data)

    @extend_schema(
        tags=["operators"],
        summary="Remove an operator",
        description="The owner cannot be removed, and nobody removes themselves.",
        parameters=[OPERATOR_ID],
        responses={204: None, **errors(400, *AUTHENTICATED, 404)},
    )
    def delete(self, request: Request, operator_id: str) -> Response:
        operator = account_operator(request, operator_id)
        with service_errors():
            account_services.operator_delete(operator=operator, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OperatorStatusView(AdminApiView):
    @extend_schema(
        tags=["operators"],
        summary="Force an operator's status",
        description="Recorded with source `admin`. Switching an operator online counts against that operator's "
        "limit of 10 status changes in 10 seconds (429 with `Retry-After`); switching them offline is never refused.",
        parameters=[OPERATOR_ID],
        request=StatusSerializer,
        responses={200: StatusStateSerializer, **errors(400, *AUTHENTICATED, 404, 413, 429)},
    )
    def put(self, request: Request, operator_id: str) -> Response:
        operator = account_operator(request, operator_id)
        data = valid(StatusSerializer, request)
        with status_change_limit():
            changed = services.operator_set_status(operator=operator, status=data["status"], source=Source.ADMIN)
        if not changed:
            operator.refresh_from_db(fields=["status", "status_changed_at"])
        return Response(StatusStateSerializer(operator).data)


# --- audit trail (admins) ---------------------------------------------------------------------


class StatusEventPagination(NewestFirstPagination):
    ordering = ("-at", "-id")


class StatusEventListView(AdminApiView):
    pagination_class = StatusEventPagination

    @extend_schema(
        tags=["status events"],
        summary="The audit trail of status changes, newest first",
        parameters=[StatusEventQuerySerializer],
        responses={200: StatusEventSerializer(many=True), **errors(400, *AUTHENTICATED, 404)},
    )
    def get(self, request: Request) -> Response:
        # A plain dict: as a form, "?operator=" would count as no filter at all.
        query = StatusEventQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        events = StatusEvent.objects.filter(account_id=request.user.account_id)
        if "operator" in query.validated_data:
            events = events.filter(operator_id=query.validated_data["operator"])
        if "since" in query.validated_data:
            events = events.filter(at__gte=query.validated_data["since"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(StatusEventSerializer(page, many=True).data)
