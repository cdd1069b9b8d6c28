"""The box kind's results table: mIoU, ACC@IoU, box precision/recall and detection per category."""

from __future__ import annotations

from harness.results.tables import SHORT, answered, cell, no_answers, table_lines, table_title, usage_lines
from harness.schema import SUBTASKS, RunSpec, RunSummary


BOX_COLUMNS = [("mIoU", "mIoU"), ("ACC@0.3", "ACC@.3"), ("ACC@0.5", "ACC@.5"), ("box_precision@0.5", "P@.5"), ("box_recall@0.5", "R@.5"), ("detection_balanced_accuracy", "DetBAcc")]


def box_table(summary: RunSummary, spec: RunSpec) -> str:
    """Box localisation figures (%) per category and overall (harness/metrics/boxes.py)."""
    empty = no_answers(summary, spec, "images")
    if empty:
        return empty
    metrics = summary.box_metrics
    rows = {**metrics.get("per_category", {}), "overall": metrics.get("overall", {})}
    width = max([len(name) for name in rows] + [8])
    header = f"{'':<{width}}  " + "  ".join(f"{title:>7}" for _, title in BOX_COLUMNS) + "   images"
    lines = [table_title(summary, spec, "defect boxes (%; mIoU and ACC over anomalous images)"), header, "-" * len(header)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell(row.get(key)):>7}" for key, _ in BOX_COLUMNS) + f"  {row.get('images', 0):>7}")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    lines.append(f"{summary.n_samples}/{summary.n_questions} images answered; reply status: {statuses}")
    if summary.error_counts:
        lines.append("failed samples by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items())))
    return "\n".join(lines + usage_lines(summary))
