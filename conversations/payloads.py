"""The public JSON shapes of ARCHITECTURE §4: a conversation and a message.

Every transport (REST API, widget endpoints, operator and widget sockets)
sends these, built here only.
"""

from datetime import UTC, datetime
from typing import NotRequired, TypedDict

from accounts.models import Operator
from conversations.models import Conversation, Message


class OperatorBrief(TypedDict):
    id: int
    display_name: str
    avatar_url: str | None


class VisitorBrief(TypedDict):
    id: int
    name: str
    email: str


class ConversationPayload(TypedDict):
    id: int
    status: str
    group: str | None
    visitor: VisitorBrief
    assignee: OperatorBrief | None
    created_at: str
    last_message_at: str
    waiting_since: str | None


class FaqBrief(TypedDict):
    """On a bot answer: which entry, and what the visitor said of it
    (``""`` none yet, ``"helpful"``, ``"talk_to_person"``)."""

    entry_id: int | None
    feedback: str


class MessagePayload(TypedDict):
    id: int
    conversation_id: int
    seq: int
    author: str
    operator: OperatorBrief | None
    kind: str
    body: str
    client_id: str
    created_at: str
    asks_email: bool
    faq: NotRequired[FaqBrief]


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def operator_brief(operator: Operator | None) -> OperatorBrief | None:
    if operator is None:
        return None
    avatar = operator.avatar.url if operator.avatar else None
    return {"id": operator.id, "display_name": operator.display_name, "avatar_url": avatar}


def conversation_payload(conversation: Conversation) -> ConversationPayload:
    """Needs ``group``, ``visitor`` and ``assignee`` loaded (select_related)."""
    visitor = conversation.visitor
    return {
        "id": conversation.id,
        "status": conversation.status,
        "group": conversation.group.key if conversation.group_id else None,
        "visitor": {"id": visitor.id, "name": visitor.name, "email": visitor.email},
        "assignee": operator_brief(conversation.assignee),
        "created_at": iso(conversation.created_at),
        "last_message_at": iso(conversation.last_message_at),
        "waiting_since": iso(conversation.waiting_since),
    }


def message_payload(message: Message) -> MessagePayload:
    """Needs ``operator`` loaded when there is one (and ``faq_answer`` for a
    bot answer, else it is read)."""
    payload: MessagePayload = {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "author": message.author,
        "operator": operator_brief(message.operator) if message.operator_id else None,
        "kind": message.kind,
        "body": message.body,
        "client_id": message.client_id,
        "created_at": iso(message.created_at),
        "asks_email": message.asks_email,
    }
    if message.kind == Message.Kind.FAQ:
        payload["faq"] = faq_brief(message)
    return payload


def faq_brief(message: Message) -> FaqBrief:
    try:
        answer = message.faq_answer
    except Message.faq_answer.RelatedObjectDoesNotExist:
        return {"entry_id": None, "feedback": ""}
    return {"entry_id": answer.entry_id, "feedback": answer.feedback}
