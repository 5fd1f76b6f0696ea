"""Reads of visitors, conversations and messages; rule 6 decides what an operator sees."""

from django.db.models import Q, QuerySet

from accounts.models import Operator
from conversations.models import Conversation, Message, Visitor
from groups.models import Membership
from presence.rules import may_open
from widget.visitors import visitor_token_digest, visitor_token_valid

ADMIN_ROLES = (Operator.Role.OWNER, Operator.Role.ADMIN)


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
