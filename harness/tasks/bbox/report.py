"""The box kind's part of a report: per-category tables, the runs side by side, the worst-localised images."""

from __future__ import annotations

import json

from harness.report.rundata import RunData
from harness.report.stats import finite as _finite
from harness.tasks.bbox.tables import BOX_COLUMNS


def box_sections(runs: list[RunData]) -> list[dict]:
    sections = []
    for run in runs:  # the box runs of a report (harness/tasks/bbox/kind.py hands them over)
        metrics = run.summary.box_metrics
        rows = {**metrics.get("per_category", {}), "overall": metrics.get("overall", {})}
        sections.append({
            "label": run.label,
            "answered": bool(run.summary.n_samples - run.summary.status_counts.get("error", 0)),
            "format": run.spec.box_format,
            "columns": [title for _, title in BOX_COLUMNS],
            "rows": [{"name": name, "cells": [_finite(row.get(key)) for key, _ in BOX_COLUMNS], "images": row.get("images", 0)} for name, row in rows.items()],
        })
    return sections


def box_comparison(runs: list[RunData]) -> list[dict]:
    """The box runs of a report side by side: each run's overall row (a plain table, "tables")."""
    if len(runs) < 2:
        return []
    rows = [{"name": run.label, "published": False, "cells": [_finite(run.summary.box_metrics.get("overall", {}).get(key)) for key, _ in BOX_COLUMNS]} for run in runs]
    return [{"title": "Defect boxes", "label": "all runs", "unit": "overall, %", "first_column": "run", "columns": [title for _, title in BOX_COLUMNS],
             "rows": rows, "notes": ["Each run's overall row; its per-category table follows below."]}]


def box_gallery(run: RunData, limit: int, skip_declined: bool = False) -> dict:
    """The images a box run got most wrong: lowest image IoU first, then boxes drawn on normal
    images; each with true (green) and predicted (red) boxes drawn."""
    from harness.report.media import run_file_thumbnail
    from harness.storage.runfiles import open_inside

    with open_inside(run.path, "samples.jsonl", "r") as handle:
        samples = [json.loads(line) for line in handle]
    badness = lambda s: (1.0 - s["image_iou"]) if s["image_iou"] is not None else (1.0 if s["boxes"] else 0.0)  # noqa: E731
    shown = []
    for sample in sorted(samples, key=badness, reverse=True)[:limit]:
        if badness(sample) <= 0:
            break
        overlay = run_file_thumbnail(run.path, sample.get("overlay_path"))
        shown.append({**{k: sample[k] for k in ("question_id", "category", "label", "reply", "image_iou", "parse_status", "parse_reason")},
                      "boxes": len(sample["boxes"]), "truth": len(sample["truth"]), "overlay": overlay})
    return {"run": run.label, "layout": "boxes", "items": shown}
