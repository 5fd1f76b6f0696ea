"""Writes of conversations: visitors and operators post, operators assign and
close, and the automatic messages (rules 7–8) are sent. The only place that
changes a conversation; each change is published after commit.

Every message of a conversation takes the next ``seq`` under the
conversation's row lock; a second message with the same ``client_id`` is
refused by a unique constraint (the whole transaction rolls back) and the
first one is answered instead.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import BotMode, Operator
from chatstatus import metrics
from conversations import statements, texts
from conversations.events import conversation_frames
from conversations.mail import EMAIL_DELAY, EMAIL_EVERY, admins_notify, conversation_replies_email
from conversations.models import Conversation, Message, Visitor
from conversations.payloads import conversation_payload, message_payload, operator_brief
from conversations.selectors import operator_may_open, visitor_from_token
from groups.models import Group
from presence import events
from presence.services import chat_box_read
from presence.snapshots import BoxBody, widget_box
from presence.store import StoreUnavailable, get_store
from widget.hub import widget_hub
from widget.visitors import visitor_token_digest, visitor_token_new

logger = logging.getLogger(__name__)

OPEN, CLOSED = Conversation.Status.OPEN, Conversation.Status.CLOSED
# A claimed timer whose worker died is claimed again after this long.
TIMER_LEASE_SECONDS = 30.0
TIMERS_BATCH = 500
# Timers are rebuilt from the database this often (and at once after the
# store lost them): a timer whose write failed is late, never lost.
TIMERS_RESEED_SECONDS = 60.0


class ConversationNotFound(Exception):
    """Unknown, of another account, or not one this caller may open."""


class ConversationClosed(Exception):
    """Operators reply to open conversations only (a visitor's message reopens one)."""


class InvalidAssignee(Exception):
    """The operator named is not an active operator of the account."""


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool


@dataclass(frozen=True)
class Started:
    visitor_token: str
    conversation: Conversation
    message: Message
    created: bool


# --- visitors -----------------------------------------------------------------


def visitor_update(
    *, account_id: int, token: object, name: str | None = None, email: str | None = None
) -> tuple[Visitor, str | None]:
    """Set the visitor's name and/or e-mail; a visitor without a (valid) token
    is created and the new token returned."""
    visitor = visitor_from_token(account_id=account_id, token=token)
    issued = None
    if visitor is None:
        issued = visitor_token_new()
        visitor = Visitor.objects.create(account_id=account_id, token_hash=visitor_token_digest(issued))
    fields = {key: value for key, value in (("name", name), ("email", email)) if value is not None}
    if fields:
        for key, value in fields.items():
            setattr(visitor, key, value)
        visitor.save(update_fields=list(fields))
        _publish_conversations_of(visitor)
    return visitor, issued


def _publish_conversations_of(visitor: Visitor) -> None:
    conversation = (
        Conversation.objects.filter(visitor=visitor, status=OPEN).select_related("group", "visitor", "assignee").first()
    )
    if conversation is not None:
        transaction.on_commit(lambda: _publish(conversation, frames=[_conversation_frame(conversation)]))


# --- visitor messages ---------------------------------------------------------------


def offline_form_submit(
    *, account_id: int, name: str, email: str, body: str, group_key: str | None = None, page_url: str = ""
) -> Conversation:
    """The widget's old offline form (``POST /widget/v1/{key}/messages``): a
    visitor who leaves a name, an e-mail and a message starts a conversation
    like any other (rule 7 applies); the admins are e-mailed either way."""
    started = visitor_conversation_start(
        account_id=account_id,
        token=None,
        body=body,
        client_id=f"form-{visitor_token_new()[:32]}",
        group_key=group_key,
        name=name,
        email=email,
        page_url=page_url,
    )
    offline_sent = Message.objects.filter(
        conversation=started.conversation, seq=started.message.seq + 1, kind=Message.Kind.OFFLINE
    ).exists()
    if not offline_sent:
        admins_notify(message_id=started.message.id)
    return started.conversation


def visitor_conversation_start(
    *,
    account_id: int,
    token: object,
    body: str,
    client_id: str,
    group_key: str | None = None,
    name: str = "",
    email: str = "",
    page_url: str = "",
    language: str = "",
    time_zone: str = "",
) -> Started:
    """A visitor's message from the widget: into their open conversation, or
    a new one. Without a valid token a visitor is created and its token
    returned; the retry of a first message whose answer was lost (same
    ``client_id``, no token yet) gets that same message and a fresh token."""
    visitor = visitor_from_token(account_id=account_id, token=token)
    if visitor is None:
        replay = (
            Message.objects.filter(
                conversation__account_id=account_id, author=Message.Author.VISITOR, client_id=client_id
            )
            .select_related("conversation", "operator")
            .first()
        )
        if replay is not None:
            issued = visitor_token_new()
            Visitor.objects.filter(id=replay.conversation.visitor_id).update(token_hash=visitor_token_digest(issued))
            conversation = _conversation_loaded(replay.conversation_id)
            _replayed(replay)
            return Started(issued, conversation, replay, created=False)
        issued = visitor_token_new()
        visitor = Visitor.objects.create(
            account_id=account_id,
            token_hash=visitor_token_digest(issued),
            name=name,
            email=email,
            language=language,
            first_page=page_url,
            time_zone=time_zone,
        )
    else:
        issued = token  # type: ignore[assignment] (valid: it found the visitor)
        changed = {
            key: value
            for key, value in (("name", name), ("email", email), ("time_zone", time_zone))
            if value and value != getattr(visitor, key)
        }
        if changed:
            for key, value in changed.items():
                setattr(visitor, key, value)
            visitor.save(update_fields=list(changed))
    conversation = Conversation.objects.filter(visitor=visitor, status=OPEN).order_by("-last_message_at").first()
    if conversation is None:
        group = Group.objects.filter(account_id=account_id, key=group_key).first() if group_key else None
        # A group key that does not exist (any more) files the conversation under the account.
        conversation = Conversation.objects.create(
            account_id=account_id, visitor=visitor, group=group, page_url=page_url, last_seq=0
        )
    posted = visitor_message_post(
        account_id=account_id, visitor_id=visitor.id, conversation_id=conversation.id, body=body, client_id=client_id
    )
    return Started(issued, _conversation_loaded(conversation.id), posted.message, posted.created)


def visitor_message_post(
    *,
    account_id: int,
    conversation_id: int,
    body: str,
    client_id: str,
    visitor_id: int | None = None,
    token_digest: str | None = None,
    now: datetime | None = None,
) -> Posted:
    """A visitor's message into their conversation (reopened if closed).

    The visitor is named by ``visitor_id`` or by the digest of their token
    (``token_digest``: checked in the same query that locks the conversation).
    Rule 7: on a box that is offline it gets the offline message at once,
    once per offline stretch. Rule 8: the first unanswered message of a
    stretch starts the busy timer. Three queries: the locked conversation,
    one INSERT of the message(s), the UPDATE of the conversation.
    """
    if (visitor_id is None) == (token_digest is None):
        raise ValueError("name the visitor by visitor_id or by token_digest")
    now = now or timezone.now()
    visitor = Q(visitor_id=visitor_id) if visitor_id is not None else Q(visitor__token_hash=token_digest)
    return _once(
        lambda: _visitor_message_add(
            account_id=account_id,
            visitor=visitor,
            conversation_id=conversation_id,
            body=body,
            client_id=client_id,
            now=now,
        ),
        conversation_id=conversation_id,
        client_id=client_id,
    )


def _once(add: Callable[[], Posted], *, conversation_id: int, client_id: str) -> Posted:
    """Run ``add``; if the unique ``(conversation, client_id)`` refused it (the
    transaction rolled back), answer the message already stored. A refusal
    that was not that (two writers racing for a seq) is tried once more."""
    for _attempt in range(2):
        try:
            return add()
        except IntegrityError:
            existing = _message_by_client_id(conversation_id=conversation_id, client_id=client_id)
            if existing is not None:
                return _replayed(existing)
    raise RuntimeError(f"conversation {conversation_id}: no seq after two attempts")


def _replayed(message: Message) -> Posted:
    """The answer to a retry of a stored message, its frames published once
    more after commit (``_republish``)."""
    transaction.on_commit(lambda: _republish(message), robust=True)
    return Posted(message, created=False)


def _republish(message: Message) -> None:
    """Publish a stored message again, with its conversation as it is now
    and the automatic message stored with it (an offline message), for the
    retry of a client that never had its answer. Its first publish may have
    been lost with its process (killed between the COMMIT and the publish):
    without this no operator, nor the visitor's other tabs, would hear of it
    live. Clients resync by ``seq`` (ARCHITECTURE §4), so a frame heard twice
    changes nothing."""
    conversation = _conversation_loaded(message.conversation_id)
    stored_with = (
        Message.objects.filter(
            conversation_id=message.conversation_id,
            seq__gt=message.seq,
            created_at=message.created_at,
            author=Message.Author.SYSTEM,
        )
        .select_related("operator")
        .order_by("seq")
    )
    _publish(conversation, frames=[_conversation_frame(conversation), *_message_frames([message, *stored_with])])


def _visitor_message_add(
    *, account_id: int, visitor: Q, conversation_id: int, body: str, client_id: str, now: datetime
) -> Posted:
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("account", "group", "visitor", "assignee")
            .filter(visitor, id=conversation_id, account_id=account_id)
            .first()
        )
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        write = _visitor_message_decide(conversation, box=_box(conversation), body=body, client_id=client_id, now=now)
        Message.objects.bulk_create(write.messages)
        conversation.save(update_fields=statements.VISITOR_MESSAGE_FIELDS)
        frames = _visitor_message_frames(conversation, write)
        message = write.messages[0]
        if write.admins_notified:
            # Nobody is there: the admins hear of it by e-mail (once per offline stretch).
            transaction.on_commit(lambda: admins_notify(message_id=message.id))
        if write.busy_due is not None:
            transaction.on_commit(lambda: _timer_set(f"busy:{conversation.id}", write.busy_due))
        transaction.on_commit(lambda: _publish(conversation, frames=frames))
        _faq_bot_hook("faq_bot_consider", conversation=conversation, message=message, offline=write.offline)
    return Posted(message, created=True)


