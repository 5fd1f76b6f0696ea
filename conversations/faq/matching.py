"""The FAQ matcher: which entry answers a visitor's question, and how sure it is.

Pure: no database, no settings. An index is built from an account's entries
(``FaqIndex``) and asked with ``FaqIndex.search``; ``conversations.faq.selectors``
keeps one per account per process and rebuilds it when the account's FAQ
version moves.

The method, chosen by measurement on ``bench/faq_eval`` (docs/FAQ.md has the
figures of every method tried):

1. **Folding**: lower case, diacritics removed (visitors write "oteviraci
   doba" as often as "otevírací doba"), words of letters and digits.
2. **Light stemming** of Czech and English endings on the folded word, so
   "dobu", "dobou" and "doba" meet, as do "returns" and "returned". The same
   stemmer runs on both sides, so an over-eager cut costs little.
3. **Typos**: a word of the question no entry knows is looked up by its
   one-letter deletions (symmetric delete, as SymSpell does) among the
   entries' words: one wrong, missing, extra or swapped letter still matches,
   at a lower weight.
4. **Score** of each phrasing (the question and each other phrasing are
   separate): the IDF mass of the phrasing's words the visitor used, over the
   phrasing's whole mass (*does the visitor ask this?*), times the share of the
   visitor's known words it covers, softened (a question buried in a long
   message still scores). An entry scores its best phrasing, blended (one
   fifth) with its Okapi BM25 over all its phrasings. Question words ("how",
   "kolik") alone never make a match.
5. **Language**: when the question is clearly Czech or English, only
   entries in that language compete.

The score is in [0, 1]; ``CONFIDENT`` was calibrated on the evaluation set.
"""

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

# Calibrated on bench/faq_eval (bench/faq.py prints the sweep): below this the
# bot stays silent, because a wrong answer is worse than none.
CONFIDENT = 0.37
# A word matched through a typo counts this much of its weight.
TYPO_WEIGHT = 0.8
# How much the share of the visitor's own words that a phrasing explains
# matters next to how much of the phrasing the visitor used.
QUERY_COVERAGE_POWER = 0.35
# A word of the visitor's that no entry has, as a share of the rarest word's
# weight: it says "this may be about something else", but long messages are
# full of such words around the question.
UNKNOWN_WORD_WEIGHT = 0.5
# The score blends the phrasing coverage above with the entry's Okapi BM25
# (all its phrasings as one document, over the same stemmed words), relative
# to the entry's BM25 against itself and scaled so a third of it counts as
# full: BM25 rewards the words an entry repeats across its phrasings, which
# coverage of one phrasing cannot see. Weight measured on bench/faq_eval.
BM25_WEIGHT = 0.2
BM25_SCALE = 3.0
BM25_K1 = 1.2
BM25_B = 0.75
# Longer input is cut here: a message is at most 4,000 characters, and the
# question is in its first lines far more often than in its thousandth word.
MAX_QUERY_CHARS = 1000
# Shorter words are matched exactly only: "help" is one letter from "hesl(o)".
MIN_TYPO_LENGTH = 5
# A word that begins another ("vyzvedn" / "vyzvednut") matches it when the
# shorter has at least this many letters.
MIN_PREFIX_LENGTH = 5

_WORD = re.compile(r"[a-z0-9]+")

# Function words and courtesies, folded. Question words ("kdy", "kolik",
# "how", "when") are kept: they tell "how much is shipping" from "how long".
STOPWORDS = frozenset(
    """
    a aby aj ale ani ano asi az bez bude budu by byl byla byli bylo byt ci co
    coz da dal dalsi den dekuji dekujeme dekuju diky dobre dobry dobrou dne do
    ho i ja jak jako je jeho jej jeji jen jeste ji jsem jsi jsme jste jsou k ke
    kdyz ktera ktere kteri ktery ku ma mam mate me mi mne mnou muj mu my na
    nad nam nas nasi ne neb nebo nejak ni nic no o od on ona oni ono pak po pod
    pokud potom pozdrav pozdravem prave pred pres pri pro prosim proto protoze
    s se si sic sve svuj ta tady tak take taky tam te tedy ten tento teto tim
    timto to tohle toho tom tomu tu tuto ty u uz v vam vas vase ve vice vsak z
    za zda ze zdravim ahoj hezky hezkeho
    about above after again all also am an and any are as at be been before
    being below between both but by can could dear did do does doing down
    during each few for from further had has have having he hello her here hers
    hey hi him his i if in into is it its itself just me my myself no nor not
    of off on once only or other our ours out over own please pls same she
    should so some such than thank thanks that the their them then there these
    they this those through to too u under until up very was we were what which
    while who whom why will with would you your yours yourself ur im ive id
    dont doesnt cant t s m ll d re ve
    """.split()
)

# Kept for telling questions apart, but never enough on their own: "how much
# is the blue backpack" is not "how much is shipping". Stemmed forms.
QUESTION_WORDS = frozenset("how much many long when where what kolik kdy kde jaky jaka jake kolika".split())

