"""The support check that decides whether the model's answer is shown or replaced."""

from rag.reader.ground import answers_question, is_supported, parse_citations

SENTENCE = (
    "Blinken stressed that more than 330 million vaccine doses have been delivered to at "
    "least 110 countries, and over 1.2 billion vaccines will be donated next year."
)


def test_parse_citations_drops_numbers_that_do_not_exist() -> None:
    assert parse_citations("330 million [1][7], see [2, 9]", 2) == ("330 million, see", [1, 2])
    assert parse_citations("The answer is: 110. [1]", 3) == ("110", [1])


def test_supported_needs_numbers_names_and_words_from_the_evidence() -> None:
    assert is_supported("More than 330 million vaccine doses", [SENTENCE])
    assert not is_supported("More than 350 million vaccine doses", [SENTENCE])
    assert not is_supported("Biden delivered 330 million doses", [SENTENCE])
    assert not is_supported("Doses were shipped by aircraft carriers", [SENTENCE])
    assert not is_supported("", [SENTENCE])
    assert not is_supported("330 million", [])


def test_a_real_number_that_counts_something_else_is_rejected() -> None:
    q = "How many vaccine doses has the US delivered abroad?"
    assert answers_question("330 million", q, [SENTENCE])
    assert not answers_question("110", q, [SENTENCE])
    assert answers_question("110", "To how many countries were doses delivered?", [SENTENCE])
    # repeating the question is not an answer
    assert not answers_question("vaccine doses delivered", q, [SENTENCE])


def test_quantity_is_taken_verbatim_from_the_sentence() -> None:
    from rag.reader.ground import extract_quantity

    q = "How many vaccine doses has the US delivered abroad?"
    assert extract_quantity(q, SENTENCE) == "More than 330 million"
    assert extract_quantity("How many countries got doses?", SENTENCE) == "At least 110"
    assert extract_quantity("How many troops massed?", SENTENCE) is None
    assert extract_quantity("Who is Blinken?", SENTENCE) is None


def test_quantity_can_be_a_number_word_or_precede_the_verb() -> None:
    from rag.reader.ground import extract_quantity

    two = "We elevated the QUAD with two leader-level summits."
    assert extract_quantity("How many leader-level summits were held?", two) == "Two"
    plague = "In 1656, the plague killed about half of Naples' 300,000 inhabitants."
    assert extract_quantity("How many were killed by plague in Naples?", plague) == "About half"


def test_names_with_digits_are_supported_by_the_same_names() -> None:
    allies = "We re-engaged NATO, the G7, the G20 and ASEAN."
    assert is_supported(allies, [allies])
    assert not is_supported("We re-engaged the G8", [allies])


def test_a_long_copy_of_one_sentence_is_not_an_answer() -> None:
    # the small model's habit: repeat a whole sentence instead of answering
    q = "Who said that the US has been a leading funder of COVAX?"
    assert not answers_question(SENTENCE, q, [SENTENCE])
    assert answers_question("Blinken", q, [SENTENCE])


def test_a_quote_that_opens_with_a_pronoun_brings_the_sentence_before_it() -> None:
    from rag.reader.ground import evidence_text, quote
    from rag.types import Citation

    passage = "Antony Blinken spoke on Tuesday. He said the US is back."
    cite = Citation(2, "d", "t", None, "He said the US is back.", 33, 56, 1.0, passage, 0)
    assert evidence_text([cite]) == f"“{passage}” [2]"
    assert quote([cite]) == f"The article says: “{passage}” [2]"
