"""Reads of visitors, conversations and messages; rule 6 decides what an operator sees."""

import datetime
import re

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Substr

from accounts.models import Operator
from conversations.models import Conversation, Message, Visitor
from groups.models import Membership
from presence.rules import may_open
from widget.visitors import visitor_token_digest, visitor_token_valid

ADMIN_ROLES = (Operator.Role.OWNER, Operator.Role.ADMIN)
OPEN, CLOSED = Conversation.Status.OPEN, Conversation.Status.CLOSED

# The inbox's lists: three views of the open conversations, and the closed ones.
VIEW_WAITING, VIEW_MINE, VIEW_ALL, VIEW_CLOSED = "waiting", "mine", "all", "closed"
INBOX_VIEWS = (VIEW_WAITING, VIEW_MINE, VIEW_ALL, VIEW_CLOSED)
INBOX_PAGE_SIZE = 50
PREVIEW_CHARS = 160
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_CURSOR = re.compile(r"[0-9]{1,20}\.[0-9]{1,12}")


def visitor_from_token(*, account_id: int, token: object) -> Visitor | None:
    """The visitor of this account holding ``token`` (None: no, malformed, or another account's token)."""
    if not visitor_token_valid(token):
        return None
    return Visitor.objects.filter(account_id=account_id, token_hash=visitor_token_digest(token)).first()


def visitor_conversation_current(*, visitor: Visitor) -> Conversation | None:
    """The visitor's open conversation, else their latest one."""
    return (
        Conversation.objects.filter(visitor=visitor)
        .select_related("group", "visitor", "assignee")
        .order_by("-status", "-last_message_at", "-id")  # "open" sorts after "closed": descending puts it first
        .first()
    )


def conversation_messages(*, conversation_id: int, after: int = 0, limit: int = 1000) -> list[Message]:
    """Messages after ``seq`` ``after``, oldest first (at most ``limit``)."""
    return list(
        Message.objects.filter(conversation_id=conversation_id, seq__gt=after)
        .select_related("operator", "faq_answer")
        .order_by("seq")[:limit]
    )


def operator_group_keys(*, operator: Operator) -> frozenset[str]:
    """The keys of the groups ``operator`` belongs to in their own account."""
    return frozenset(
        Membership.objects.filter(operator=operator, group__account_id=operator.account_id).values_list(
            "group__key", flat=True
        )
    )


def operator_is_admin(*, operator: Operator) -> bool:
    return operator.role in ADMIN_ROLES


def operator_may_open(
    *, operator: Operator, conversation: Conversation, group_keys: frozenset[str] | None = None
) -> bool:
    """Rule 6 for one conversation (``conversation.group`` loaded)."""
    if conversation.account_id != operator.account_id:
        return False
    keys = operator_group_keys(operator=operator) if group_keys is None else group_keys
    return may_open(
        is_admin=operator_is_admin(operator=operator),
        group_keys=keys,
        group_key=conversation.group.key if conversation.group_id else None,
        assigned=conversation.assignee_id == operator.id,
    )


def conversations_visible(*, operator: Operator) -> QuerySet[Conversation]:
    """Every conversation ``operator`` may open (rule 6 as a query: the same
    answer as ``operator_may_open`` for each row), newest activity first."""
    conversations = Conversation.objects.filter(account_id=operator.account_id).select_related(
        "group", "visitor", "assignee"
    )
    if not operator_is_admin(operator=operator):
        keys = operator_group_keys(operator=operator)
        if keys:
            # Grouped agents answer their groups' conversations (not the account-level ones).
            conversations = conversations.filter(Q(group__key__in=keys) | Q(assignee=operator))
    return conversations.order_by("-last_message_at", "-id")


def conversation_for_operator(*, operator: Operator, conversation_id: int) -> Conversation | None:
    """One conversation ``operator`` may open; None for any other (404, never 403)."""
    return conversations_visible(operator=operator).filter(id=conversation_id).first()


def conversations_waiting_count(*, operator: Operator) -> int:
    """Open conversations ``operator`` may open whose visitor waits for a reply
    (the inbox's unread count)."""
    return (
        conversations_visible(operator=operator)
        .filter(status=Conversation.Status.OPEN, waiting_since__isnull=False)
        .count()
    )


# --- the inbox's lists -----------------------------------------------------------------


def inbox_cursor_text(*, last_message_at: datetime.datetime, conversation_id: int) -> str:
    """Where a list page ends: the last row's activity (whole microseconds,
    exact, unlike a float timestamp) and id."""
    return f"{(last_message_at - _EPOCH) // datetime.timedelta(microseconds=1)}.{conversation_id}"


def inbox_cursor_parse(text: str) -> tuple[datetime.datetime, int]:
    """The position ``inbox_cursor_text`` wrote (``ValueError`` for text it cannot have written)."""
    if not _CURSOR.fullmatch(text):
        raise ValueError(f"not an inbox cursor: {text!r}")
    micros, conversation_id = text.split(".")
    try:
        moment = _EPOCH + datetime.timedelta(microseconds=int(micros))
    except OverflowError as error:
        raise ValueError(f"not an inbox cursor: {text!r}") from error
    return moment, int(conversation_id)


def _list_filter(conversations: QuerySet[Conversation], *, view: str, operator: Operator) -> QuerySet[Conversation]:
    if view == VIEW_CLOSED:
        return conversations.filter(status=CLOSED)
    conversations = conversations.filter(status=OPEN)
    if view == VIEW_WAITING:
        return conversations.filter(waiting_since__isnull=False)
    if view == VIEW_MINE:
        return conversations.filter(assignee=operator)
    return conversations


def inbox_rows(
    *, operator: Operator, view: str, before: tuple[datetime.datetime, int] | None = None
) -> tuple[list[Conversation], str | None]:
    """One page of an inbox list (``view``: one of ``INBOX_VIEWS``) that
    ``operator`` may open, newest activity first, each with its last message
    (two subqueries, one query in all); and the cursor of the next page.

    The preview skips the automatic messages: what the visitor wrote says
    more than "We're offline right now" under every name."""
    last = Message.objects.filter(conversation=OuterRef("pk")).exclude(author=Message.Author.SYSTEM).order_by("-seq")
    conversations = _list_filter(conversations_visible(operator=operator), view=view, operator=operator)
    if before is not None:
        moment, conversation_id = before
        conversations = conversations.filter(
            Q(last_message_at__lt=moment) | Q(last_message_at=moment, id__lt=conversation_id)
        )
    rows = list(
        conversations.annotate(
            preview_body=Substr(Subquery(last.values("body")[:1]), 1, PREVIEW_CHARS),
            preview_author=Subquery(last.values("author")[:1]),
        )[: INBOX_PAGE_SIZE + 1]
    )
    cursor = None
    if len(rows) > INBOX_PAGE_SIZE:
        rows = rows[:INBOX_PAGE_SIZE]
        cursor = inbox_cursor_text(last_message_at=rows[-1].last_message_at, conversation_id=rows[-1].id)
    return rows, cursor
