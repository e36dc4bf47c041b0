"""The human-readable side of an evaluation: a Markdown report with plots, and console tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.runner import RETRIEVAL_K, RunResult, recall_curve, refusal_curve

__all__ = ["METRIC_KEYS", "format_table", "metrics_json", "write_report"]

METRIC_KEYS = (
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
)


def metrics_json(runs: Sequence[RunResult]) -> Any:
    """One object with the issue's keys for a single configuration; a list of such objects, each
    also naming its `retriever` and `answerer`, for an ablation."""
    if len(runs) == 1:
        return _rounded(runs[0].metrics)
    return [
        {"retriever": r.config.retriever, "answerer": r.config.answerer, **_rounded(r.metrics)}
        for r in runs
    ]


def format_table(runs: Sequence[RunResult]) -> str:
    """Metrics side by side, one row per configuration (Markdown, readable in a terminal)."""
    extra = ["contains_exact_fit"] if "contains_exact_fit" in runs[0].metrics else []
    keys = [*METRIC_KEYS, *extra]
    header = ["config", *keys, "p50 ms", "p95 ms", "n"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in runs:
        total = r.metrics["latency_ms"].get("total", {})
        row = [
            r.config.label,
            *(_fmt(r.metrics.get(k)) for k in keys),
            _fmt(total.get("p50"), 0),
            _fmt(total.get("p95"), 0),
            str(r.metrics["n_questions"]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_report(
    runs: Sequence[RunResult], out_dir: str | Path, *, title: str, notes: Sequence[str] = ()
) -> Path:
    """Write `report.md`, `results.json` (every per-question record) and the PNG plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _plot_recall(runs, out / "recall_at_k.png")
    _plot_latency(runs, out / "latency.png")
    has_pr = _plot_refusal(runs, out / "refusal_pr.png")
    (out / "results.json").write_text(
        json.dumps(
            [
                {
                    "retriever": r.config.retriever,
                    "answerer": r.config.answerer,
                    "wall_s": round(r.wall_s, 1),
                    "metrics": _rounded(r.metrics),
                    "questions": [q.to_dict() for q in r.questions],
                }
                for r in runs
            ],
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    md = [f"# Evaluation: {title}", ""]
    md += [f"- {n}" for n in notes]
    md += [
        f"- {r.config.label}: {r.metrics['n_questions']} questions in {r.wall_s:.1f} s"
        for r in runs
    ]
    md += ["", "## Metrics", "", format_table(runs), ""]
    md += ["![recall@k](recall_at_k.png)", "", "![latency](latency.png)", ""]
    if has_pr:
        md += ["![refusal precision-recall](refusal_pr.png)", ""]
    md += ["## Latency per stage (ms)", "", _latency_table(runs), ""]
    by_type = _by_type_table(runs)
    if by_type:
        md += [
            "## `contains` by question type (answerable) / refusal rate (unanswerable)",
            "",
            by_type,
            "",
        ]
    md += ["## Where the gold answer is lost (answerable questions)", "", _funnel_table(runs), ""]
    md += ["## Failures by kind", "", _failure_table(runs), ""]
    for r in runs:
        md += [f"## Per question: {r.config.label}", "", _question_table(r), ""]
    path = out / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return path


# ---- pieces ------------------------------------------------------------------------------


def _latency_table(runs: Sequence[RunResult]) -> str:
    stages = list(dict.fromkeys(s for r in runs for s in r.metrics["latency_ms"]))
    lines = [
        "| config | " + " | ".join(f"{s} p50 / p95" for s in stages) + " |",
        "|" + "---|" * (len(stages) + 1),
    ]
    for r in runs:
        lat = r.metrics["latency_ms"]
        cells = [
            f"{_fmt(lat[s]['p50'], 0)} / {_fmt(lat[s]['p95'], 0)}" if s in lat else "–"
            for s in stages
        ]
        lines.append(f"| {r.config.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_type_table(runs: Sequence[RunResult]) -> str:
    types = list(dict.fromkeys(q.qtype for r in runs for q in r.questions if q.qtype))
    if not types:
        return ""
    lines = ["| config | " + " | ".join(types) + " |", "|" + "---|" * (len(types) + 1)]
    for r in runs:
        cells = []
        for t in types:
            qs = [q for q in r.questions if q.qtype == t]
            ans = [q for q in qs if q.answerable]
            una = [q for q in qs if not q.answerable]
            parts = []
            if ans:
                parts.append(f"{sum(int(q.contains or 0) for q in ans)}/{len(ans)} found")
            if una:
                parts.append(f"{sum(q.refused for q in una)}/{len(una)} refused")
            cells.append(", ".join(parts))
        lines.append(f"| {r.config.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _funnel_table(runs: Sequence[RunResult]) -> str:
    """Questions whose gold answer is still there after each stage (`evals.runner.FUNNEL`)."""
    from evals.runner import FUNNEL

    names = {
        "chunks": "in the retrieved chunks",
        "sentences": "in the sentences candidates come from",
        "candidates": "among the five best candidates",
        "top3": "in the top 3",
        "top1": "the top candidate",
    }
    lines = ["| stage | " + " | ".join(r.config.label for r in runs) + " |"]
    lines.append("|" + "---|" * (len(runs) + 1))
    lines.append(
        "| answerable questions | "
        + " | ".join(str(r.metrics["funnel"]["questions"]) for r in runs)
        + " |"
    )
    for stage in FUNNEL:
        cells = [str(r.metrics["funnel"][stage]) for r in runs]
        lines.append(f"| {names[stage]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _failure_table(runs: Sequence[RunResult]) -> str:
    kinds = list(dict.fromkeys(q.failure for r in runs for q in r.questions if q.failure))
    if not kinds:
        return "No failures."
    lines = [
        "| failure | " + " | ".join(r.config.label for r in runs) + " |",
        "|" + "---|" * (len(runs) + 1),
    ]
    for kind in kinds:
        counts = [str(sum(q.failure == kind for q in r.questions)) for r in runs]
        lines.append(f"| {kind} | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def _question_table(run: RunResult) -> str:
    lines = ["| id | question | gold | answer | citations | verdict |", "|---|---|---|---|---|---|"]
    for q in run.questions:
        gold = "; ".join(q.gold[:3]) + (" …" if len(q.gold) > 3 else "") if q.gold else "(refuse)"
        cites = "<br>".join(f"`{c['doc_id']}` {_cell(_short(c['text'], 90))}" for c in q.citations)
        lines.append(
            f"| {q.id} | {_cell(q.question)} | {_cell(gold)} | {_cell(_short(q.answer, 200))} "
            f"| {cites or '–'} | {q.verdict} |"
        )
    return "\n".join(lines)


def _plot_recall(runs: Sequence[RunResult], path: Path) -> None:
    plt = _pyplot()
    ks = list(range(1, RETRIEVAL_K + 1))
    fig, ax = plt.subplots(figsize=(6, 4))
    seen: set[str] = set()
    for r in runs:  # retrieval depends on the retriever only: one curve each
        if r.config.retriever in seen:
            continue
        seen.add(r.config.retriever)
        curve = recall_curve(r.questions, ks)
        if all(v is None for v in curve):
            continue
        ax.plot(ks, [v or 0.0 for v in curve], marker="o", label=r.config.retriever)
    ax.set(
        xlabel="k (distinct documents)",
        ylabel="recall@k",
        ylim=(0, 1.02),
        xticks=ks,
        title="Document recall@k",
    )
    ax.grid(alpha=0.3)
    if seen:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_latency(runs: Sequence[RunResult], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        values = [q.timings["total"] / 1000 for q in r.questions if "total" in q.timings]
        if values:
            ax.hist(values, bins=20, alpha=0.5, label=r.config.label)
    ax.set(xlabel="seconds per question (total)", ylabel="questions", title="Latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_refusal(runs: Sequence[RunResult], path: Path) -> bool:
    """Refusal precision against recall as the confidence bar rises; the dot is the
    operating point (what the pipeline did). Only for sets with unanswerable questions."""
    curves = [(r, refusal_curve(r.questions)) for r in runs]
    curves = [(r, c) for r, c in curves if c]
    if not curves:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, curve in curves:
        line = ax.plot([p[2] for p in curve], [p[1] for p in curve], label=r.config.label)
        ax.plot([curve[0][2]], [curve[0][1]], "o", color=line[0].get_color())
    ax.set(
        xlabel="refusal recall",
        ylabel="refusal precision",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        title="Refusal as the confidence bar rises (dot: operating point)",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
