"""Multiple choice's results tables: strict accuracy per dataset and subtask, or the official MMAD scorer's."""

from __future__ import annotations

from harness.results.tables import SHORT, answered, cell, no_answers, table_lines, table_title, usage_lines
from harness.schema import SUBTASKS, RunSpec, RunSummary
from harness.metrics.headline import headline


def official_table(summary: RunSummary, spec: RunSpec) -> list[str]:
    """The official MMAD scorer's table (its rows and columns as its CSV has them)."""
    compat = summary.mmad_compat
    rows = {r: compat["values"][r] for r in compat["rows"]}
    lines = table_lines(table_title(summary, spec, "accuracy %, official MMAD scorer"), rows, [s.value for s in SUBTASKS] + ["Average"])
    lines.append(f"records removed (answer not A-E): {compat['removed']}, skipped after a removal: {compat['skipped']}")
    return lines


def mcq_table(summary: RunSummary, spec: RunSpec) -> str:
    """Accuracy (%) per dataset and subtask, the average, and the chance level beside it, headed by
    the run's headline scoring (harness/metrics/headline.py)."""
    empty = no_answers(summary, spec, "questions")
    if empty:
        return empty
    columns = [s.value for s in SUBTASKS] + ["Average"]
    if headline(spec, summary).mode == "mmad-compat":
        lines = official_table(summary, spec)
    else:
        strict = summary.strict
        chance = {"chance": strict["chance"]["Average"]}
        lines = table_lines(table_title(summary, spec, "accuracy % (strict: unanswered = wrong)"), strict["accuracy"], columns, chance)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    lines.append(f"{summary.n_samples}/{summary.n_questions} questions answered; answer status: {statuses}")
    if summary.circular:
        row = summary.circular["accuracy"].get("Average", {})
        lines.append(
            f"circular (right in every rotation of the options, {summary.circular['questions']} questions): "
            + "  ".join(f"{SHORT[c]} {cell(row.get(c)).strip()}" for c in columns)
        )
    image = summary.image_metrics
    if image.get("mean"):
        mean = image["mean"]
        lines.append(
            f"image-level (detection scores, mean of {len(image['per_category'])} categories): AUROC {100 * mean['image_auroc']:.1f}, "
            f"AP {100 * mean['image_ap']:.1f}, F1-max {100 * mean['image_f1_max']:.1f}"
        )
    if summary.error_counts:
        lines.append("failed samples by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items())))
    lines += usage_lines(summary)
    if summary.skipped_records:
        lines.append(f"{len(summary.skipped_records)} bad records skipped (--skip-bad); listed in summary.json")
    return "\n".join(lines)
