"""Writes of the FAQ: entries (the dashboard, the API and the Django admin all
save through these), the bot's answers and the visitors' feedback.

The bot never stands in the way of a visitor's message: ``conversations.services``
calls ``faq_bot_consider`` inside the visitor's write, which only decides
(no query) whether to try, and the try runs after commit, where any failure
is logged and the bot stays silent.
"""

import logging
import re
import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account, BotMode
from conversations import services as conversation_services
from conversations.faq.matching import terms
from conversations.faq.selectors import faq_index, faq_match
from conversations.inputs import control_characters_in, lines_normalised
from conversations.models import (
    BODY_MAX,
    FAQ_ANSWER_MAX,
    FAQ_PHRASINGS_MAX,
    FAQ_QUESTION_MAX,
    Conversation,
    FaqAnswer,
    FaqEntry,
    FaqMiss,
    Message,
)
from groups.models import Group

logger = logging.getLogger(__name__)

OPEN = Conversation.Status.OPEN
# A queued try older than this is dropped: an answer a minute late reads as
# an answer to something else (the worker was down; the visitor moved on).
BOT_TASK_EXPIRES_SECONDS = 60
# Anything that looks like markup: a tag, a comment, a doctype, an entity.
# Answers are plain text (web addresses become links where shown); refusing
# markup outright beats escaping it into "&lt;b&gt;" the visitor then reads.
_MARKUP = re.compile(r"<\s*[A-Za-z!/?]|&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
# What the widget speaks: an entry in another language would never be shown
# to a visitor who reads it.
LANGUAGES = tuple(FaqEntry.Language.values)


class FeedbackNotFound(Exception):
    """No bot answer of that id in the visitor's conversation."""


# --- entries ---------------------------------------------------------------------------------


def _text(value: object, *, field: str, limit: int, errors: dict[str, list[str]], multiline: bool = False) -> str:
    if not isinstance(value, str):
        errors.setdefault(field, []).append(_("Enter text."))
        return ""
    text = lines_normalised(value) if multiline else " ".join(value.split())
    if not text:
        errors.setdefault(field, []).append(_("This field may not be blank."))
    elif len(text) > limit:
        errors.setdefault(field, []).append(
            _("At most %(max)d characters (this has %(count)d).") % {"max": limit, "count": len(text)}
        )
    elif _MARKUP.search(text):
        errors.setdefault(field, []).append(_("Plain text only: no HTML. Web addresses become links by themselves."))
    elif control_characters_in(text):
        errors.setdefault(field, []).append(_("The text contains control characters."))
    return text


def faq_entry_clean(
    *,
    account: Account,
    question: object,
    phrasings: object,
    answer: object,
    language: object,
    group_id: object,
) -> dict:
    """The fields of an entry, checked; a ``ValidationError`` names every bad field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict = {
        "question": _text(question, field="question", limit=FAQ_QUESTION_MAX, errors=errors),
        "answer": _text(answer, field="answer", limit=FAQ_ANSWER_MAX, errors=errors, multiline=True),
    }
    if not isinstance(phrasings, list | tuple) or len(phrasings) > FAQ_PHRASINGS_MAX:
        errors["phrasings"] = [_("A list of at most %(max)d phrasings.") % {"max": FAQ_PHRASINGS_MAX}]
        cleaned["phrasings"] = []
    else:
        items: dict[str, list[str]] = {}
        cleaned["phrasings"] = [
            _text(item, field="phrasings", limit=FAQ_QUESTION_MAX, errors=items) for item in phrasings
        ]
        if items:
            errors["phrasings"] = sorted(set(items["phrasings"]))
        cleaned["phrasings"] = list(dict.fromkeys(p for p in cleaned["phrasings"] if p))
    if language not in LANGUAGES:
        errors["language"] = [
            _("Not a language of this account's widget: %(languages)s.") % {"languages": ", ".join(LANGUAGES)}
        ]
    cleaned["language"] = language
    cleaned["group"] = None
    if group_id is not None:
        group = Group.objects.filter(id=group_id, account_id=account.id).first() if isinstance(group_id, int) else None
        if group is None:
            # Another account's group is reported like a missing one: nothing leaks.
            errors["group"] = [_("Unknown group.")]
        cleaned["group"] = group
    if errors:
        raise ValidationError(errors)
    return cleaned


def _version_bump(account_id: int) -> None:
    """Every process's index of the account is rebuilt at its next match.

    A random value, not a count: an index only has to know it is not the
    current one, and a count repeats after a database goes back to an
    earlier state (a restored backup, a test's rolled-back transaction with
    the same ids), where an index built from other entries would be taken for
    current."""
    Account.objects.filter(id=account_id).update(faq_version=secrets.randbits(31))


@transaction.atomic
def faq_entry_create(
    *,
    account: Account,
    question: object,
    answer: object,
    language: object,
    phrasings: object = (),
    group_id: object = None,
    enabled: bool = True,
) -> FaqEntry:
    cleaned = faq_entry_clean(
        account=account,
        question=question,
        phrasings=list(phrasings),
        answer=answer,
        language=language,
        group_id=group_id,
    )
    entry = FaqEntry.objects.create(account=account, enabled=bool(enabled), **cleaned)
    _version_bump(account.id)
    return entry


_UNSET = object()


@transaction.atomic
def faq_entry_update(
    *,
    entry: FaqEntry,
    question: object = _UNSET,
    answer: object = _UNSET,
    language: object = _UNSET,
    phrasings: object = _UNSET,
    group_id: object = _UNSET,
    enabled: object = _UNSET,
) -> FaqEntry:
    """Change the fields given; the others keep their values."""

    def given(value: object, current: object) -> object:
        return current if value is _UNSET else value

    cleaned = faq_entry_clean(
        account=entry.account,
        question=given(question, entry.question),
        phrasings=given(phrasings, entry.phrasings),
        answer=given(answer, entry.answer),
        language=given(language, entry.language),
        group_id=given(group_id, entry.group_id),
    )
    for name, value in cleaned.items():
        setattr(entry, name, value)
    if enabled is not _UNSET:
        entry.enabled = bool(enabled)
    entry.updated_at = timezone.now()
    entry.save()
    _version_bump(entry.account_id)
    return entry


@transaction.atomic
def faq_entry_delete(*, entry: FaqEntry) -> None:
    # The version moves in faq_entry_deleted, as for an entry its group took along.
    entry.delete()


def faq_entry_deleted(*, account_id: int) -> None:
    """An entry is gone: deleted here, or with its group (a cascade, which no
    FAQ service sees; ``conversations.apps`` connects this to every deletion).
    Without it the index would keep the entry, and a question that matched it
    best would get no answer, even where another entry fits."""
    _version_bump(account_id)


# --- the bot ---------------------------------------------------------------------------------


def faq_bot_consider(*, conversation: Conversation, message: Message, offline: bool) -> None:
    """Called in the visitor's write, after ``message`` is in and the
    conversation's fields are updated (``account`` loaded): whether the bot
    tries this message, decided without a query. The try runs after commit.

    ``when_unavailable``: the box is offline, or the busy message was sent for
    this unanswered stretch. ``first``: no operator has the conversation yet."""
    mode = conversation.account.bot_mode
    if mode == BotMode.WHEN_UNAVAILABLE:
        busy_sent = conversation.waiting_seq is not None and conversation.busy_sent_seq == conversation.waiting_seq
        if not (offline or busy_sent):
            return
    elif mode != BotMode.FIRST or conversation.assignee_id is not None:
        return
    answer = {"conversation_id": conversation.id, "from_seq": message.seq, "upto_seq": message.seq}
    if mode == BotMode.FIRST:
        # Every visitor message: off the request (docs/FAQ.md has the figures).
        transaction.on_commit(lambda: _answer_off_request(answer))
    else:
        # Rare (nobody can answer), and the answer belongs right after the
        # automatic message: at once, in this process.
        transaction.on_commit(lambda: faq_bot_answer_safely(**answer))


def _answer_off_request(answer: dict) -> None:
    """Queue the bot's try for a worker (embedded mode: Celery runs it eagerly,
    here); a broker that refuses it leaves the try to this process."""
    from conversations.tasks import faq_answer  # the task module imports the services

    try:
        faq_answer.apply_async(kwargs=answer, expires=BOT_TASK_EXPIRES_SECONDS)
    except Exception:
        logger.warning("FAQ bot task not queued; answering in this process", exc_info=True)
        faq_bot_answer_safely(**answer)


def faq_bot_after_automatic(*, conversation: Conversation, message: Message) -> None:
    """Called when a busy timer sent its automatic ``message`` (busy, or
    offline on a box gone offline meanwhile): in ``when_unavailable`` mode the
    visitor's unanswered messages are matched, after commit."""
    account = conversation.account
    if account.bot_mode != BotMode.WHEN_UNAVAILABLE or conversation.waiting_seq is None:
        return
    # A busy timer fires for many conversations at once (a batch per claim):
    # an account with no enabled entry is ruled out here, from the index this
    # process keeps (one query per account and FAQ change), not by a try of
    # two queries per conversation after commit that holds up the next batch.
    if not faq_index(account_id=account.id, version=account.faq_version).docs:
        return
    conversation_id, first, last = conversation.id, conversation.waiting_seq, message.seq - 1
    transaction.on_commit(lambda: faq_bot_answer_safely(conversation_id=conversation_id, from_seq=first, upto_seq=last))


