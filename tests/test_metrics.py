"""Evaluation metrics against hand-computed cases, plus the gold set and report; no models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals import metrics as m
from evals.cli import parse_configs
from evals.dataset import SEED_DATASET, DatasetError, load_dataset
from evals.report import format_table, metrics_json, write_report
from evals.runner import Config, QuestionResult, RunResult, aggregate, score_question

ROOT = Path(__file__).resolve().parent.parent

# ---- answer normalisation and matching ----------------------------------------------------


def test_a_number_matches_whatever_way_it_is_written() -> None:
    assert m.exact_match("$4.2 million", "4,200,000") == 1.0
    assert m.exact_match("nine", "9") == 1.0 and m.exact_match("Seven", "7") == 1.0
    assert m.contains("with 12,500 books", "12500") == 1.0
    assert m.exact_match("4.2 million", "42 million") == 0.0
    assert m.normalize_numbers("1.25 thousand") == "1250"


def test_normalize_answer_follows_squad() -> None:
    assert m.normalize_answer("The  Beijing Olympics, 2022!") == "beijing olympics 2022"
    assert m.normalize_answer("An “AUKUS” pact — a new one") == "aukus pact new 1"
    assert m.normalize_answer("") == ""


def test_exact_match() -> None:
    assert m.exact_match("the Quad.", "QUAD") == 1.0
    assert m.exact_match("Quad summit", "QUAD") == 0.0
    assert m.exact_match("", "QUAD") == 0.0


def test_token_f1_hand_computed() -> None:
    # pred tokens: 330000000 doses delivered (3); gold: more than 330000000 (3); common 1
    assert m.token_f1("330 million doses delivered", "more than 330 million") == pytest.approx(
        1 / 3
    )
    # repeated tokens count only as often as they occur in both (Counter intersection)
    assert m.token_f1("us us us", "us") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert m.token_f1("Lithuania", "Latvia") == 0.0


def test_empty_answer_scores_zero_and_two_empties_agree() -> None:
    assert m.token_f1("", "Lithuania") == 0.0
    assert m.token_f1("the", "Lithuania") == 0.0  # normalises to nothing
    assert m.token_f1("", "") == 1.0
    assert m.contains("", "Lithuania") == 0.0


def test_contains_matches_whole_tokens_only() -> None:
    assert m.contains("He said more than 330 million doses [1].", "330 million") == 1.0
    assert m.contains("It delivered 25 doses", "5") == 0.0
    assert m.contains("It delivered 5 doses", "5") == 1.0
    assert m.contains("anything at all", "the") == 0.0  # gold normalising to "" never matches


def test_best_over_takes_the_max_and_zero_without_golds() -> None:
    golds = ["Antony Blinken", "Blinken"]
    assert m.best_over(m.exact_match, "Blinken", golds) == 1.0
    assert m.best_over(m.token_f1, "Secretary Blinken", golds) == pytest.approx(2 / 3)
    assert m.best_over(m.exact_match, "Blinken", []) == 0.0


def test_citation_markers_do_not_count_as_numbers() -> None:
    assert m.strip_citation_markers("110 countries [1][2, 3]") == "110 countries"
    assert m.contains(m.strip_citation_markers("Lithuania [2]"), "2") == 0.0


# ---- retrieval ----------------------------------------------------------------------------


def test_recall_at_k_dedupes_retrieved_ids() -> None:
    # chunk ranking a, a, a, b -> documents a, b: b is the 2nd document, not the 4th result
    assert m.recall_at_k(["a", "a", "a", "b"], ["b"], 2) == 1.0
    assert m.recall_at_k(["a", "a", "a", "b"], ["b"], 1) == 0.0
    assert m.recall_at_k(["b", "b", "b"], ["b"], 3) == 1.0  # never above 1


def test_recall_at_k_with_fewer_results_than_k_and_several_gold_docs() -> None:
    assert m.recall_at_k(["x"], ["x"], 10) == 1.0
    assert m.recall_at_k([], ["x"], 10) == 0.0
    assert m.recall_at_k(["x", "y", "z"], ["x", "z", "w", "v"], 2) == 0.25
    assert m.recall_at_k(["x", "y", "z"], ["x", "z", "w", "v"], 10) == 0.5


def test_recall_at_k_rejects_unanswerable_and_bad_k() -> None:
    with pytest.raises(ValueError):
        m.recall_at_k(["x"], [], 5)
    with pytest.raises(ValueError):
        m.recall_at_k(["x"], ["x"], 0)


def test_reciprocal_rank_at_document_level() -> None:
    assert m.reciprocal_rank(["a", "a", "b", "c"], ["c"]) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(["c"], ["c", "d"]) == 1.0
    assert m.reciprocal_rank(["a"], ["c"]) == 0.0
    assert m.reciprocal_rank([], ["c"]) == 0.0


# ---- citations, refusals, percentiles -----------------------------------------------------


def test_citation_precision_accepts_gold_doc_or_gold_answer() -> None:
    cites = [("gold", "unrelated"), ("other", "Lithuania got support"), ("other", "nothing")]
    assert m.citation_precision(cites, ["gold"], ["Lithuania"]) == (2, 3)
    assert m.citation_precision([], ["gold"], ["Lithuania"]) == (0, 0)
    assert m.citation_precision([("other", "x")], [], []) == (0, 1)  # unanswerable question


def test_refusal_precision_and_recall() -> None:
    refused = [True, True, False, False, True]
    unanswerable = [True, False, True, False, True]
    assert m.refusal_precision(refused, unanswerable) == pytest.approx(2 / 3)
    assert m.refusal_recall(refused, unanswerable) == pytest.approx(2 / 3)


def test_refusal_metrics_are_undefined_not_zero_without_cases() -> None:
    assert m.refusal_precision([False, False], [True, False]) is None
    assert m.refusal_recall([True, False], [False, False]) is None
    assert m.refusal_precision([True], [False]) == 0.0
    with pytest.raises(ValueError):
        m.refusal_recall([True], [True, False])


def test_percentile_interpolates_like_numpy() -> None:
    assert m.percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert m.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert m.percentile([7.0], 95) == 7.0
    assert m.percentile([], 50) is None
    assert m.mean([]) is None


# ---- aggregation over per-question records -------------------------------------------------


def _q(qid: str, gold: list[str], docs: list[str], **kw: object) -> QuestionResult:
    return score_question(QuestionResult(id=qid, question=qid, gold=gold, gold_doc_ids=docs, **kw))


def test_aggregate_hand_computed() -> None:
    results = [
        # right answer, gold doc 2nd distinct doc (duplicated chunks above it), grounded
        _q(
            "a1",
            ["Lithuania"],
            ["d1"],
            answer="Lithuania [1]",
            retrieved=["d9", "d1"],
            citations=[{"doc_id": "d1", "text": "Lithuania"}],
            grounded=True,
            timings={"total": 100.0},
        ),
        # a refusal of an answerable question: scores 0 even though the text is not empty
        _q(
            "a2",
            ["110"],
            ["d2"],
            answer="The articles don't say; 110 maybe",
            refused=True,
            retrieved=["d2"],
            timings={"total": 300.0},
        ),
        # an empty answer, with a citation that is neither gold doc nor contains the answer
        _q(
            "a3",
            ["Putin"],
            ["d3"],
            answer="",
            retrieved=[],
            citations=[{"doc_id": "d7", "text": "Russia"}],
            grounded=False,
            timings={"total": 200.0},
        ),
        # unanswerable, correctly refused
        _q("u1", [], [], answer="No.", refused=True, timings={"total": 50.0}),
        # unanswerable, answered (should have refused) with a bad citation
        _q(
            "u2",
            [],
            [],
            answer="Paris [1]",
            citations=[{"doc_id": "d1", "text": "Paris"}],
            grounded=True,
            timings={"total": 150.0},
        ),
    ]
    got = aggregate(results)
    assert got["recall@1"] == pytest.approx(1 / 3)  # a2 only
    assert got["recall@5"] == pytest.approx(2 / 3)
    assert got["recall@10"] == pytest.approx(2 / 3)
    assert got["mrr"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert got["exact_match"] == pytest.approx(1 / 3)
    assert got["f1"] == pytest.approx(1 / 3)
    assert got["contains"] == pytest.approx(1 / 3)
    assert got["citation_precision"] == pytest.approx(1 / 3)  # a1 good; a3, u2 bad
    assert got["grounded"] == pytest.approx(2 / 3)  # a1, a3, u2 answered; a3 not grounded
    assert got["refusal_precision"] == pytest.approx(1 / 2)  # refused a2 (wrongly), u1
    assert got["refusal_recall"] == pytest.approx(1 / 2)  # of u1, u2
    assert got["latency_ms"] == {"total": {"p50": 150.0, "p95": 280.0}}
    assert got["n_questions"] == 5
    assert "contains_exact_fit" not in got
    assert [r.verdict for r in results] == [
        "correct",
        "false refusal",
        "wrong (ungrounded)",
        "correct refusal",
        "answered, should refuse",
    ]


def test_aggregate_exact_fit_subset() -> None:
    results = [
        _q("a", ["Europe"], ["d"], answer="Europe", exact_fit=True),
        _q("b", ["6"], ["d"], answer="five", exact_fit=False),
    ]
    got = aggregate(results, with_exact_fit=True)
    assert got["contains"] == 0.5
    assert got["contains_exact_fit"] == 1.0


def test_the_funnel_counts_where_the_answer_is_lost() -> None:
    kept = _q("a", ["Squid Game"], ["d"], answer="Netflix")
    kept.chunks_hold = True
    kept.context = [{"doc_id": "d", "text": "Netflix renewed Squid Game on Sunday."}]
    kept.candidates = ["Netflix", "Sunday", "Squid Game", "Seoul"]
    lost = _q("b", ["Idaho"], ["d"], answer="Coeur d'Alene")
    lost.chunks_hold = True
    lost.context = [{"doc_id": "d", "text": "Police in Coeur d'Alene arrested 31 men."}]
    unanswerable = _q("c", [], [], refused=True)
    counts = aggregate([kept, lost, unanswerable])["funnel"]
    assert counts == {
        "questions": 2,
        "chunks": 2,
        "sentences": 1,
        "candidates": 1,
        "top3": 1,
        "top1": 0,
    }


def test_metrics_json_has_exactly_the_issue_keys(tmp_path: Path) -> None:
    runs = [
        RunResult(
            Config(r, "grounded"),
            aggregate([_q("a", ["x"], ["d"], answer="x", retrieved=["d"], timings={"total": 1.0})]),
            [],
        )
        for r in ("bm25", "hybrid")
    ]
    single = metrics_json(runs[:1])
    assert set(single) == {
        "recall@1",
        "recall@5",
        "recall@10",
        "mrr",
        "exact_match",
        "f1",
        "contains",
        "citation_precision",
        "grounded",
        "refusal_precision",
        "refusal_recall",
        "funnel",
        "latency_ms",
        "n_questions",
    }
    several = metrics_json(runs)
    assert [(r["retriever"], r["answerer"]) for r in several] == [
        ("bm25", "grounded"),
        ("hybrid", "grounded"),
    ]
    assert "| bm25/grounded |" in format_table(runs)


def test_report_writes_markdown_results_and_plots(tmp_path: Path) -> None:
    qs = [
        _q(
            "a1",
            ["Lithuania"],
            ["d1"],
            answer="Lithuania [1]",
            retrieved=["d1"],
            citations=[{"doc_id": "d1", "text": "Lithuania | pipe"}],
            grounded=True,
            timings={"retrieve": 5.0, "total": 100.0},
            qtype="place",
        ),
        _q("u1", [], [], answer="no", refused=True, timings={"total": 20.0}, qtype="unanswerable"),
    ]
    run = RunResult(Config(), aggregate(qs), qs, 1.0)
    path = write_report([run], tmp_path, title="unit")
    text = path.read_text()
    assert "| a1 |" in text and "correct refusal" in text and "Lithuania \\| pipe" in text
    assert (tmp_path / "recall_at_k.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved[0]["questions"][0]["verdict"] == "correct"


# ---- configurations and the command line --------------------------------------------------


def test_parse_configs() -> None:
    assert parse_configs(None, None) == [Config("hybrid", "reader")]
    assert parse_configs(["bm25,dense"], ["extractive"]) == [
        Config("bm25", "extractive"),
        Config("dense", "extractive"),
    ]
    assert len(parse_configs(None, None, ablation=True)) == 6  # 3 retrievers + 3 other answerers
    with pytest.raises(ValueError, match="retriever 'tfidf'"):
        parse_configs(["tfidf"], None)


def test_missing_dataset_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "evals", "--dataset", str(tmp_path / "nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "dataset folder not found" in proc.stderr
    assert proc.stdout == ""


def test_invalid_dataset_reports_the_bad_line(tmp_path: Path) -> None:
    (tmp_path / "questions.jsonl").write_text('{"id": "1", "question": "q?"}\nnot json\n')
    (tmp_path / "docs.jsonl").write_text('{"doc_id": "d", "text": "t"}\n')
    with pytest.raises(DatasetError, match=r"questions.jsonl:2"):
        load_dataset(tmp_path)


# ---- the seed gold set ---------------------------------------------------------------------


def test_seed_gold_set_shape_and_answers_in_the_article() -> None:
    ds = load_dataset(SEED_DATASET)
    docs = ds.load_documents()
    doc_ids = {d.doc_id for d in docs}
    answerable = [q for q in ds.questions if q.answerable]
    unanswerable = [q for q in ds.questions if not q.answerable]
    assert len(answerable) >= 40 and len(unanswerable) >= 12
    assert {q.extras["type"] for q in ds.questions} >= {
        "number",
        "name",
        "place",
        "date",
        "paraphrase",
        "multi",
        "injection",
        "unanswerable",
    }
    text = " ".join(d.text for d in docs)
    for q in answerable:
        assert set(q.doc_ids) <= doc_ids, q.id  # gold ids are the loader's ids for seeds/
        assert any(m.contains(text, a) for a in q.answers), q.id
    assert all(not q.doc_ids for q in unanswerable)


def test_dataset_content_key_changes_with_the_articles(tmp_path: Path) -> None:
    (tmp_path / "questions.jsonl").write_text('{"id": "1", "question": "q?", "answers": []}\n')
    (tmp_path / "docs.jsonl").write_text('{"doc_id": "d", "text": "one"}\n')
    first = load_dataset(tmp_path).content_key()
    assert load_dataset(tmp_path).content_key() == first
    (tmp_path / "docs.jsonl").write_text('{"doc_id": "d", "text": "two"}\n')
    assert load_dataset(tmp_path).content_key() != first


def test_failure_kind_locates_where_an_answer_went_wrong() -> None:
    ctx = [{"doc_id": "d1", "text": "Lithuania got support"}]
    assert _q("a", ["Lithuania"], ["d1"], answer="Lithuania").failure is None
    assert _q("b", ["Lithuania"], ["d1"], answer="Latvia", context=ctx).failure == (
        "answer in context, not in answer"
    )
    assert _q("c", ["Lithuania"], ["d1"], refused=True, context=ctx).failure == (
        "refused, answer was in context"
    )
    assert _q("d", ["Lithuania"], ["d1"], answer="x", retrieved=["d2"]).failure == (
        "gold document not retrieved"
    )
    assert _q("e", ["Lithuania"], ["d1"], answer="x", retrieved=["d1"]).failure == (
        "answer not in context sentences"
    )
    assert _q("u", [], [], answer="Paris", mode="quoted").failure == "answered (quoted)"
    assert _q("v", [], [], refused=True).failure is None


def test_refusal_curve_starts_at_the_operating_point_and_trades_precision() -> None:
    from evals.runner import QuestionResult, refusal_curve

    def q(gold: list[str], refused: bool, confidence: float | None) -> QuestionResult:
        return QuestionResult("q", "?", gold, [], refused=refused, confidence=confidence)

    results = [
        q([], True, None),  # refused, rightly
        q([], False, 0.2),  # answered with low confidence, should refuse
        q(["x"], False, 0.9),  # answered, confidently
        q(["x"], False, 0.5),
    ]
    curve = refusal_curve(results)
    assert curve[0][1:] == (1.0, 0.5)  # what the pipeline did
    at_half = next(p for p in curve if p[0] == 0.5)  # refuse below 0.5: catches the 0.2 one
    assert at_half[1:] == (1.0, 1.0)
    assert curve[-1][1] == 0.5  # refusing everything: half were answerable
