"""REST API for opening hours (admins): the account's and each group's own."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.hours_serializers import OpeningHoursSerializer
from api.views.base import AUTHENTICATED, AdminApiView, errors, service_errors, valid
from api.views.groups import GROUP_KEY, account_group
from hours import selectors, services


def _hours_set(request: Request, *, group=None) -> Response:
    account = request.user.account
    data = valid(OpeningHoursSerializer, request)
    with service_errors():
        hours = services.opening_hours_set(
            account=account,
            group=group,
            enabled=data["enabled"],
            timezone=data.get("timezone", account.timezone),
            weekly=data["weekly"],
            exceptions=data["exceptions"],
        )
    return Response(OpeningHoursSerializer(hours).data)


class OpeningHoursView(AdminApiView):
    @extend_schema(
        tags=["opening hours"],
        summary="My account's opening hours",
        responses={200: OpeningHoursSerializer, **errors(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        return Response(OpeningHoursSerializer(selectors.opening_hours_get(account=request.user.account)).data)

    @extend_schema(
        tags=["opening hours"],
        summary="Replace my account's opening hours",
        request=OpeningHoursSerializer,
        responses={200: OpeningHoursSerializer, **errors(400, *AUTHENTICATED, 413)},
    )
    def put(self, request: Request) -> Response:
        return _hours_set(request)


class GroupOpeningHoursView(AdminApiView):
    @extend_schema(
        tags=["opening hours"],
        summary="A group's own opening hours",
        description="When enabled they replace the account's hours for this group.",
        parameters=[GROUP_KEY],
        responses={200: OpeningHoursSerializer, **errors(*AUTHENTICATED, 404)},
    )
    def get(self, request: Request, key: str) -> Response:
        group = account_group(request, key)
        return Response(
            OpeningHoursSerializer(selectors.opening_hours_get(account=request.user.account, group=group)).data
        )

    @extend_schema(
        tags=["opening hours"],
        summary="Replace a group's own opening hours",
        parameters=[GROUP_KEY],
        request=OpeningHoursSerializer,
        responses={200: OpeningHoursSerializer, **errors(400, *AUTHENTICATED, 404, 413)},
    )
    def put(self, request: Request, key: str) -> Response:
        return _hours_set(request, group=account_group(request, key))