def faq_bot_answer_safely(*, conversation_id: int, from_seq: int, upto_seq: int) -> Message | None:
    """``faq_bot_answer``, which never fails its caller: the visitor's message
    is stored and routed whatever the matcher does."""
    try:
        return faq_bot_answer(conversation_id=conversation_id, from_seq=from_seq, upto_seq=upto_seq)
    except Exception:
        logger.exception(
            "FAQ bot failed on conversation %s (messages %s–%s); it stays silent", conversation_id, from_seq, upto_seq
        )
        return None


def faq_bot_answer(
    *, conversation_id: int, from_seq: int, upto_seq: int, now: datetime | None = None
) -> Message | None:
    """Match the visitor's messages ``from_seq``..``upto_seq`` and, when an
    entry answers them with confidence, post its answer as the bot (kind
    ``faq``). Silent when not confident (the question is kept for the
    report), when that entry was answered in this conversation already, when
    the visitor asked for a person, or when an operator took the conversation
    (``first`` mode) meanwhile."""
    now = now or timezone.now()
    conversation = Conversation.objects.select_related("account", "group", "visitor").filter(id=conversation_id).first()
    if conversation is None or conversation.status != OPEN:
        return None
    text = "\n".join(
        Message.objects.filter(
            conversation_id=conversation_id, author=Message.Author.VISITOR, seq__gte=from_seq, seq__lte=upto_seq
        )
        .order_by("seq")
        .values_list("body", flat=True)
    )[:BODY_MAX]
    if not text:
        return None
    if not faq_index(account_id=conversation.account_id, version=conversation.account.faq_version).docs:
        # No enabled entry: nothing to answer with, and no question worth keeping
        # for an account that does not use the FAQ.
        return None
    previous = FaqAnswer.objects.filter(conversation_id=conversation_id)
    if previous.filter(feedback=FaqAnswer.Feedback.TALK_TO_PERSON).exists():
        return None
    matched, nearest = faq_match(account=conversation.account, text=text, group_id=conversation.group_id)
    if matched is None:
        if nearest is None and not terms(text):
            # "Hi", "thanks": nothing asked, nothing to write an entry for.
            return None
        FaqMiss.objects.create(
            account_id=conversation.account_id,
            conversation_id=conversation_id,
            question=text,
            nearest=nearest.entry if nearest else None,
            score=nearest.score if nearest else 0.0,
            created_at=now,
        )
        return None
    if previous.filter(entry_id=matched.entry.id).exists():
        return None
    try:
        return _bot_post(conversation_id=conversation_id, matched=matched, question=text, upto_seq=upto_seq, now=now)
    except IntegrityError:
        # Another process answered the same message (or the same entry) first.
        return None


