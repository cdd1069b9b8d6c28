"""Report sections for box localisation runs and for degradation sweeps (robustness)."""

from __future__ import annotations

import json
from collections import defaultdict
from harness.report import charts
from harness.report.runs import RunData
from harness.report.media import thumbnail
from harness.report.stats import COLUMNS, finite as _finite
from harness.sources import data_label
from harness.tables import BOX_COLUMNS


def box_sections(runs: list[RunData]) -> list[dict]:
    sections = []
    for run in runs:
        if run.spec.task != "bbox":
            continue
        metrics = run.summary.box_metrics
        rows = {**metrics.get("per_category", {}), "overall": metrics.get("overall", {})}
        sections.append({
            "label": run.label,
            "format": run.spec.box_format,
            "columns": [title for _, title in BOX_COLUMNS],
            "rows": [{"name": name, "cells": [_finite(row.get(key)) for key, _ in BOX_COLUMNS], "images": row.get("images", 0)} for name, row in rows.items()],
        })
    return sections


def box_gallery(run: RunData, limit: int) -> dict:
    """The images a box run got most wrong: lowest image IoU first, then boxes drawn on normal
    images; each with true (green) and predicted (red) boxes drawn."""
    samples = [json.loads(line) for line in (run.path / "samples.jsonl").open(encoding="utf-8")]
    badness = lambda s: (1.0 - s["image_iou"]) if s["image_iou"] is not None else (1.0 if s["boxes"] else 0.0)  # noqa: E731
    shown = []
    for sample in sorted(samples, key=badness, reverse=True)[:limit]:
        if badness(sample) <= 0:
            break
        overlay = thumbnail(run.path / sample["overlay_path"]) if sample.get("overlay_path") else None
        shown.append({**{k: sample[k] for k in ("question_id", "category", "label", "reply", "image_iou", "parse_status", "parse_reason")},
                      "boxes": len(sample["boxes"]), "truth": len(sample["truth"]), "overlay": overlay})
    return {"run": run.label, "kind": "bbox", "items": shown}


def _perturbation(run: RunData) -> tuple[str, int] | None:
    """(kind, severity) of a run with one degradation; ("", 0) for an undegraded run."""
    if not run.spec.perturb:
        return ("", 0)
    if len(run.spec.perturb) != 1:
        return None
    kind, _, severity = run.spec.perturb[0].partition(":")
    return kind, int(severity)


def robustness_sections(runs: list[RunData], intervals: dict[str, dict]) -> list[dict]:
    """Accuracy against severity, per degradation kind and subtask, with 95% bootstrap intervals,
    for runs of one model on one data set with one set of strategies (an `ablate --perturb-sweep`
    folder, or runs given together). Severity 0 is the undegraded run."""
    groups: dict[tuple, dict[str, dict[int, RunData]]] = defaultdict(lambda: defaultdict(dict))
    baselines: dict[tuple, RunData] = {}
    for run in runs:
        if run.spec.task != "mcq" or not run.summary.n_samples or (found := _perturbation(run)) is None:
            continue
        setting = (run.spec.model, run.spec.data, tuple(run.spec.strategies), run.spec.seed)
        kind, severity = found
        if kind:
            groups[setting + (run.spec.perturb_templates,)][kind][severity] = run
        else:
            baselines[setting] = run  # undegraded: the severity 0 of sweeps with and without templates degraded
    sections = []
    for key, kinds in groups.items():
        for kind, by_severity in sorted(kinds.items()):
            points = ({0: baselines[key[:4]]} if key[:4] in baselines else {}) | by_severity
            severities = sorted(points)
            series, rows = {}, []
            for column in COLUMNS:
                values, lows, highs = [], [], []
                for severity in severities:
                    run = points[severity]
                    values.append(_finite(run.summary.strict["accuracy"]["Average"].get(column)))
                    low, high = intervals[str(run.path.resolve())].get("Average", {}).get(column, (None, None))
                    lows.append(_finite(low))
                    highs.append(_finite(high))
                if any(v is not None for v in values):
                    series[column] = (values, lows, highs)
            for severity in severities:
                accuracy = points[severity].summary.strict["accuracy"]["Average"]
                rows.append({"severity": severity, "cells": [_finite(accuracy.get(c)) for c in COLUMNS]})
            sections.append({
                "label": f"{key[0]} on {data_label(key[1])}" + (f" with {', '.join(key[2])}" if key[2] else "") + (", templates degraded too" if key[4] else ""),
                "kind": kind,
                "columns": COLUMNS,
                "rows": rows,
                "chart": charts.severity_curves(severities, series, f"{kind}: accuracy % against severity (0 = undegraded)"),
            })
    return sections
