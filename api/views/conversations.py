"""REST API for conversations: ``/api/v1/conversations`` and one conversation's
messages, assignee and closing. Any operator of the account; rule 6 (in
``conversations.selectors``) decides which conversations an agent sees, and
one it may not open is not found (404), like another account's."""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from api.conversation_serializers import (
    CONVERSATION_DETAIL,
    AssignSerializer,
    ConversationListQuerySerializer,
    ConversationQuerySerializer,
    ConversationSerializer,
    MessageSerializer,
    ReplySerializer,
)
from api.throttles import OperatorMessageRateThrottle
from api.views.base import AUTHENTICATED, ApiView, NewestFirstPagination, errors, int_or_404, valid
from conversations import selectors, services
from conversations.models import Conversation
from conversations.payloads import conversation_payload, message_payload

TAGS = ["conversations"]
CONVERSATION_ID = OpenApiParameter(
    "conversation_id", int, OpenApiParameter.PATH, description=_("The conversation's id.")
)


class ConversationClosed(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The conversation is closed: operators reply to open conversations only.")
    default_code = "conversation_closed"

    def __init__(self) -> None:
        # ``code`` beside ``detail``: a client tells this refusal apart without reading the words.
        super().__init__({"detail": self.default_detail, "code": self.default_code})


def visible_conversation(request: Request, conversation_id: str) -> Conversation:
    """A conversation the caller may open; any other id is not found (404), never forbidden."""
    conversation = selectors.conversation_for_operator(
        operator=request.user, conversation_id=int_or_404(conversation_id)
    )
    if conversation is None:
        raise Http404
    return conversation


def query(serializer_class, request: Request) -> dict:
    # A plain dict: as a form, "?status=" would count as no filter at all.
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ConversationPagination(NewestFirstPagination):
    ordering = ("-last_message_at", "-id")


class ConversationListView(ApiView):
    pagination_class = ConversationPagination

    @extend_schema(
        tags=TAGS,
        summary="The conversations I may open, newest activity first",
        description="Admins see every conversation of the account. An agent in groups sees those groups' "
        "conversations, an agent in no group every conversation, and every agent the ones assigned to them.",
        parameters=[ConversationListQuerySerializer],
        responses={200: ConversationSerializer(many=True), **errors(400, *AUTHENTICATED, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = query(ConversationListQuerySerializer, request)
        conversations = selectors.conversations_visible(operator=request.user)
        if "status" in filters:
            conversations = conversations.filter(status=filters["status"])
        assignee = filters.get("assignee")
        if assignee == "me":
            conversations = conversations.filter(assignee_id=request.user.id)
        elif assignee == "none":
            conversations = conversations.filter(assignee__isnull=True)
        elif assignee is not None:
            conversations = conversations.filter(assignee_id=assignee)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(conversations, request, view=self)
        return paginator.get_paginated_response([conversation_payload(c) for c in page])


class ConversationDetailView(ApiView):
    @extend_schema(
        tags=TAGS,
        summary="One conversation with its messages",
        description="At most 1000 messages, oldest first: for more, ask again with `after` = the last `seq` given.",
        parameters=[CONVERSATION_ID, ConversationQuerySerializer],
        responses={200: CONVERSATION_DETAIL, **errors(400, *AUTHENTICATED, 404)},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = visible_conversation(request, conversation_id)
        after = query(ConversationQuerySerializer, request).get("after", 0)
        messages = selectors.conversation_messages(conversation_id=conversation.id, after=after)
        return Response({**conversation_payload(conversation), "messages": [message_payload(m) for m in messages]})


class ConversationMessagesView(ApiView):
    throttle_classes = [OperatorMessageRateThrottle]

    @extend_schema(
        tags=TAGS,
        summary="Reply to the visitor",
        description="201 with the new message; the same `client_id` again answers 200 with the message stored the "
        "first time, never a second one. The first operator reply assigns an unassigned conversation to its "
        "author. A closed conversation takes no reply (400, `code` `conversation_closed`). At most 120 replies a "
        "minute per operator (429 with `Retry-After`).",
        parameters=[CONVERSATION_ID],
        request=ReplySerializer,
        responses={
            201: MessageSerializer,
            200: MessageSerializer,
            **errors(400, *AUTHENTICATED, 404, 413, 429),
        },
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation_id = int_or_404(conversation_id)
        data = valid(ReplySerializer, request)
        try:
            # The service checks rule 6 under the row lock: no look-up before it.
            posted = services.operator_message_post(
                conversation_id=conversation_id, operator=request.user, body=data["body"], client_id=data["client_id"]
            )
        except services.ConversationNotFound:
            raise Http404 from None
        except services.ConversationClosed:
            raise ConversationClosed() from None
        return Response(
            message_payload(posted.message), status=status.HTTP_201_CREATED if posted.created else status.HTTP_200_OK
        )


class ConversationAssignView(ApiView):
    @extend_schema(
        tags=TAGS,
        summary="Assign the conversation to a colleague, or to nobody",
        parameters=[CONVERSATION_ID],
        request=AssignSerializer,
        responses={200: ConversationSerializer, **errors(400, *AUTHENTICATED, 404, 413)},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = visible_conversation(request, conversation_id)
        data = valid(AssignSerializer, request)
        try:
            conversation = services.conversation_assign(
                conversation_id=conversation.id, actor=request.user, assignee_id=data["operator"]
            )
        except services.ConversationNotFound:
            raise Http404 from None
        except services.InvalidAssignee:
            raise exceptions.ValidationError({"operator": [_("Not an active operator of this account.")]}) from None
        return Response(conversation_payload(conversation))


class ConversationCloseView(ApiView):
    @extend_schema(
        tags=TAGS,
        summary="Close the conversation",
        description="Nobody waits any more; closing a closed conversation changes nothing. A visitor who writes "
        "again reopens it. Takes no body.",
        parameters=[CONVERSATION_ID],
        request=None,
        responses={200: ConversationSerializer, **errors(*AUTHENTICATED, 404)},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = visible_conversation(request, conversation_id)
        try:
            conversation = services.conversation_close(conversation_id=conversation.id, actor=request.user)
        except services.ConversationNotFound:
            raise Http404 from None
        return Response(conversation_payload(conversation))