def _bot_post(*, conversation_id: int, matched, question: str, upto_seq: int, now: datetime) -> Message | None:
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("account", "group", "visitor", "assignee")
            .get(id=conversation_id)
        )
        first_mode = conversation.account.bot_mode == BotMode.FIRST
        if conversation.status != OPEN or (first_mode and conversation.assignee_id is not None):
            return None
        message = Message(
            conversation=conversation,
            seq=conversation.last_seq + 1,
            author=Message.Author.BOT,
            kind=Message.Kind.FAQ,
            body=matched.entry.answer,
            # One bot answer per visitor message: a second try breaks the unique constraint.
            client_id=f"auto:faq:{upto_seq}",
            created_at=now,
        )
        Message.objects.bulk_create([message])
        message.faq_answer = FaqAnswer.objects.create(
            account_id=conversation.account_id,
            conversation=conversation,
            message=message,
            entry=matched.entry,
            question=question,
            score=matched.score,
            created_at=now,
        )
        fields = ["last_seq", "last_message_at"]
        conversation.last_seq, conversation.last_message_at = message.seq, now
        changed = None
        if first_mode and conversation.waiting_seq is not None:
            # The bot answered before anyone: nobody needs to hurry, unless
            # the visitor asks for a person ("Talk to a person" starts the wait again).
            conversation.waiting_since = conversation.waiting_seq = None
            fields += ["waiting_since", "waiting_seq"]
            changed = conversation
            transaction.on_commit(lambda: conversation_services._timer_cancel(f"busy:{conversation.id}"))
        conversation.save(update_fields=fields)
        frames = conversation_services._message_frames([message], changed=changed)
        transaction.on_commit(lambda: conversation_services._publish(conversation, frames=frames))
    return message