@dataclass(frozen=True)
class _VisitorWrite:
    messages: list[Message]  # the visitor's, then the offline message when one is due
    news: bool  # a new or reopened conversation: a frame of its own for the operators (§4)
    starts_stretch: bool  # the message begins the visitor's wait
    offline: bool  # the visitor's box is offline
    admins_notified: bool  # the admins are e-mailed the message
    busy_due: datetime | None  # when the busy timer of the stretch begun falls due


def _visitor_message_decide(
    conversation: Conversation, *, box: BoxBody | None, body: str, client_id: str, now: datetime
) -> _VisitorWrite:
    """Rules 7 and 8 for a visitor's message, over the locked ``conversation``
    (with its account, group, visitor and assignee): what to insert, and the
    conversation's ``VISITOR_MESSAGE_FIELDS`` changed in place. Decides only:
    the caller stores it (the ORM here, psycopg on the event loop in
    ``avisitor_message_post``) and does the rest after commit."""
    offline = box is not None and box["status"] == "offline"
    message = Message(
        conversation=conversation,
        seq=conversation.last_seq + 1,
        author=Message.Author.VISITOR,
        body=body,
        client_id=client_id,
        created_at=now,
    )
    messages = [message]
    news = conversation.status == CLOSED or conversation.last_seq == 0
    conversation.status, conversation.closed_at = OPEN, None
    starts_stretch = conversation.waiting_since is None
    if starts_stretch:
        conversation.waiting_since, conversation.waiting_seq = now, message.seq
    admins_notified = False
    if offline and not conversation.offline_notified:
        messages.append(_offline_message(conversation, seq=message.seq + 1, box=box, now=now))
        conversation.offline_notified = admins_notified = True
    elif not offline:
        # Someone can answer: the next offline stretch gets its own offline message.
        conversation.offline_notified = False
    conversation.last_seq, conversation.last_message_at = messages[-1].seq, now
    busy_due = None
    if starts_stretch and not offline:
        busy_due = now + busy_after(conversation.account.busy_after_seconds)
    return _VisitorWrite(messages, news, starts_stretch, offline, admins_notified, busy_due)