# Folded endings, longest first. Czech cases and verb forms, English plurals
# and tenses: a light stemmer, not a grammar (Dolamic & Savoy's "light"
# Czech stemmer, minus what needs diacritics).
_SUFFIXES = tuple(
    sorted(
        """
        atech atum etem ovani ovat eho emu ich ych imi ymi ama ami ach ata aty ove
        ovi ete eti eni ani iho imu ing ings ed es em im um at am os us ym mi ou ej
        ho ly a e i o u y s
        """.split(),
        key=len,
        reverse=True,
    )
)
_MIN_STEM = 3


def fold(text: str) -> str:
    """Lower case without diacritics ("Otevírací" → "oteviraci")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def stem(word: str) -> str:
    if word.isdigit() or len(word) <= _MIN_STEM:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            word = word[: -len(suffix)]
            break
    # "shipping" → "shipp" → "ship", "openning" (a typo) → "open".
    if len(word) > _MIN_STEM + 1 and word[-1] == word[-2] and word[-1] not in "aeiouy":
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The stemmed content words of ``text``, in order, repeats kept."""
    return [stem(word) for word in _WORD.findall(fold(text[:MAX_QUERY_CHARS])) if word not in STOPWORDS]


# Letters only Czech has (after folding they are gone, so look before).
_CZECH_LETTERS = frozenset("áčďéěíňóřšťúůýž")
_CZECH_WORDS = frozenset(
    "a aby ale ani asi bych co dobry dekuji do jak jake jaky jsem jste kde kdy kolik mam mate me mi muzu na nebo "
    "pro prosim se si to u uz v ve za ze je jde da".split()
)
_ENGLISH_WORDS = frozenset(
    "a an and are can could do does how i is it me my of on please the there to what when where which why will "
    "with you your hi hello thanks".split()
)


def language_guess(text: str) -> str | None:
    """ "cs", "en" or None: Czech letters, else which language's small words it has more of."""
    sample = text[:MAX_QUERY_CHARS].casefold()
    if any(char in _CZECH_LETTERS for char in sample):
        return "cs"
    words = _WORD.findall(fold(sample))
    czech = sum(1 for word in words if word in _CZECH_WORDS)
    english = sum(1 for word in words if word in _ENGLISH_WORDS)
    if czech == english:
        return None
    return "cs" if czech > english else "en"


_QUESTION_STEMS = frozenset(stem(word) for word in QUESTION_WORDS)


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass(frozen=True)
class FaqDoc:
    """What the matcher knows of an entry."""

    entry_id: int
    question: str
    phrasings: tuple[str, ...] = ()
    language: str = ""
    group_id: int | None = None


@dataclass(frozen=True)
class Match:
    entry_id: int
    score: float


@dataclass
class _Phrasing:
    entry: int  # index into FaqIndex.docs
    terms: frozenset[str]
    mass: float = 0.0


