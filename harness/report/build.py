"""Assembling a comparison report from run folders: one data structure, several renderers."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import datetime, timezone

import numpy as np
from PIL import Image

from harness.report import charts
from harness.report.published import PAPER_ROWS, gpt4vad_references, published_rows
from harness.report.reference import comparison_lines
from harness.runlog import RunFolder
from harness.report.runs import RunData
from harness.report.sections import box_gallery, box_sections, robustness_sections
from harness.report.media import THUMBNAIL, thumbnail as _thumbnail
from harness.report.stats import COLUMNS, bootstrap_intervals, finite as _finite, paired_comparison
from harness.schema import SUBTASKS



def _plain(text: str) -> str:
    """Chart labels: matplotlib copies label text into SVG comments, which are inserted unescaped."""
    return re.sub(r"[<>&\-]", " ", text)


def run_key(run: RunData) -> str:
    """A run's identity in a report: its folder (two folders can carry the same run id)."""
    return str(run.path.resolve())


def _run_info(run: RunData) -> dict:
    summary = run.summary
    wall = summary.wall_time_s
    return {
        "id": run.spec.run_id,
        "label": run.label,
        "model": run.spec.model,
        "suite": run.spec.suite,
        "task": run.spec.task,
        "data": run.spec.data,
        "shots": run.spec.shots,
        "templates": run.spec.templates,
        "choice_scoring": run.spec.choice_scoring,
        "protocol": run.spec.protocol,
        "parser": "strict (iadbench)" if run.spec.protocol == "harmonised" else f"the {run.spec.protocol} script's parser (official scorer), strict beside it",
        "headline": "official MMAD scorer" if run.summary.scoring == "mmad-compat" else "strict",
        "release": run.spec.data_release or "not a known release",
        "differences": run.spec.protocol_differences,
        "date": run.spec.created_at[:10],
        "questions": summary.n_questions,
        "answered": summary.n_samples,
        "status": summary.status_counts,
        "wall_time_s": wall,
        "questions_per_s": summary.n_samples / wall if wall else None,
        "prompt_tokens": summary.usage.prompt_tokens,
        "completion_tokens": summary.usage.completion_tokens,
        "cost_usd": summary.cost_usd,
        "errors": summary.error_counts,
    }


def _leaderboard(runs: list[RunData], intervals: dict[str, dict], published: str) -> dict:
    rows = []
    for run in runs:
        strict = run.summary.strict["accuracy"]["Average"]
        ci = intervals[run_key(run)].get("Average", {})
        cells = [{"value": _finite(strict.get(column)), "low": ci.get(column, (None, None))[0], "high": ci.get(column, (None, None))[1]} for column in COLUMNS]
        rows.append({"label": run.label, "kind": "run", "run_id": run.spec.run_id, "data": run.spec.data, "date": run.spec.created_at[:10], "cells": cells})
    # MMAD's published rows answer MMAD's official release, not any mmad.json (a generated set)
    on_mmad = any(run.spec.data_release is not None and "official" in run.spec.data_release for run in runs)
    if published == "always" or (published == "auto" and on_mmad):
        for row in published_rows():
            cells = [{"value": row.averages.get(column), "low": None, "high": None} for column in COLUMNS]
            rows.append({"label": f"{row.model} ({row.shots}-shot)", "kind": "published", "run_id": None, "data": "MMAD (published)", "date": "", "cells": cells})
        for name, average in PAPER_ROWS.items():
            cells = [{"value": None, "low": None, "high": None} for _ in COLUMNS[:-1]] + [{"value": average, "low": None, "high": None}]
            rows.append({"label": name, "kind": "paper", "run_id": None, "data": "MMAD paper", "date": "", "cells": cells})
    rows.sort(key=lambda row: -(row["cells"][-1]["value"] if row["cells"][-1]["value"] is not None else -1))
    return {"columns": COLUMNS, "rows": rows, "published_shown": any(r["kind"] != "run" for r in rows)}


def category_grid(by_category: dict[str, dict]) -> tuple[list[str], np.ndarray]:
    """Categories × subtasks accuracy for the heatmap: NaN only where a category has no questions
    of a subtask; 0% stays 0 (a score, not a gap)."""
    categories = sorted(by_category)
    cell = lambda value: np.nan if value is None else value  # noqa: E731
    return categories, np.array([[cell(_finite(by_category[c].get(s.value))) for s in SUBTASKS] for c in categories], dtype=float)


def _dataset_tables(run: RunData, intervals: dict) -> list[dict]:
    table = []
    for dataset, row in run.summary.strict["accuracy"].items():
        ci = intervals.get(dataset, {})
        chance = run.summary.strict["chance"].get(dataset, {})
        table.append({
            "dataset": dataset,
            "cells": [{"value": _finite(row.get(c)), "low": ci.get(c, (None, None))[0], "high": ci.get(c, (None, None))[1], "chance": _finite(chance.get(c))} for c in COLUMNS],
        })
    return table


