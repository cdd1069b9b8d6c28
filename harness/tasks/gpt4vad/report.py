"""The report's sections for GPT-4V-AD runs: per-category image and pixel metrics beside the
published rows (only for runs on the whole test split), and pooled ROC and PRO curves."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

from harness.report import charts
from harness.report.galleries import gallery_samples
from harness.report.media import THUMBNAIL, run_file, run_file_thumbnail, thumbnail as _thumbnail
from harness.report.published import gpt4vad_coverage, gpt4vad_references
from harness.report.rundata import RunData, run_key
from harness.report.stats import finite as _finite


def gpt4vad_sections(runs: list[RunData], keys: dict[str, str]) -> list[dict]:
    from harness.tasks.gpt4vad.tables import AD_COLUMNS

    sections = []
    for run in runs:
        metrics = run.summary.ad_metrics
        rows = [{"name": name, "cells": [_finite(row.get(key)) for key, _ in AD_COLUMNS]} for name, row in {**metrics.get("per_category", {}), "mean": metrics.get("mean", {})}.items()]
        covered = {c: int((run.category == c).sum()) for c in sorted(set(run.category))}
        comparable, why = gpt4vad_coverage(run.spec.data, covered)
        references = [
            {"name": f"{ref['name']} — {ref['source']}", "cells": [None if ref.get(key) is None else ref[key] / 100 for key, _ in AD_COLUMNS]}
            for ref in gpt4vad_references(run.spec.data)
        ] if comparable else []
        reference_note = "" if comparable or not gpt4vad_references(run.spec.data) else f"Published rows on this dataset are not shown: {why}."
        definitions = {"ader": "ADer's evaluator", "ader-adeval": "ADer's evaluator with ADEval's 50-strip pixel metrics"}.get(metrics.get("definitions", "exact"), "MVTec definitions")
        sections.append({"key": keys[run_key(run)], "label": run.label, "columns": [title for _, title in AD_COLUMNS], "rows": rows, "references": references,
                         "reference_note": reference_note, "definitions": definitions, "answered": bool(run.summary.n_samples - run.summary.status_counts.get("error", 0))})
    return sections


def region_curves(runs: list[RunData]) -> dict[str, str]:
    """ROC and PRO curves of GPT-4V-AD runs, from their saved maps (all categories pooled)."""
    from harness.metrics.ad import PixelAccumulator
    from harness.schema import RegionSample
    from harness.tasks.gpt4vad.task import _maps_and_masks, load_region_items

    roc, pro = {}, {}
    for run in runs:
        from harness.storage.runfiles import open_inside

        with open_inside(run.path, "samples.jsonl", "r") as handle:
            samples = [json.loads(line) for line in handle]
        by_id = {s["question_id"]: RegionSample.model_validate(s) for s in samples}
        items = [i for i in load_region_items(run.spec.data, run.spec.seed)[0] if i.id in by_id]
        accumulator = PixelAccumulator(bins=1000)
        for anomaly_map, mask in _maps_and_masks(run.path, by_id, items):
            accumulator.add(anomaly_map, mask)
        counts = accumulator.counts()
        if counts.positives and counts.negatives:
            fpr = np.concatenate(([0], counts.false_positives / counts.negatives))
            roc[charts.plain_label(run.label)] = (fpr, np.concatenate(([0], counts.true_positives / counts.positives)))
            pro[charts.plain_label(run.label)] = (fpr, np.concatenate(([0], counts.region_overlap / max(counts.regions, 1))))
    if not roc:
        return {}
    return {
        "roc": charts.curves(roc, "false positive rate (pixels)", "true positive rate (pixels)"),
        "pro": charts.curves(pro, "false positive rate (pixels)", "per-region overlap", x_limit=0.3),
    }


def gpt4vad_gallery(run: RunData, limit: int, skip_declined: bool = False) -> dict:
    """The images a GPT-4V-AD run got most wrong: overlay, predicted map and the ground truth."""
    from harness.tasks.gpt4vad.task import load_region_items

    items_by_id = {item.id: item for item in load_region_items(run.spec.data, run.spec.seed)[0]}
    samples = gallery_samples(run, ("question_id", "label", "image_score"))
    error = lambda s: abs((1.0 if s["label"] == "anomaly" else 0.0) - (s["image_score"] or 0.0))  # noqa: E731
    # a failure: a stated score on the wrong side of 0.5, or a reply that could not be read; an
    # image scored right is no failure, however close to its label it came
    failed = [s for s in samples if s["parse_status"] != "ok" or error(s) >= 0.5]
    shown = []
    for sample in sorted(failed, key=error, reverse=True)[:limit]:
        item = items_by_id.get(sample["question_id"])
        map_thumb = None
        map_file = run_file(run.path, sample.get("map_path"))
        if map_file is not None:
            with Image.open(map_file) as stored:
                scores = np.asarray(stored, dtype=np.float32) / 65535
            heat = Image.fromarray((np.stack([scores, np.zeros_like(scores), 1 - scores], -1) * 255).astype(np.uint8))
            heat.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            heat.save(buffer, format="PNG")
            map_thumb = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        shown.append({
            **{k: sample[k] for k in ("question_id", "category", "label", "reply", "image_score", "parse_status", "parse_reason")},
            "overlay": run_file_thumbnail(run.path, sample.get("overlay_path")),
            "map": map_thumb,
            "truth": _thumbnail(item.image_path, list(item.mask_paths)) if item else None,
        })
    return {"run": run.label, "layout": "maps", "items": shown}