# --- feedback ----------------------------------------------------------------------------------


def faq_feedback_give(
    *,
    account_id: int,
    token_digest: str,
    conversation_id: int,
    message_id: int,
    feedback: str,
    now: datetime | None = None,
) -> Message:
    """The visitor's answer to a bot answer: ``helpful`` or ``talk_to_person``.
    The first choice is kept (a second click changes nothing). "That helped"
    ends the wait when nothing was asked after the answer; "Talk to a person"
    makes the conversation wait for an operator (busy timer and all) and
    silences the bot in it."""
    if feedback not in (FaqAnswer.Feedback.HELPFUL, FaqAnswer.Feedback.TALK_TO_PERSON):
        raise ValueError(feedback)
    now = now or timezone.now()
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("account", "group", "visitor", "assignee")
            .filter(id=conversation_id, account_id=account_id, visitor__token_hash=token_digest)
            .first()
        )
        if conversation is None:
            raise conversation_services.ConversationNotFound(conversation_id)
        answer = (
            FaqAnswer.objects.select_for_update(of=("self",))
            .select_related("message")
            .filter(conversation=conversation, message_id=message_id)
            .first()
        )
        if answer is None:
            raise FeedbackNotFound(message_id)
        message = answer.message
        message.faq_answer = answer
        if answer.feedback:
            return message
        answer.feedback, answer.feedback_at = feedback, now
        answer.save(update_fields=["feedback", "feedback_at"])
        changed = None
        asked_since = (
            conversation.last_seq > message.seq
            and Message.objects.filter(
                conversation=conversation, author=Message.Author.VISITOR, seq__gt=message.seq
            ).exists()
        )
        if feedback == FaqAnswer.Feedback.HELPFUL and conversation.waiting_seq is not None and not asked_since:
            conversation.waiting_since = conversation.waiting_seq = None
            conversation.save(update_fields=["waiting_since", "waiting_seq"])
            changed = conversation
            transaction.on_commit(lambda: conversation_services._timer_cancel(f"busy:{conversation.id}"))
        elif feedback == FaqAnswer.Feedback.TALK_TO_PERSON and conversation.waiting_seq is None:
            # A stretch of its own (the busy message's client_id is per stretch):
            # the last seq is one no earlier stretch used.
            conversation.waiting_since, conversation.waiting_seq = now, conversation.last_seq
            conversation.save(update_fields=["waiting_since", "waiting_seq"])
            changed = conversation
            due = now + conversation_services.busy_after(conversation.account.busy_after_seconds)
            transaction.on_commit(lambda: conversation_services._timer_set(f"busy:{conversation.id}", due))
        frames = conversation_services._message_frames([message], changed=changed)
        transaction.on_commit(lambda: conversation_services._publish(conversation, frames=frames))
    return message
