"""RobustMAD's results tables: accuracy per robustness category and difficulty, open answers' judged scores."""

from __future__ import annotations

from harness.results.tables import SHORT, answered, cell, no_answers, table_lines, table_title, usage_lines
from harness.schema import SUBTASKS, RunSpec, RunSummary


ROBUSTMAD_COLUMNS = ("all", "general", "domain")


def robustmad_table(summary: RunSummary, spec: RunSpec) -> str:
    """RobustMAD: accuracy (%) per robustness category, overall and per difficulty, as its scripts
    report them; beside it the model's published row on the same release, and yours − published
    with the 95% interval your run's size allows."""
    from harness.tasks.robustmad.scoring import difference_cells

    empty = no_answers(summary, spec, "questions")
    if empty:
        return empty
    metrics = summary.metrics
    rows = {category: {"all": 100 * row["accuracy"], **{d: 100 * c["accuracy"] for d, c in row["by_difficulty"].items()}} for category, row in metrics["categories"].items()}
    published = {f"published {category}": {d: 100 * v for d, v in cells.items()} for category, cells in (metrics.get("published") or {}).items()}
    lines = table_lines(table_title(summary, spec, "RobustMAD accuracy % (a failed or unparsable answer is wrong)"), rows, list(ROBUSTMAD_COLUMNS), published or None)
    overall = metrics.get("overall")
    lines.append(f"{summary.n_samples}/{summary.n_questions} questions answered" + (f"; overall {100 * overall:.1f}%" if overall is not None else "")
                 + f"; protocol {spec.protocol}" + (f"; release {metrics['release']}" if metrics.get("release") else "; not a published release: no published row beside it"))
    for category, (difference, low, high) in difference_cells(summary).items():
        lines.append(f"{category}: yours − published {100 * difference:+.1f} points (95% interval {100 * low:+.1f} to {100 * high:+.1f})")
    lines += usage_lines(summary)
    return "\n".join(lines)


OPEN_COLUMNS = ("overall", "accuracy", "complete", "relevance", "style", "accurate %")


def open_table(summary: RunSummary, spec: RunSpec) -> str:
    """RobustMAD open answers: the judge's mean scores (1-5) per category, with its name, apart
    from exact accuracy (a judge's opinion moves with the judge)."""
    empty = no_answers(summary, spec, "questions")
    if empty:
        return empty
    metrics = summary.metrics
    order = ("overall_score", "technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity")
    rows = {category: {**dict(zip(OPEN_COLUMNS, (row["scores"][k] for k in order))), "accurate %": 100 * row["accurate"] / row["judged"]}
            for category, row in metrics.get("categories", {}).items()}
    published = {f"published {category}": dict(zip(OPEN_COLUMNS, (cells["all"][k] for k in order))) for category, cells in (metrics.get("published") or {}).items() if "all" in cells}
    lines = table_lines(table_title(summary, spec, f"RobustMAD open answers judged by {metrics.get('judge')} (scores 1-5; not exact)"), rows, list(OPEN_COLUMNS), published or None)
    overall = metrics.get("overall")
    lines.append(f"{metrics.get('judged', 0)}/{metrics.get('answers', 0)} answers judged" + (f"; mean overall score {overall:.2f}" if overall is not None else "")
                 + f"; {metrics.get('unparsable_verdicts', 0)} verdicts not JSON, {metrics.get('judge_errors', 0)} judge calls failed"
                 + (" (asked again by iadbench eval --resume RUN --retry-errors)" if metrics.get("judge_errors") else ""))
    from harness.tasks.robustmad.scoring import open_differences

    for category, (difference, low, high) in open_differences(summary).items():
        lines.append(f"{category}: overall yours − published {difference:+.2f} (95% interval {low:+.2f} to {high:+.2f})")
    if metrics.get("published_note"):
        lines.append(metrics["published_note"])
    usage = metrics.get("judge_usage") or {}
    cost = metrics.get("judge_cost_usd")
    lines.append(f"judge: {usage.get('prompt_tokens', 0):,} prompt + {usage.get('completion_tokens', 0):,} completion tokens; cost "
                 + ("unknown" if cost is None else f"${cost:.4f}") + f"; {metrics.get('judge_cached', 0)} from cache")
    lines += usage_lines(summary)
    return "\n".join(lines)
