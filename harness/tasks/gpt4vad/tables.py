"""GPT-4V-AD's results table: image and pixel metrics per category and their mean."""

from __future__ import annotations

from harness.results.tables import SHORT, answered, cell, no_answers, table_lines, table_title, usage_lines
from harness.schema import SUBTASKS, RunSpec, RunSummary


AD_COLUMNS = (
    ("image_auroc", "I-AUROC"),
    ("image_ap", "I-AP"),
    ("image_f1_max", "I-F1max"),
    ("pixel_auroc", "P-AUROC"),
    ("pixel_ap", "P-AP"),
    ("pixel_f1_max", "P-F1max"),
    ("pixel_aupro", "AUPRO"),
)


def ad_table(summary: RunSummary, spec: RunSpec) -> str:
    """GPT-4V-AD runs: image and pixel metrics (%) per category and their mean."""
    empty = no_answers(summary, spec, "images")
    if empty:
        return empty
    metrics = summary.ad_metrics
    rows = dict(metrics.get("per_category", {})) | {"mean": metrics.get("mean", {})}
    width = max([len(r) for r in rows] + [10])
    header = f"{'':<{width}}  " + "  ".join(f"{title:>7}" for _, title in AD_COLUMNS)
    definitions = "ADer's evaluator (image score: pooled map maximum)" if str(metrics.get("definitions", "")).startswith("ader") else "MVTec definitions, image score as stated"
    lines = [table_title(summary, spec, f"GPT-4V-AD, maps by Text2Segmentation, {definitions} (%)"), header, "-" * len(header)]
    for name, row in rows.items():
        cells = [row.get(key) for key, _ in AD_COLUMNS]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell(None if v is None or v != v else 100 * v):>7}" for v in cells))
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    lines.append(f"{summary.n_samples}/{summary.n_questions} images answered; reply status: {statuses}")
    ader = str(metrics.get("definitions", "")).startswith("ader")
    seven = metrics.get("mean", {}).get("mad" if ader else "mean7")
    if seven is not None and seven == seven:
        lines.append(("mAD (ADer's definition)" if ader else "mean of the seven (MVTec definitions; not ADer's mAD: --metrics ader)") + f": {100 * seven:.1f}")
    lines += [f"note: {note}" for note in metrics.get("notes", [])]
    lines += usage_lines(summary)
    return "\n".join(lines)
