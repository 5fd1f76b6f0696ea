"""The FAQ matcher alone: pure functions, no database."""

from conversations.faq.matching import CONFIDENT, FaqDoc, FaqIndex, fold, language_guess, stem, terms

ENTRIES = [
    FaqDoc(1, "Jaká je vaše otevírací doba?", ("Kdy máte otevřeno?",), "cs"),
    FaqDoc(2, "Kolik stojí doprava?", ("Jaká je cena dopravy?", "Kolik platím za poštovné?"), "cs"),
    FaqDoc(3, "How do I return an item?", ("What is your return policy?",), "en"),
    FaqDoc(4, "What are your opening hours?", ("When are you open?",), "en"),
    FaqDoc(5, "Do you ship to Slovakia?", (), "en", group_id=7),
]
INDEX = FaqIndex.build(ENTRIES)


def best(text: str, **options) -> int | None:
    found = INDEX.best(text, any_group=True, **options)
    return found.entry_id if found else None


def test_folding_drops_diacritics_and_case():
    assert fold("Otevírací DOBA") == "oteviraci doba"


def test_czech_inflections_meet_on_one_stem():
    assert stem("dobu") == stem("dobou") == stem("doba")
    assert stem("dopravy") == stem("doprava") == stem("dopravu")


def test_stopwords_and_courtesies_are_not_terms():
    assert terms("Dobrý den, prosím vás") == []
    assert terms("hi, thanks") == []


def test_it_matches_without_diacritics_inflected_and_short():
    # It should answer the way visitors write.
    assert best("oteviraci doba") == 1
    assert best("jakou mate oteviraci dobu?") == 1
    assert best("cena dopravy?") == 2


def test_it_forgives_a_typo():
    assert best("how to retrun an item") == 3
    assert best("openning hours?") == 4


def test_it_finds_the_question_in_a_long_message():
    text = (
        "Hello, I bought a jacket from you last week but it does not fit my son at all, "
        "what is your return policy please?"
    )
    assert best(text) == 3


def test_it_stays_silent_when_nothing_answers():
    assert best("do you sell bikes for kids?") is None
    assert best("hi there") is None
    assert INDEX.search("") == []


def test_question_words_alone_are_no_match():
    # "how much" and "when" are in entries, but say nothing of the topic.
    assert best("how much is it") is None


def test_a_group_entry_answers_only_its_group():
    assert INDEX.best("ship to slovakia?", group_id=None) is None
    assert INDEX.best("ship to slovakia?", group_id=7).entry_id == 5


def test_language_guess_and_filter():
    assert language_guess("Kdy máte otevřeno?") == "cs"
    assert language_guess("when are you open") == "en"
    assert language_guess("ok") is None
    assert INDEX.best("opening hours", language="cs", any_group=True) is None


def test_excluded_entries_are_not_offered():
    assert best("oteviraci doba", exclude=frozenset({1})) is None


def test_scores_are_between_zero_and_one():
    for text in ("oteviraci doba", "Kolik stojí doprava?", "what is your return policy"):
        (found,) = INDEX.search(text, any_group=True, limit=1)
        assert CONFIDENT <= found.score <= 1.0


def test_the_evaluation_set_meets_its_targets():
    # The matcher's quality, not its speed (bench/faq.py measures that): a
    # change that costs right answers or adds wrong ones fails here.
    from bench import faq

    docs, ids = faq.load_entries()
    results = faq.outcomes(faq.chosen(docs), faq.load_questions(faq.EVAL / "questions.tsv", ids))
    figures = faq.figures(results, CONFIDENT)
    assert figures["accuracy"] >= 0.85
    assert figures["wrong"] <= 0.05
    assert figures["answered_unanswerable"] <= 0.05