def _visitor_message_frames(conversation: Conversation, write: _VisitorWrite) -> list[dict]:
    """The frames of a stored visitor's message (ids known): a wait that
    begins rides on the message; news gets a ``conversation`` frame first."""
    frames = _message_frames(write.messages, changed=conversation if write.starts_stretch and not write.news else None)
    if write.news:
        frames.insert(0, _conversation_frame(conversation))
    return frames


# --- a visitor's message from the event loop -------------------------------------------
# The same decision as above (``_visitor_message_decide``), stored with SQL
# built once and run on psycopg's asyncio pool (``chatstatus.adb``): no
# request thread, no ORM. Production's busiest write (docs/PERFORMANCE.md).


async def avisitor_message_post(
    *,
    account_id: int,
    conversation_id: int,
    token_digest: str,
    body: str,
    client_id: str,
    now: datetime | None = None,
) -> Posted:
    """``visitor_message_post`` from an event loop, with PostgreSQL
    (``chatstatus.adb.available()``): the same rules, two statements
    (the locked conversation; the UPDATE and INSERT as one) in one transaction,
    then the timer and the frames. The rare after-commit work (the admins'
    e-mail of an offline message, the FAQ bot) runs in a thread."""
    now = now or timezone.now()
    # Read before the lock (the ORM's path reads it under the lock): the box
    # as it is around the write, either way. The process's widget hub keeps
    # the account's newest pushed snapshot while its widgets are here (the
    # visitor's own, most often): no store round trip then.
    snapshot = await widget_hub().snapshot(events.widget_group(account_id), account_id=account_id)

    async def add(connection: object) -> tuple[Conversation, _VisitorWrite]:
        cursor = await connection.execute(statements.VISITOR_LOCK_SQL, [conversation_id, account_id, token_digest])
        row = await cursor.fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        conversation = statements.conversation_from_row(row)
        box = _box(conversation, snapshot=snapshot)
        write = _visitor_message_decide(conversation, box=box, body=body, client_id=client_id, now=now)
        await _astore(connection, conversation, write.messages, statements.VISITOR_MESSAGE_UPDATE)
        return conversation, write

    stored = await _aonce(add, conversation_id=conversation_id, client_id=client_id)
    if isinstance(stored, Posted):
        return stored
    conversation, write = stored
    await _avisitor_message_after(conversation, write)
    return Posted(write.messages[0], created=True)


