"""Reads of the FAQ: entries, the matcher's index of an account (one per
process, rebuilt when the account's ``faq_version`` moves), matches, the
operators' suggestion and the report."""

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from cachetools import LRUCache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import Account
from conversations.faq.matching import CONFIDENT, FaqDoc, FaqIndex
from conversations.models import Conversation, FaqAnswer, FaqEntry, FaqMiss, Message

# What an operator is offered as a reply may be less sure than what the bot
# says on its own: the operator reads it before sending (bench/faq.py: at
# 0.25, 93.6 % of the evaluation set's questions get the right entry offered,
# 4.3 % a wrong one).
SUGGESTION_THRESHOLD = 0.25
# Indexes kept per process; an account out of it is rebuilt on its next match
# (43 entries: a few milliseconds, 500: about 0.1 s).
INDEX_CACHE_SIZE = 1000

_indexes: LRUCache = LRUCache(maxsize=INDEX_CACHE_SIZE)
_indexes_lock = threading.Lock()


@dataclass(frozen=True)
class FaqMatched:
    entry: FaqEntry
    score: float


def faq_entries(*, account_id: int) -> QuerySet[FaqEntry]:
    return FaqEntry.objects.filter(account_id=account_id).select_related("group")


def faq_entry_get(*, account_id: int, entry_id: int) -> FaqEntry | None:
    """An entry of this account; None for another account's (404, never 403)."""
    return faq_entries(account_id=account_id).filter(id=entry_id).first()


def faq_index(*, account_id: int, version: int) -> FaqIndex:
    """The matcher's index of the account's enabled entries, as of ``version``
    (the caller read ``Account.faq_version`` first, so a write racing with the
    build leaves an index older than the version the next caller reads: it is
    rebuilt then, never kept stale)."""
    with _indexes_lock:
        cached = _indexes.get(account_id)
    if cached is not None and cached[0] == version:
        return cached[1]
    rows = FaqEntry.objects.filter(account_id=account_id, enabled=True).values_list(
        "id", "question", "phrasings", "language", "group_id"
    )
    index = FaqIndex.build(
        FaqDoc(
            entry_id=entry_id,
            question=question,
            phrasings=tuple(p for p in phrasings if isinstance(p, str)),
            language=language,
            group_id=group_id,
        )
        for entry_id, question, phrasings, language, group_id in rows
    )
    with _indexes_lock:
        _indexes[account_id] = (version, index)
    return index


def faq_match(
    *,
    account: Account,
    text: str,
    group_id: int | None = None,
    any_group: bool = False,
    language: str | None = None,
    threshold: float = CONFIDENT,
) -> tuple[FaqMatched | None, FaqMatched | None]:
    """(the entry the bot may answer with, or None; the nearest entry whatever
    its score, or None when nothing is near). The entry is read from the
    database: one deleted or disabled since the index was built is no match."""
    index = faq_index(account_id=account.id, version=account.faq_version)
    found = index.search(text, group_id=group_id, any_group=any_group, language=language, limit=1)
    if not found:
        return None, None
    entry = FaqEntry.objects.filter(id=found[0].entry_id, account_id=account.id, enabled=True).first()
    if entry is None:
        return None, None
    nearest = FaqMatched(entry=entry, score=found[0].score)
    return (nearest if nearest.score >= threshold else None), nearest


class SuggestionPayload(TypedDict):
    """The reply offered to an operator in the inbox."""

    entry_id: int
    question: str
    answer: str
    score: float


def faq_suggestion(*, conversation: Conversation) -> SuggestionPayload | None:
    """The best entry for the visitor's last message, when it is near enough
    to offer and no operator has answered it yet (as the inbox drops the
    suggestion at a reply; ``conversation.account`` and ``group`` loaded);
    None otherwise."""
    author, last = (
        Message.objects.filter(
            conversation_id=conversation.id, author__in=(Message.Author.VISITOR, Message.Author.OPERATOR)
        )
        .order_by("-seq")
        .values_list("author", "body")
        .first()
    ) or (None, "")
    if author != Message.Author.VISITOR or not last:
        return None
    matched, _nearest = faq_match(
        account=conversation.account, text=last, group_id=conversation.group_id, threshold=SUGGESTION_THRESHOLD
    )
    if matched is None:
        return None
    return {
        "entry_id": matched.entry.id,
        "question": matched.entry.question,
        "answer": matched.entry.answer,
        "score": matched.score,
    }


@dataclass(frozen=True)
class EntryFigures:
    entry_id: int | None
    question: str
    answers: int
    helpful: int
    talk_to_person: int

    @property
    def helpful_rate(self) -> float | None:
        rated = self.helpful + self.talk_to_person
        return self.helpful / rated if rated else None


@dataclass(frozen=True)
class FaqReport:
    since: datetime
    answers: list[FaqAnswer]
    entries: list[EntryFigures]
    misses: list[FaqMiss]


def faq_report(*, account_id: int, days: int = 30, limit: int = 100) -> FaqReport:
    """The bot's last ``days``: its answers, each entry's helpful rate and the
    questions it could not answer (the list new entries are written from)."""
    since = timezone.now() - timedelta(days=days)
    answers = FaqAnswer.objects.filter(account_id=account_id, created_at__gte=since)
    per_entry = (
        answers.values("entry_id", "entry__question")
        .annotate(
            total=Count("id"),
            helpful=Count("id", filter=Q(feedback=FaqAnswer.Feedback.HELPFUL)),
            person=Count("id", filter=Q(feedback=FaqAnswer.Feedback.TALK_TO_PERSON)),
        )
        .order_by("-total", "entry_id")
    )
    return FaqReport(
        since=since,
        answers=list(answers.select_related("entry")[:limit]),
        entries=[
            EntryFigures(
                entry_id=row["entry_id"],
                question=row["entry__question"] or "",
                answers=row["total"],
                helpful=row["helpful"],
                talk_to_person=row["person"],
            )
            for row in per_entry
        ],
        misses=list(FaqMiss.objects.filter(account_id=account_id, created_at__gte=since)[:limit]),
    )