@dataclass
class FaqIndex:
    """An inverted index of every phrasing of an account's entries."""

    docs: list[FaqDoc]
    phrasings: list[_Phrasing] = field(default_factory=list)
    postings: dict[str, list[int]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    typo_keys: dict[str, set[str]] = field(default_factory=dict)
    prefixes: dict[str, set[str]] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    # Per entry (by position): its words' counts over all its phrasings, its
    # length, and its BM25 against itself; the average length.
    counts: list[dict[str, int]] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    self_bm25: list[float] = field(default_factory=list)
    average_length: float = 1.0

    @classmethod
    def build(cls, docs: Iterable[FaqDoc]) -> "FaqIndex":
        index = cls(docs=list(docs))
        postings: dict[str, list[int]] = defaultdict(list)
        for position, doc in enumerate(index.docs):
            counts: dict[str, int] = defaultdict(int)
            for text in (doc.question, *doc.phrasings):
                said = terms(text)
                for word in said:
                    counts[word] += 1
                words = frozenset(said)
                if not words:
                    continue
                for word in words:
                    postings[word].append(len(index.phrasings))
                index.phrasings.append(_Phrasing(entry=position, terms=words))
            index.counts.append(dict(counts))
            index.lengths.append(sum(counts.values()))
        index.postings = dict(postings)
        # Document frequency counted per entry, not per phrasing: an entry
        # that says "doprava" in four phrasings does not make it common.
        entries_with: dict[str, set[int]] = defaultdict(set)
        for phrasing in index.phrasings:
            for word in phrasing.terms:
                entries_with[word].add(phrasing.entry)
        total = max(1, len(index.docs))
        index.idf = {
            word: math.log(1 + (total - len(ids) + 0.5) / (len(ids) + 0.5)) for word, ids in entries_with.items()
        }
        for phrasing in index.phrasings:
            phrasing.mass = sum(index.idf[word] for word in phrasing.terms)
        typo_keys: dict[str, set[str]] = defaultdict(set)
        for word in index.idf:
            if len(word) >= MIN_TYPO_LENGTH:
                typo_keys[word].add(word)
                for key in _deletes(word):
                    typo_keys[key].add(word)
        index.typo_keys = dict(typo_keys)
        prefixes: dict[str, set[str]] = defaultdict(set)
        for word in index.idf:
            if len(word) >= MIN_PREFIX_LENGTH:
                prefixes[word[:MIN_PREFIX_LENGTH]].add(word)
        index.prefixes = dict(prefixes)
        index.languages = frozenset(doc.language for doc in index.docs)
        index.average_length = max(1.0, sum(index.lengths) / max(1, len(index.lengths)))
        index.self_bm25 = [
            index._bm25(position, {word: 1.0 for word in counts}) for position, counts in enumerate(index.counts)
        ]
        return index

    def _bm25(self, position: int, weights: dict[str, float]) -> float:
        """Okapi BM25 of the entry at ``position`` for the index words given, each
        with its weight (a typo counts less)."""
        counts, length = self.counts[position], self.lengths[position]
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / self.average_length)
        total = 0.0
        for word, weight in weights.items():
            count = counts.get(word)
            if count:
                total += weight * self.idf[word] * count * (BM25_K1 + 1) / (count + norm)
        return total

    def _known(self, word: str) -> list[tuple[str, float]]:
        """The index's words ``word`` stands for, with their weight (1 exact, less for a typo)."""
        if word in self.idf:
            return [(word, 1.0)]
        if len(word) < MIN_TYPO_LENGTH:
            return []
        found: set[str] = set(self.typo_keys.get(word, ()))
        for key in _deletes(word):
            found.update(self.typo_keys.get(key, ()))
        if len(word) >= MIN_PREFIX_LENGTH:
            found.update(
                candidate
                for candidate in self.prefixes.get(word[:MIN_PREFIX_LENGTH], ())
                if candidate.startswith(word) or word.startswith(candidate)
            )
        return [(candidate, TYPO_WEIGHT) for candidate in found]

    def search(
        self,
        text: str,
        *,
        language: str | None = None,
        group_id: int | None = None,
        any_group: bool = False,
        exclude: frozenset[int] = frozenset(),
        limit: int = 3,
    ) -> list[Match]:
        """The best entries for ``text``, best first, each with its score.

        ``group_id``: the conversation's group; entries of no group answer
        every conversation, a group's entries only that group's.
        ``any_group``: ignore groups (the "try a question" page of an admin)."""
        query = list(dict.fromkeys(terms(text)))
        if not query:
            return []
        if language is None and len(self.languages) > 1:
            # A visitor writes in one language: the other's entries only add
            # near misses. Unsure (no telling words): every entry competes.
            guess = language_guess(text)
            language = guess if guess in self.languages else None
        matched: dict[int, float] = defaultdict(float)
        content: set[int] = set()
        query_mass = 0.0
        unknown_weight = UNKNOWN_WORD_WEIGHT * max(self.idf.values(), default=1.0)
        asked: dict[str, float] = {}  # index word → its weight, for BM25
        for word in query:
            known = self._known(word)
            if not known:
                # A word no entry has still counts against "this is what they asked".
                query_mass += unknown_weight
                continue
            for candidate, weight in known:
                asked[candidate] = max(asked.get(candidate, 0.0), weight)
            best_weight = 0.0
            seen: dict[int, float] = {}
            for candidate, weight in known:
                value = self.idf[candidate] * weight
                best_weight = max(best_weight, value)
                for position in self.postings[candidate]:
                    if value > seen.get(position, 0.0):
                        seen[position] = value
            for position, value in seen.items():
                matched[position] += value
            if word not in _QUESTION_STEMS:
                content.update(seen)
            query_mass += best_weight
        best: dict[int, float] = {}
        for position, mass in matched.items():
            if position not in content:
                continue
            phrasing = self.phrasings[position]
            doc = self.docs[phrasing.entry]
            if doc.entry_id in exclude or (language and doc.language != language):
                continue
            if not any_group and doc.group_id is not None and doc.group_id != group_id:
                continue
            coverage = mass / phrasing.mass if phrasing.mass else 0.0
            share = mass / query_mass if query_mass else 0.0
            score = min(1.0, coverage) * min(1.0, share) ** QUERY_COVERAGE_POWER
            if score > best.get(phrasing.entry, 0.0):
                best[phrasing.entry] = score
        for position, score in best.items():
            relative = self._bm25(position, asked) / self.self_bm25[position] if self.self_bm25[position] else 0.0
            best[position] = (1 - BM25_WEIGHT) * score + BM25_WEIGHT * min(1.0, BM25_SCALE * relative)
        ranked = sorted(best.items(), key=lambda item: (-item[1], self.docs[item[0]].entry_id))[:limit]
        return [Match(entry_id=self.docs[position].entry_id, score=round(score, 4)) for position, score in ranked]

    def best(self, text: str, *, threshold: float = CONFIDENT, **options) -> Match | None:
        """The best entry if the matcher is confident enough to answer with it."""
        found = self.search(text, limit=1, **options)
        return found[0] if found and found[0].score >= threshold else None