async def aoperator_message_post(
    *, conversation_id: int, operator: Operator, body: str, client_id: str, now: datetime | None = None
) -> Posted:
    """``operator_message_post`` from an event loop, with PostgreSQL: the
    same rules in two statements (the locked conversation with the
    operator's group keys; the UPDATE and INSERT as one). ``operator`` needs its
    id, account, role, display name and avatar. A reply to a closed
    conversation raises ``ConversationClosed`` even when it is the retry of
    one stored: the caller hands it to ``operator_message_post``, which
    answers that case."""
    now = now or timezone.now()

    async def add(connection: object) -> tuple[Conversation, _OperatorWrite]:
        arguments = [operator.id, operator.account_id, conversation_id, operator.account_id]
        row = await (await connection.execute(statements.OPERATOR_LOCK_SQL, arguments)).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        conversation, group_keys = statements.operator_conversation_from_row(row)
        if not operator_may_open(operator=operator, conversation=conversation, group_keys=group_keys):
            raise ConversationNotFound(conversation_id)
        if conversation.status == CLOSED:
            raise ConversationClosed(conversation_id)
        write = _operator_message_decide(conversation, operator=operator, body=body, client_id=client_id, now=now)
        await _astore(connection, conversation, [write.message], statements.OPERATOR_MESSAGE_UPDATE)
        return conversation, write

    stored = await _aonce(add, conversation_id=conversation_id, client_id=client_id)
    if isinstance(stored, Posted):
        return stored
    conversation, write = stored
    if write.waited:
        await _atimer(f"busy:{conversation.id}", None)
    await events.apublish_many(_outgoing(conversation, frames=_operator_message_frames(conversation, write)))
    if write.email_due is not None:
        await _atimer(f"email:{conversation.id}", write.email_due)
    return Posted(write.message, created=True)


async def _aonce(add: Callable, *, conversation_id: int, client_id: str) -> object:
    """``_once`` on the event loop: ``add(connection)`` in a transaction; what
    it returned, or, when the unique ``(conversation, client_id)`` refused it,
    the message stored the first time (a ``Posted``)."""
    from psycopg import errors as pg_errors

    from chatstatus import adb

    pool = await adb.pool()
    for _attempt in range(2):
        try:
            async with pool.connection() as connection, connection.transaction():
                return await add(connection)
        except pg_errors.UniqueViolation:
            existing = await _amessage_by_client_id(pool, conversation_id=conversation_id, client_id=client_id)
            if existing is not None:
                # Retries are rare: the ORM's path publishes it again (``_replayed``).
                return await database_sync_to_async(_replayed)(existing)
    raise RuntimeError(f"conversation {conversation_id}: no seq after two attempts")


async def _astore(
    connection: object, conversation: Conversation, messages: list[Message], update: statements.Update
) -> None:
    """What a decision changed, as the ORM's path stores it (``messages``
    inserted, their ids set from it; the conversation's ``update`` fields),
    in one statement: one round trip."""
    values = [
        *(getattr(conversation, name) for name in update.attnames),
        conversation.id,
        *(getattr(message, name) for message in messages for name in statements.MESSAGE_ATTNAMES),
    ]
    cursor = await connection.execute(update.sql[len(messages)], values)
    ids = {seq: message_id for message_id, seq in await cursor.fetchall()}
    for message in messages:
        message.id, message._state.adding, message._state.db = ids[message.seq], False, "default"


async def _atimer(name: str, due: datetime | None) -> None:
    """Set (or, with no ``due``, cancel) a timer from an event loop, as ``_timer_set`` / ``_timer_cancel``."""
    try:
        if due is None:
            await get_store().atimer_cancel(name=name)
        else:
            await get_store().atimer_set(name=name, due_at=due.timestamp())
    except StoreUnavailable:
        logger.warning("timer %s not %s: store unavailable", name, "cancelled" if due is None else "set")


async def _amessage_by_client_id(pool: object, *, conversation_id: int, client_id: str) -> Message | None:
    async with pool.connection() as connection:
        cursor = await connection.execute(statements.MESSAGE_BY_CLIENT_ID_SQL, [conversation_id, client_id])
        row = await cursor.fetchone()
    return None if row is None else statements.message_from_row(row)


async def _avisitor_message_after(conversation: Conversation, write: _VisitorWrite) -> None:
    """After commit, as ``_visitor_message_add``'s on_commit does it."""
    if write.busy_due is not None:
        await _atimer(f"busy:{conversation.id}", write.busy_due)
    frames = _visitor_message_frames(conversation, write)
    await events.apublish_many(_outgoing(conversation, frames=frames))
    if write.admins_notified or conversation.account.bot_mode != BotMode.OFF:
        await database_sync_to_async(_visitor_message_after_in_thread)(conversation, write)


def _visitor_message_after_in_thread(conversation: Conversation, write: _VisitorWrite) -> None:
    message = write.messages[0]
    if write.admins_notified:
        admins_notify(message_id=message.id)
    # Outside a transaction the bot's after-commit work runs at once.
    _faq_bot_hook("faq_bot_consider", conversation=conversation, message=message, offline=write.offline)


def _message_by_client_id(*, conversation_id: int, client_id: str) -> Message | None:
    return (
        Message.objects.filter(conversation_id=conversation_id, client_id=client_id).select_related("operator").first()
    )


# --- operators -------------------------------------------------------------------