def _round_robin(candidates: list[dict], key) -> list[dict]:
    """The candidates reordered so that consecutive items come from different groups."""
    groups: dict[str, list[dict]] = {}
    for item in candidates:
        groups.setdefault(key(item), []).append(item)
    ordered, queues = [], [list(v) for _, v in sorted(groups.items())]
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def _stratified(candidates: list[dict], limit: int) -> list[dict]:
    """A small gallery that still shows every subtask, and within each, every category."""
    by_subtask: dict[str, list[dict]] = {}
    for item in candidates:
        by_subtask.setdefault(item["subtask"], []).append(item)
    spread = {subtask: _round_robin(items, lambda s: s["category"]) for subtask, items in by_subtask.items()}
    return _round_robin([item for items in spread.values() for item in items], lambda s: s["subtask"])[:limit]


def mcq_gallery(run: RunData, limit: int) -> dict:
    """Wrong answers of a run, sampled across subtasks and categories, with images from its data."""
    from harness.sources import resolve_data

    from harness.errors import ConfigError
    from harness.files import file_sha256

    data = resolve_data(run.spec.data, run.spec.data_root)
    if run.spec.data_digest and data.json_path.is_file() and file_sha256(data.json_path) != run.spec.data_digest:
        raise ConfigError(f"{data.json_path} is not the question file run {run.path} used (sha256 differs from its spec.json); point --data/IADBENCH_MMAD at that file")
    records = json.loads(data.json_path.read_text(encoding="utf-8"))
    wrong = []
    with (run.path / "samples.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            sample = json.loads(line)
            if not sample["correct"]:
                wrong.append(sample)
    chosen = _stratified(wrong, limit)
    items = []
    for sample in chosen:
        record = records.get(sample["image_id"], {})
        dataset, category = sample["image_id"].split("/")[:2]
        mask = record.get("mask_path")
        masks = [data.root / dataset / category / mask] if mask else []
        templates = (record.get(f"{run.spec.templates}_templates") or [])[: max(run.spec.shots, 1)]
        items.append({
            **{k: sample[k] for k in ("question_id", "subtask", "category", "question", "options", "answer", "reply", "parsed", "parse_status", "parse_reason")},
            "query": _thumbnail(data.root / sample["image_id"], masks),
            "template": _thumbnail(data.root / templates[0]) if templates else None,
            "link": str(data.root / sample["image_id"]),
        })
    return {"run": run.label, "kind": "mcq", "wrong": len(wrong), "items": items}


def gpt4vad_gallery(run: RunData, limit: int) -> dict:
    """The images a GPT-4V-AD run got most wrong: overlay, predicted map and the ground truth."""
    from harness.tasks.gpt4vad import load_region_items

    items_by_id = {item.id: item for item in load_region_items(run.spec.data, run.spec.seed)[0]}
    samples = [json.loads(line) for line in (run.path / "samples.jsonl").open(encoding="utf-8")]
    error = lambda s: abs((1.0 if s["label"] == "anomaly" else 0.0) - (s["image_score"] or 0.0))  # noqa: E731
    shown = []
    for sample in sorted(samples, key=error, reverse=True)[:limit]:
        item = items_by_id.get(sample["question_id"])
        map_thumb = None
        if sample.get("map_path"):
            with Image.open(run.path / sample["map_path"]) as stored:
                scores = np.asarray(stored, dtype=np.float32) / 65535
            heat = Image.fromarray((np.stack([scores, np.zeros_like(scores), 1 - scores], -1) * 255).astype(np.uint8))
            heat.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            heat.save(buffer, format="PNG")
            map_thumb = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        shown.append({
            **{k: sample[k] for k in ("question_id", "category", "label", "reply", "image_score", "parse_status", "parse_reason")},
            "overlay": _thumbnail(run.path / sample["overlay_path"]),
            "map": map_thumb,
            "truth": _thumbnail(item.image_path, list(item.mask_paths)) if item else None,
        })
    return {"run": run.label, "kind": "gpt4vad", "items": shown}


def _gpt4vad_sections(runs: list[RunData]) -> list[dict]:
    from harness.tables import AD_COLUMNS

    sections = []
    for run in runs:
        if run.spec.task != "gpt4vad":
            continue
        metrics = run.summary.ad_metrics
        rows = [{"name": name, "cells": [_finite(row.get(key)) for key, _ in AD_COLUMNS]} for name, row in {**metrics.get("per_category", {}), "mean": metrics.get("mean", {})}.items()]
        references = [
            {"name": f"{ref['name']} — {ref['source']}", "cells": [None if ref.get(key) is None else ref[key] / 100 for key, _ in AD_COLUMNS]}
            for ref in gpt4vad_references(run.spec.data)
        ]
        definitions = {"ader": "ADer's evaluator", "ader-adeval": "ADer's evaluator with ADEval's 50-strip pixel metrics"}.get(metrics.get("definitions", "exact"), "MVTec definitions")
        sections.append({"label": run.label, "columns": [title for _, title in AD_COLUMNS], "rows": rows, "references": references, "definitions": definitions, "notes": metrics.get("notes", [])})
    return sections


def _curves(runs: list[RunData]) -> dict[str, str]:
    """ROC and PRO curves of GPT-4V-AD runs, from their saved maps (all categories pooled)."""
    from harness.metrics.ad import PixelAccumulator
    from harness.schema import RegionSample
    from harness.tasks.gpt4vad import _maps_and_masks, load_region_items

    roc, pro = {}, {}
    for run in runs:
        if run.spec.task != "gpt4vad":
            continue
        samples = [json.loads(line) for line in (run.path / "samples.jsonl").open(encoding="utf-8")]
        by_id = {s["question_id"]: RegionSample.model_validate(s) for s in samples}
        items = [i for i in load_region_items(run.spec.data, run.spec.seed)[0] if i.id in by_id]
        accumulator = PixelAccumulator(bins=1000)
        for anomaly_map, mask in _maps_and_masks(run.path, by_id, items):
            accumulator.add(anomaly_map, mask)
        counts = accumulator.counts()
        if counts.positives and counts.negatives:
            fpr = np.concatenate(([0], counts.false_positives / counts.negatives))
            roc[_plain(run.label)] = (fpr, np.concatenate(([0], counts.true_positives / counts.positives)))
            pro[_plain(run.label)] = (fpr, np.concatenate(([0], counts.region_overlap / max(counts.regions, 1))))
    if not roc:
        return {}
    return {
        "roc": charts.curves(roc, "false positive rate (pixels)", "true positive rate (pixels)"),
        "pro": charts.curves(pro, "false positive rate (pixels)", "per-region overlap", x_limit=0.3),
    }


def build_report(runs: list[RunData], *, published: str = "auto", gallery_run: int = 0, gallery_size: int = 60) -> dict:
    mcq = [run for run in runs if run.spec.task == "mcq"]
    intervals = {run_key(run): bootstrap_intervals(run) for run in mcq}
    report: dict = {
        "title": "iadbench report",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [_run_info(run) for run in runs],
        "leaderboard": _leaderboard(mcq, intervals, published) if mcq else None,
        "datasets": [{"label": run.label, "rows": _dataset_tables(run, intervals[run_key(run)])} for run in mcq],
        "pairs": [comparison for i, a in enumerate(mcq) for b in mcq[i + 1 :] if (comparison := paired_comparison(a, b))],
        "gpt4vad": _gpt4vad_sections(runs),
        "boxes": box_sections(runs),
        "robustness": robustness_sections(mcq, intervals),
        "charts": {},
        "image_metrics": [{"label": run.label, **run.summary.image_metrics} for run in mcq],
        "references": [{"label": run.label, "lines": comparison_lines(run.spec, run.summary, RunFolder(run.path))} for run in mcq],
    }
    charted = [run for run in mcq if run.summary.n_samples]  # a run with no answers yet has nothing to draw
    if charted:
        series = {_plain(run.label): [_finite(run.summary.strict["accuracy"]["Average"].get(s.value)) for s in SUBTASKS] for run in charted}
        report["charts"]["radar"] = charts.radar(series)
        datasets = sorted({d for run in charted for d in run.summary.strict["accuracy"] if d != "Average"})
        report["charts"]["bars"] = charts.grouped_bars(datasets, {_plain(run.label): [_finite(run.summary.strict["accuracy"].get(d, {}).get("Average")) for d in datasets] for run in charted})
        first = charted[min(gallery_run, len(charted) - 1)]
        categories, grid = category_grid(first.summary.strict["by_category"])
        report["charts"]["heatmap"] = charts.heatmap(categories, grid, _plain(f"{first.label}: accuracy % by category"))
        report["charts"]["confusion"] = charts.overkill_miss({
            _plain(run.label if len(run.summary.strict["detection"]) == 1 else f"{run.label} {d}"): (
                _finite(run.summary.strict["detection"][d]["Overkill"]) or 0.0,
                _finite(run.summary.strict["detection"][d]["Miss"]) or 0.0,
            )
            for run in charted
            for d in run.summary.strict["detection"]
        })
    report["charts"] |= _curves(runs)
    if runs:
        chosen = runs[min(gallery_run, len(runs) - 1)]
        galleries = {"mcq": mcq_gallery, "gpt4vad": gpt4vad_gallery, "bbox": box_gallery}
        report["gallery"] = galleries[chosen.spec.task](chosen, gallery_size)
    return report
