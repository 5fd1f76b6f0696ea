"""REST API for groups (admins): ``/api/v1/groups`` and ``/api/v1/groups/{key}``."""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api.group_serializers import GroupSerializer
from api.views.base import AUTHENTICATED, AdminApiView, errors, service_errors, valid
from groups import services
from groups.models import Group

GROUP_KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, description=_("The group's key."))


def account_groups(request: Request):
    return Group.objects.filter(account_id=request.user.account_id).prefetch_related("memberships")


def account_group(request: Request, key: str) -> Group:
    """A group of the caller's account; another account's is not found (404), never forbidden."""
    group = account_groups(request).filter(key=key).first()
    if group is None:
        raise Http404
    return group


class GroupListView(AdminApiView):
    @extend_schema(
        tags=["groups"],
        summary="The groups of my account",
        responses={200: GroupSerializer(many=True), **errors(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        return Response(GroupSerializer(account_groups(request), many=True).data)

    @extend_schema(
        tags=["groups"],
        summary="Add a group",
        request=GroupSerializer,
        responses={201: GroupSerializer, **errors(400, *AUTHENTICATED, 413)},
    )
    def post(self, request: Request) -> Response:
        data = valid(GroupSerializer, request)
        with service_errors():
            group = services.group_create(
                account=request.user.account, key=data["key"], name=data["name"], member_ids=data.get("members", ())
            )
        return Response(GroupSerializer(account_group(request, group.key)).data, status=status.HTTP_201_CREATED)


class GroupDetailView(AdminApiView):
    @extend_schema(
        tags=["groups"],
        summary="One group",
        parameters=[GROUP_KEY],
        responses={200: GroupSerializer, **errors(*AUTHENTICATED, 404)},
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(GroupSerializer(account_group(request, key)).data)

    @extend_schema(
        tags=["groups"],
        summary="Change a group",
        description="`members`, when given, replaces the whole member list.",
        parameters=[GROUP_KEY],
        request=GroupSerializer,
        responses={200: GroupSerializer, **errors(400, *AUTHENTICATED, 404, 413)},
    )
    def patch(self, request: Request, key: str) -> Response:
        group = account_group(request, key)
        data = valid(GroupSerializer, request, partial=True)
        with service_errors():
            services.group_update(
                group=group, key=data.get("key"), name=data.get("name"), member_ids=data.get("members")
            )
        return Response(GroupSerializer(account_group(request, group.key)).data)

    @extend_schema(
        tags=["groups"],
        summary="Remove a group",
        parameters=[GROUP_KEY],
        responses={204: None, **errors(*AUTHENTICATED, 404)},
    )
    def delete(self, request: Request, key: str) -> Response:
        services.group_delete(group=account_group(request, key))
        return Response(status=status.HTTP_204_NO_CONTENT)