def _conversation_for_update(*, conversation_id: int, operator: Operator | None) -> Conversation:
    """The conversation, row-locked, if ``operator`` may open it (None: site
    staff in the Django admin, who may open any). Without its account: no
    operator's change needs it, and its many columns made this, the query of
    every reply, the costliest to build."""
    conversations = Conversation.objects.select_for_update(of=("self",)).select_related("group", "visitor", "assignee")
    if operator is not None:
        conversations = conversations.filter(account_id=operator.account_id)
    conversation = conversations.filter(id=conversation_id).first()
    if conversation is None or (
        operator is not None and not operator_may_open(operator=operator, conversation=conversation)
    ):
        raise ConversationNotFound(conversation_id)
    return conversation


def operator_message_post(
    *, conversation_id: int, operator: Operator, body: str, client_id: str, now: datetime | None = None
) -> Posted:
    """An operator's reply. The first reply takes an unassigned conversation
    (under the row lock: of two operators replying at once one becomes the
    assignee, both replies are kept); it ends the visitor's wait."""
    now = now or timezone.now()
    return _once(
        lambda: _operator_message_add(
            conversation_id=conversation_id, operator=operator, body=body, client_id=client_id, now=now
        ),
        conversation_id=conversation_id,
        client_id=client_id,
    )


def _operator_message_add(
    *, conversation_id: int, operator: Operator, body: str, client_id: str, now: datetime
) -> Posted:
    with transaction.atomic():
        conversation = _conversation_for_update(conversation_id=conversation_id, operator=operator)
        if conversation.status == CLOSED:
            # A retry of a reply that closed nothing: answer it as it was.
            existing = _message_by_client_id(conversation_id=conversation_id, client_id=client_id)
            if existing is not None:
                return _replayed(existing)
            raise ConversationClosed(conversation_id)
        write = _operator_message_decide(conversation, operator=operator, body=body, client_id=client_id, now=now)
        Message.objects.bulk_create([write.message])
        conversation.save(update_fields=statements.OPERATOR_MESSAGE_FIELDS)
        frames = _operator_message_frames(conversation, write)
        if write.waited:
            # A wait's busy timer goes with it (none runs while nobody waits:
            # a stale one finds nothing to send when it fires).
            transaction.on_commit(lambda: _timer_cancel(f"busy:{conversation.id}"))
        transaction.on_commit(lambda: _publish(conversation, frames=frames))
        if write.email_due is not None:
            transaction.on_commit(lambda: _timer_set(f"email:{conversation.id}", write.email_due))
    return Posted(write.message, created=True)


@dataclass(frozen=True)
class _OperatorWrite:
    message: Message
    assigned: bool  # the reply takes the unassigned conversation: news of its own (§4)
    waited: bool  # the reply ends the visitor's wait
    email_due: datetime | None  # the visitor gave an e-mail: when the replies since the last one are e-mailed


def _operator_message_decide(
    conversation: Conversation, *, operator: Operator, body: str, client_id: str, now: datetime
) -> _OperatorWrite:
    """An operator's reply over the locked, open ``conversation`` (group,
    visitor and assignee loaded): the message to insert, and the
    conversation's ``OPERATOR_MESSAGE_FIELDS`` changed in place. The first
    reply takes an unassigned conversation; any reply ends the wait."""
    message = Message(
        conversation=conversation,
        seq=conversation.last_seq + 1,
        author=Message.Author.OPERATOR,
        operator=operator,
        body=body,
        client_id=client_id,
        created_at=now,
    )
    assigned, waited = conversation.assignee_id is None, conversation.waiting_since is not None
    if assigned:
        conversation.assignee = operator
    conversation.waiting_since = conversation.waiting_seq = None
    conversation.last_seq, conversation.last_message_at = message.seq, now
    email_due = _email_due(conversation, now=now) if conversation.visitor.email else None
    return _OperatorWrite(message, assigned, waited, email_due)


def _operator_message_frames(conversation: Conversation, write: _OperatorWrite) -> list[dict]:
    """Taking the conversation is news of its own (§4); an ended wait rides on the reply."""
    frames = _message_frames([write.message], changed=conversation if write.waited and not write.assigned else None)
    if write.assigned:
        frames.insert(0, _conversation_frame(conversation))
    return frames


def conversation_assign(*, conversation_id: int, actor: Operator, assignee_id: int | None) -> Conversation:
    """Assign to a colleague (any active operator of the account) or unassign."""
    with transaction.atomic():
        conversation = _conversation_for_update(conversation_id=conversation_id, operator=actor)
        assignee = None
        if assignee_id is not None:
            assignee = Operator.objects.filter(id=assignee_id, account_id=actor.account_id, is_active=True).first()
            if assignee is None:
                raise InvalidAssignee(assignee_id)
        if conversation.assignee_id != assignee_id:
            previous = conversation.assignee_id
            conversation.assignee = assignee
            conversation.save(update_fields=["assignee"])
            transaction.on_commit(
                lambda: _publish(conversation, frames=[_conversation_frame(conversation)], also_told=previous)
            )
    return conversation


