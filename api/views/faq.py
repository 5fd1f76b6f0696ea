"""REST API for the FAQ: ``/api/v1/faq`` (+ ``{id}``) and ``/api/v1/faq/match``.
Any operator of the account reads and matches; admins write. Another
account's entry is not found (404)."""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from api.faq_serializers import FaqEntrySerializer, FaqMatchRequestSerializer, FaqMatchResponseSerializer
from api.permissions import IsAccountAdmin, IsAccountOperator
from api.views.base import AUTHENTICATED, ApiView, errors, int_or_404, service_errors, valid
from conversations.faq import selectors, services
from conversations.models import FaqEntry
from groups.models import Group

TAGS = ["faq"]
ENTRY_ID = OpenApiParameter("entry_id", int, OpenApiParameter.PATH, description=_("The entry's id."))


class ReadForAgentsWriteForAdmins(ApiView):
    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAccountOperator()]
        return [IsAccountAdmin()]


def group_id_of(request: Request, key: str | None) -> int | None:
    """A group key of the caller's account as its id; any other key is a field error."""
    if key is None:
        return None
    group_id = Group.objects.filter(account_id=request.user.account_id, key=key).values_list("id", flat=True).first()
    if group_id is None:
        raise exceptions.ValidationError({"group": [_("Unknown group.")]})
    return group_id


def account_entry(request: Request, entry_id: str) -> FaqEntry:
    entry = selectors.faq_entry_get(account_id=request.user.account_id, entry_id=int_or_404(entry_id))
    if entry is None:
        raise Http404
    return entry


class FaqListView(ReadForAgentsWriteForAdmins):
    @extend_schema(
        tags=TAGS,
        summary="The FAQ entries of my account",
        responses={200: FaqEntrySerializer(many=True), **errors(*AUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        entries = selectors.faq_entries(account_id=request.user.account_id)
        return Response(FaqEntrySerializer(entries, many=True).data)

    @extend_schema(
        tags=TAGS,
        summary="Add an entry (admins)",
        request=FaqEntrySerializer,
        responses={201: FaqEntrySerializer, **errors(400, *AUTHENTICATED, 413)},
    )
    def post(self, request: Request) -> Response:
        data = valid(FaqEntrySerializer, request)
        with service_errors():
            entry = services.faq_entry_create(
                account=request.user.account,
                question=data["question"],
                phrasings=data.get("phrasings", []),
                answer=data["answer"],
                language=data["language"],
                group_id=group_id_of(request, data.get("group")),
                enabled=data.get("enabled", True),
            )
        return Response(FaqEntrySerializer(account_entry(request, str(entry.id))).data, status=status.HTTP_201_CREATED)


class FaqDetailView(ReadForAgentsWriteForAdmins):
    @extend_schema(
        tags=TAGS,
        summary="One entry",
        parameters=[ENTRY_ID],
        responses={200: FaqEntrySerializer, **errors(*AUTHENTICATED, 404)},
    )
    def get(self, request: Request, entry_id: str) -> Response:
        return Response(FaqEntrySerializer(account_entry(request, entry_id)).data)

    @extend_schema(
        tags=TAGS,
        summary="Change an entry (admins)",
        description="Only the fields sent change; `phrasings`, when sent, replaces the whole list.",
        parameters=[ENTRY_ID],
        request=FaqEntrySerializer,
        responses={200: FaqEntrySerializer, **errors(400, *AUTHENTICATED, 404, 413)},
    )
    def patch(self, request: Request, entry_id: str) -> Response:
        entry = account_entry(request, entry_id)
        data = valid(FaqEntrySerializer, request, partial=True)
        changes = {
            name: data[name] for name in ("question", "phrasings", "answer", "language", "enabled") if name in data
        }
        if "group" in data:
            changes["group_id"] = group_id_of(request, data["group"])
        with service_errors():
            services.faq_entry_update(entry=entry, **changes)
        return Response(FaqEntrySerializer(account_entry(request, entry_id)).data)

    @extend_schema(
        tags=TAGS,
        summary="Remove an entry (admins)",
        description="The bot's past answers with it stay in the report.",
        parameters=[ENTRY_ID],
        responses={204: None, **errors(*AUTHENTICATED, 404)},
    )
    def delete(self, request: Request, entry_id: str) -> Response:
        services.faq_entry_delete(entry=account_entry(request, entry_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FaqMatchView(ApiView):
    @extend_schema(
        tags=TAGS,
        summary="The entry the bot would answer a question with",
        description="`match` is null when no enabled entry answers it with the bot's confidence.",
        request=FaqMatchRequestSerializer,
        responses={200: FaqMatchResponseSerializer, **errors(400, *AUTHENTICATED, 413)},
    )
    def post(self, request: Request) -> Response:
        data = valid(FaqMatchRequestSerializer, request)
        text = data["question"].strip()
        if not text:
            raise exceptions.ValidationError({"question": [_("This field may not be blank.")]})
        matched, _nearest = selectors.faq_match(
            account=request.user.account,
            text=text,
            group_id=group_id_of(request, data.get("group")),
            language=data.get("language"),
        )
        if matched is None:
            return Response({"match": None})
        entry = matched.entry
        return Response(
            {"match": {"id": entry.id, "question": entry.question, "answer": entry.answer, "score": matched.score}}
        )