def conversation_close(*, conversation_id: int, actor: Operator | None, now: datetime | None = None) -> Conversation:
    """Close it; nobody waits any more. A visitor who writes again reopens it.
    ``actor`` None: site staff (the Django admin)."""
    now = now or timezone.now()
    with transaction.atomic():
        conversation = _conversation_for_update(conversation_id=conversation_id, operator=actor)
        if conversation.status != CLOSED:
            conversation.status, conversation.closed_at = CLOSED, now
            conversation.waiting_since = conversation.waiting_seq = None
            conversation.save(update_fields=["status", "closed_at", "waiting_since", "waiting_seq"])
            transaction.on_commit(lambda: _timer_cancel(f"busy:{conversation.id}"))
            transaction.on_commit(lambda: _publish(conversation, frames=[_conversation_frame(conversation)]))
    return conversation


def operator_typing(*, conversation_id: int, operator: Operator) -> bool:
    """Tell the visitor (and the operator's colleagues) that ``operator`` is typing."""
    conversation = (
        Conversation.objects.select_related("group", "visitor")
        .filter(id=conversation_id, account_id=operator.account_id, status=OPEN)
        .first()
    )
    if conversation is None or not operator_may_open(operator=operator, conversation=conversation):
        return False
    brief = operator_brief(operator)
    frame = {"type": "typing", "conversation_id": conversation.id, "operator": brief}
    _publish(conversation, frames=[frame], to_visitor=[{"type": "typing", "operator": brief}])
    return True


# --- automatic messages (rules 7–8) -------------------------------------------------------


def busy_after(account_seconds: int) -> timedelta:
    """The account's busy delay; ``CONVERSATION_BUSY_AFTER_SECONDS`` replaces it
    for every account when set (tests and drills go below the 15 s minimum)."""
    override = settings.CONVERSATION_BUSY_AFTER_SECONDS
    return timedelta(seconds=account_seconds if override is None else override)


def _box(conversation: Conversation, *, snapshot: object = False) -> BoxBody | None:
    """The box the conversation's visitor sees (its group's; the account's
    when it has none or the group is gone). None: the account is gone.
    ``snapshot``: the account's, when the caller read it already."""
    if snapshot is False:
        snapshot = chat_box_read(account_id=conversation.account_id)
    if snapshot is None:
        return None
    group_key = conversation.group.key if conversation.group_id else None
    return widget_box(snapshot, group_key) or widget_box(snapshot, None)


def _offline_message(conversation: Conversation, *, seq: int, box: BoxBody, now: datetime) -> Message:
    back_at = None
    if box["reason"] == "closed" and box["next_change_at"]:
        back_at = datetime.fromisoformat(box["next_change_at"])
    ask = not conversation.visitor.email
    return Message(
        conversation=conversation,
        seq=seq,
        author=Message.Author.SYSTEM,
        kind=Message.Kind.OFFLINE,
        body=texts.offline_text(account=conversation.account, back_at=back_at, ask_email=ask),
        client_id=f"auto:offline:{seq}",
        asks_email=ask,
        created_at=now,
    )


def conversation_busy_fire(*, conversation_id: int, now: datetime | None = None) -> Message | None:
    """``conversations_busy_fire`` for one conversation: the message sent, if any."""
    sent, _busy = conversations_busy_fire(conversation_ids=[conversation_id], now=now)
    return sent[0] if sent else None


def conversations_busy_fire(
    *, conversation_ids: list[int], now: datetime | None = None
) -> tuple[list[Message], set[int]]:
    """Rule 8, when busy timers fall due: the busy message, once per
    unanswered stretch, unless an operator replied or the conversation closed
    meanwhile. A box gone offline since gets the offline message instead
    (once per offline stretch). A timer early for the current stretch (the
    account's delay changed) is set again for the right moment.

    One batch: the conversations are locked together (those another
    transaction holds are skipped and returned, to be fired again at once),
    one INSERT, an UPDATE per kind of change (at most four), one publish.
    Returns (messages sent, skipped ids)."""
    now = now or timezone.now()
    with transaction.atomic():
        conversations = list(
            Conversation.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("account", "group", "visitor", "assignee")
            .filter(id__in=conversation_ids)
        )
        busy = set(conversation_ids) - {conversation.id for conversation in conversations}
        snapshots: dict[int, object] = {}
        sent: list[tuple[Conversation, Message]] = []
        changed: list[Conversation] = []
        for conversation in conversations:
            if (
                conversation.status != OPEN
                or conversation.waiting_seq is None
                or conversation.busy_sent_seq == conversation.waiting_seq
            ):
                continue
            due = conversation.waiting_since + busy_after(conversation.account.busy_after_seconds)
            if due > now:
                transaction.on_commit(lambda name=f"busy:{conversation.id}", due=due: _timer_set(name, due))
                continue
            if conversation.account_id not in snapshots:
                snapshots[conversation.account_id] = chat_box_read(account_id=conversation.account_id)
            box = _box(conversation, snapshot=snapshots[conversation.account_id])
            message = _busy_message(conversation, box=box, now=now)
            conversation.busy_sent_seq = conversation.waiting_seq
            if message is not None:
                conversation.last_seq, conversation.last_message_at = message.seq, now
                sent.append((conversation, message))
            changed.append(conversation)
        Message.objects.bulk_create([message for _conversation, message in sent])
        _busy_fired_store(changed, with_message={conversation.id for conversation, _message in sent}, now=now)
        if sent:
            transaction.on_commit(
                lambda: _publish_many([(conversation, [_message_frame(message)]) for conversation, message in sent])
            )
        for conversation, message in sent:
            _faq_bot_hook("faq_bot_after_automatic", conversation=conversation, message=message)
    return [message for _conversation, message in sent], busy


def _busy_fired_store(changed: list[Conversation], *, with_message: set[int], now: datetime) -> None:
    """Store what firing changed on the (locked) conversations: one UPDATE
    per kind of change, at most four, where ``bulk_update`` builds a CASE per
    row and field (1.1 s of the ORM's work for 500 conversations). Each
    conversation's stretch is marked done (``busy_sent_seq``); one that got
    a message has it as its last (the message's seq is the next one)."""
    kinds: dict[tuple[bool, bool], list[int]] = defaultdict(list)
    for conversation in changed:
        kinds[(conversation.id in with_message, conversation.offline_notified)].append(conversation.id)
    for (got_message, offline_notified), ids in kinds.items():
        fields: dict[str, object] = {"busy_sent_seq": F("waiting_seq"), "offline_notified": offline_notified}
        if got_message:
            fields.update(last_seq=F("last_seq") + 1, last_message_at=now)
        Conversation.objects.filter(id__in=ids).update(**fields)


def _busy_message(conversation: Conversation, *, box: BoxBody | None, now: datetime) -> Message | None:
    seq = conversation.last_seq + 1
    if box is not None and box["status"] == "offline":
        if conversation.offline_notified:
            return None
        conversation.offline_notified = True
        return _offline_message(conversation, seq=seq, box=box, now=now)
    ask = not conversation.visitor.email
    return Message(
        conversation=conversation,
        seq=seq,
        author=Message.Author.SYSTEM,
        kind=Message.Kind.BUSY,
        body=texts.busy_text(account=conversation.account, ask_email=ask),
        # Deterministic: a second busy message for the stretch breaks the unique constraint.
        client_id=f"auto:busy:{conversation.waiting_seq}",
        asks_email=ask,
        created_at=now,
    )


def timers_fire(*, now: datetime | None = None) -> int:
    """Fire every due timer (beat every second; embedded: the ticker).

    Claimed timers are leased: one whose worker dies is fired again once the
    lease ends, and the database (row lock, deterministic ``client_id``)
    makes a second firing a no-op. Busy timers fire in batches. Returns the
    number of timers done."""
    now = now or timezone.now()
    store = get_store()
    if store.timers_reseed_due(now=now.timestamp(), every=TIMERS_RESEED_SECONDS):
        timers_reseed(now=now)
    done = 0
    while True:
        claimed = store.timers_claim(now=now.timestamp(), limit=TIMERS_BATCH, lease=TIMER_LEASE_SECONDS)
        busy: dict[int, tuple[str, float]] = {}
        finished: list[tuple[str, float]] = []
        for name, claimed_until in claimed:
            kind, _sep, ident = name.partition(":")
            metrics.AUTOMATIC_MESSAGE_TIMERS_DUE.labels(kind).inc()
            if kind == "busy" and ident.isdigit():
                busy[int(ident)] = (name, claimed_until)
                continue
            try:
                if kind == "email" and ident.isdigit():
                    conversation_replies_email(conversation_id=int(ident), now=now)
                else:
                    logger.warning("timer %s: unknown kind; dropped", name)
            except Exception:
                # Left leased: fired again when the lease ends.
                logger.exception("timer %s failed", name)
                continue
            finished.append((name, claimed_until))
        if busy:
            try:
                sent, locked = conversations_busy_fire(conversation_ids=list(busy), now=now)
            except Exception:
                logger.exception("busy timers %s failed; firing them one by one", sorted(busy))
                sent, locked = _busy_fire_one_by_one(list(busy), now=now)
            for message in sent:
                metrics.AUTOMATIC_MESSAGE_TIMERS_FIRED.labels(message.kind).inc()
            for conversation_id, (name, claimed_until) in busy.items():
                if conversation_id in locked:
                    # Held by a reply or another firing right now: due again at once.
                    _timer_set(name, now)
                else:
                    finished.append((name, claimed_until))
        if finished:
            store.timers_done(names=finished)
            done += len(finished)
        if len(claimed) < TIMERS_BATCH:
            return done


def _busy_fire_one_by_one(conversation_ids: list[int], *, now: datetime) -> tuple[list[Message], set[int]]:
    sent: list[Message] = []
    left: set[int] = set()
    for conversation_id in conversation_ids:
        try:
            messages, locked = conversations_busy_fire(conversation_ids=[conversation_id], now=now)
        except Exception:
            # Left leased: fired again when the lease ends.
            logger.exception("timer busy:%s failed", conversation_id)
            left.add(conversation_id)
            continue
        sent += messages
        left |= locked
    return sent, left


def timers_reseed(*, now: datetime) -> int:
    """Set the busy timer of every conversation still waiting for one, from
    the database (after the store lost its timers, and now and then)."""
    return _busy_timers_set(Conversation.objects.all())


def conversations_busy_reschedule(*, account_id: int) -> None:
    """The account's busy delay got shorter: each of its conversations waiting
    for a busy message gets it at the new moment (one already past fires at the
    next tick), once the new delay is committed. A longer delay needs nothing:
    a timer that fires early finds the conversation not yet due and is set again."""

    def reschedule() -> None:
        try:
            _busy_timers_set(Conversation.objects.filter(account_id=account_id))
        except StoreUnavailable:
            logger.warning(
                "busy timers of account %s not moved: store unavailable (the next reseed moves them)", account_id
            )

    transaction.on_commit(reschedule)


def _busy_timers_set(conversations: QuerySet[Conversation]) -> int:
    """The busy timer of each of ``conversations`` still waiting for one, from the database."""
    store = get_store()
    waiting = conversations.filter(status=OPEN, waiting_seq__isnull=False).values_list(
        "id", "waiting_since", "waiting_seq", "busy_sent_seq", "account__busy_after_seconds"
    )
    count = 0
    for conversation_id, since, seq, sent_seq, delay in waiting.iterator():
        if sent_seq != seq:
            store.timer_set(name=f"busy:{conversation_id}", due_at=(since + busy_after(delay)).timestamp())
            count += 1
    return count


def _timer_set(name: str, due: datetime) -> None:
    try:
        get_store().timer_set(name=name, due_at=due.timestamp())
    except StoreUnavailable:
        logger.warning("timer %s not set: store unavailable (the next reseed sets it)", name)


def _timer_cancel(name: str) -> None:
    try:
        get_store().timer_cancel(name=name)
    except StoreUnavailable:
        logger.warning("timer %s not cancelled: store unavailable (firing it will do nothing)", name)


def _email_due(conversation: Conversation, *, now: datetime) -> datetime:
    earliest = now + EMAIL_DELAY
    if conversation.emailed_at is not None:
        earliest = max(earliest, conversation.emailed_at + EMAIL_EVERY)
    return earliest


# --- publishing ---------------------------------------------------------------------


def _conversation_loaded(conversation_id: int) -> Conversation:
    return Conversation.objects.select_related("group", "visitor", "assignee").get(id=conversation_id)


def _conversation_frame(conversation: Conversation) -> dict:
    return {"type": "conversation", "conversation": conversation_payload(conversation)}


def _message_frame(message: Message) -> dict:
    return {"type": "message", "message": message_payload(message)}


def _message_frames(messages: list[Message], *, changed: Conversation | None = None) -> list[dict]:
    """The frames of ``messages``, in order. ``changed``: the conversation whose
    waiting state the first of them changed; it rides on that message's frame
    (``"conversation"``) instead of a ``conversation`` frame of its own, which
    every operator socket of the account would receive once more. Conversation
    frames still say what ARCHITECTURE §4 names: new, assigned, closed (and
    reopened)."""
    frames = [_message_frame(message) for message in messages]
    if changed is not None:
        frames[0]["conversation"] = conversation_payload(changed)
    return frames


def _publish(
    conversation: Conversation,
    *,
    frames: list[dict],
    to_visitor: list[dict] | None = None,
    also_told: int | None = None,
) -> None:
    """``also_told``: an operator who may no longer open it (its previous
    assignee) but must hear that it changed."""
    events.publish_many(_outgoing(conversation, frames=frames, to_visitor=to_visitor, also_told=also_told))


def _publish_many(batch: list[tuple[Conversation, list[dict]]]) -> None:
    """Several conversations' frames in one publish."""
    events.publish_many([item for conversation, frames in batch for item in _outgoing(conversation, frames=frames)])


def _outgoing(
    conversation: Conversation,
    *,
    frames: list[dict],
    to_visitor: list[dict] | None = None,
    also_told: int | None = None,
) -> list[tuple[str, dict]]:
    return conversation_frames(
        account_id=conversation.account_id,
        visitor_digest=conversation.visitor.token_hash,
        group_key=conversation.group.key if conversation.group_id else None,
        assignee_ids=[i for i in (conversation.assignee_id, also_told) if i is not None],
        frames=frames,
        to_visitor=to_visitor,
    )


# --- the FAQ bot's hooks ------------------------------------------------------------------


def _faq_bot_hook(name: str, **arguments: object) -> None:
    """Tell the FAQ bot (``conversations.faq.services``) about a visitor
    message or an automatic message. It only decides here and answers after
    commit; whatever goes wrong, the write it is called from goes on."""
    try:
        # Imported here: the FAQ services post their answers through this module.
        from conversations.faq import services as faq_services

        getattr(faq_services, name)(**arguments)
    except Exception:
        logger.exception("FAQ bot hook %s failed; the bot stays silent", name)
