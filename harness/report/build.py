"""Assembling a comparison report from run folders: one data structure, several renderers.

Every run of a report gets a key (run1, run2, …) and a distinct label (harness/report/identity.py)
once; each section takes a run's figures from that run alone and names it by both, so no figure or
note can be attributed to another run, and the renderers look runs up by key, never by label.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from itertools import combinations

import numpy as np

from harness.metrics.headline import headline
from harness.report import charts
from harness.report.galleries import gpt4vad_gallery, mcq_gallery
from harness.report.identity import clean_twin_key, difference_table
from harness.report.published import PAPER_ROWS, gpt4vad_coverage, gpt4vad_references, published_rows
from harness.report.reference import comparison_lines, release_coverage
from harness.report.runs import RunData
from harness.report.sections import box_gallery, box_sections, robustness_sections
from harness.report.stats import COLUMNS, bootstrap_intervals, finite as _finite, paired_comparison
from harness.runlog import RunFolder
from harness.schema import SUBTASKS

# Beyond this many runs, all pairs would be more tables than anyone reads: each run is tested
# against the first (an ablation's baseline arm) and a degraded run against its clean twin.
ALL_PAIRS_UP_TO = 5
HEATMAPS_AT_MOST = 24


def _plain(text: str) -> str:
    """Chart labels: matplotlib copies label text into SVG comments, which are inserted unescaped."""
    return re.sub(r"[<>&\-]", " ", text)


def run_key(run: RunData) -> str:
    """A run's identity in a report: its folder (two folders can carry the same run id)."""
    return str(run.path.resolve())


def _failures(run: RunData) -> str:
    errors = run.summary.error_counts
    return ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items())) if errors else "none"


def _notes(run: RunData) -> list[str]:
    """What a reader must know about this run's figures, said once, under this run."""
    if run.spec.task == "mcq":
        return comparison_lines(run.spec, run.summary, RunFolder(run.path))
    if run.spec.task == "gpt4vad":
        return list(run.summary.ad_metrics.get("notes", []))
    return []


def _run_info(run: RunData, key: str) -> dict:
    summary = run.summary
    wall = summary.wall_time_s
    info = {
        "key": key,
        "id": run.spec.run_id,
        "folder": str(run.path),
        "label": run.label,
        "model": run.spec.model,
        "suite": run.spec.suite,
        "task": run.spec.task,
        "data": run.spec.data,
        "shots": run.spec.shots,
        "templates": run.spec.templates,
        "choice_scoring": run.spec.choice_scoring,
        "perturb": run.spec.perturb,
        "strategies": run.spec.strategies,
        "protocol": run.spec.protocol,
        "release": run.spec.data_release or "not a known release",
        "differences": run.spec.protocol_differences,
        "backend_notes": run.spec.notes,
        "notes": _notes(run),
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
        "failures": _failures(run),
    }
    if run.spec.task == "mcq":
        lead = headline(run.spec, summary)
        info |= {
            "parser": "strict (iadbench)" if run.spec.protocol == "harmonised" else f"the {run.spec.protocol} script's parser (official scorer), strict beside it",
            "headline": lead.name,
            "headline_average": _finite(lead.average),
            "strict_average": _finite(summary.strict.get("accuracy", {}).get("Average", {}).get("Average")),
        }
    return info


def _hoist_common_notes(infos: list[dict]) -> list[str]:
    """Notes every run of the report carries are said once, for all of them; each run keeps only
    the notes that are its own (its averages, its published-row line, its backend's quirks)."""
    if len(infos) < 2:
        return []
    fields = ("notes", "backend_notes", "differences")
    common = [(field, line) for field in fields for line in infos[0][field] if all(line in info[field] for info in infos[1:])]
    for info in infos:
        for field in fields:
            info[field] = [line for line in info[field] if (field, line) not in common]
    prefix = {"notes": "", "backend_notes": "backend: ", "differences": "differs from the official run: "}
    return [prefix[field] + line for field, line in common]


def _leaderboard(runs: list[RunData], keys: dict[str, str], intervals: dict[str, dict], published: str) -> dict:
    rows = []
    for run in runs:
        strict = run.summary.strict["accuracy"]["Average"]
        ci = intervals[run_key(run)].get("Average", {})
        cells = [{"value": _finite(strict.get(column)), "low": ci.get(column, (None, None))[0], "high": ci.get(column, (None, None))[1]} for column in COLUMNS]
        rows.append({"key": keys[run_key(run)], "label": run.label, "kind": "run", "run_id": run.spec.run_id, "data": run.spec.data, "date": run.spec.created_at[:10], "cells": cells})
    # MMAD's published rows answer MMAD's whole official release: shown beside runs that answered it all
    covering = [run for run in runs if release_coverage(run.spec, run.summary)[0]]
    if published == "always" or (published == "auto" and covering):
        for row in published_rows():
            cells = [{"value": row.averages.get(column), "low": None, "high": None} for column in COLUMNS]
            rows.append({"key": None, "label": f"{row.model} ({row.shots}-shot)", "kind": "published", "run_id": None, "data": "MMAD (published)", "date": "", "cells": cells})
        for name, average in PAPER_ROWS.items():
            cells = [{"value": None, "low": None, "high": None} for _ in COLUMNS[:-1]] + [{"value": average, "low": None, "high": None}]
            rows.append({"key": None, "label": name, "kind": "paper", "run_id": None, "data": "MMAD paper", "date": "", "cells": cells})
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


def comparable_pairs(runs: list[RunData]) -> tuple[list[tuple[RunData, RunData]], str]:
    """The pairs of runs a paired test may compare (exactly the same questions), and how they were
    chosen. Up to ALL_PAIRS_UP_TO runs: every such pair; beyond: each run against the first, and a
    degraded run against its clean twin."""
    candidates = [(a, b) for a, b in combinations(runs, 2) if a.same_questions(b)]
    if len(runs) <= ALL_PAIRS_UP_TO:
        return candidates, "every pair of runs over the same questions"
    first = runs[0]
    twins = {clean_twin_key(r.spec): r for r in runs if not r.spec.perturb}
    chosen = [(a, b) for a, b in candidates if a is first or (b.spec.perturb and twins.get(clean_twin_key(b.spec)) is a)]
    return chosen, f"each run against {first.label} (the first run), and each degraded run against its clean twin"


def _gpt4vad_sections(runs: list[RunData], keys: dict[str, str]) -> list[dict]:
    from harness.tables import AD_COLUMNS

    sections = []
    for run in runs:
        if run.spec.task != "gpt4vad":
            continue
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


def _mcq_charts(charted: list[RunData], keys: dict[str, str]) -> dict:
    if not charted:
        return {}
    series = {_plain(run.label): [_finite(run.summary.strict["accuracy"]["Average"].get(s.value)) for s in SUBTASKS] for run in charted}
    datasets = sorted({d for run in charted for d in run.summary.strict["accuracy"] if d != "Average"})
    heatmaps = []
    for run in charted[:HEATMAPS_AT_MOST]:  # one per run; the page shows the one selected
        categories, grid = category_grid(run.summary.strict["by_category"])
        heatmaps.append({"key": keys[run_key(run)], "label": run.label, "svg": charts.heatmap(categories, grid, _plain(f"{run.label}: accuracy % by category"))})
    return {
        "radar": charts.radar(series),
        "bars": charts.grouped_bars(datasets, {_plain(run.label): [_finite(run.summary.strict["accuracy"].get(d, {}).get("Average")) for d in datasets] for run in charted}),
        "heatmaps": heatmaps,
        "heatmaps_left_out": max(0, len(charted) - HEATMAPS_AT_MOST),
        "confusion": charts.overkill_miss({
            _plain(run.label if len(run.summary.strict["detection"]) == 1 else f"{run.label} {d}"): (
                _finite(run.summary.strict["detection"][d]["Overkill"]) or 0.0,
                _finite(run.summary.strict["detection"][d]["Miss"]) or 0.0,
            )
            for run in charted
            for d in run.summary.strict["detection"]
        }),
    }


def build_report(runs: list[RunData], *, published: str = "auto", gallery_run: int = 0, gallery_size: int = 60) -> dict:
    """The report of runs already labelled (harness/report/runs.py: label_runs)."""
    keys = {run_key(run): f"run{index}" for index, run in enumerate(runs, start=1)}
    mcq = [run for run in runs if run.spec.task == "mcq"]
    intervals = {run_key(run): bootstrap_intervals(run) for run in mcq}
    pairs, pairing = comparable_pairs(mcq)
    report: dict = {
        "title": "iadbench report",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [_run_info(run, keys[run_key(run)]) for run in runs],
        "differences": difference_table([run.spec for run in runs], [run.label for run in runs]),
        "kinds": sorted({run.spec.task for run in runs}),
        "leaderboard": _leaderboard(mcq, keys, intervals, published) if mcq else None,
        "datasets": [{"key": keys[run_key(run)], "label": run.label, "rows": _dataset_tables(run, intervals[run_key(run)])} for run in mcq if run.summary.n_samples],
        "pairs": [comparison | {"first_key": keys[run_key(a)], "second_key": keys[run_key(b)]} for a, b in pairs if (comparison := paired_comparison(a, b))],
        "pairing": pairing,
        "gpt4vad": _gpt4vad_sections(runs, keys),
        "boxes": box_sections(runs),
        "robustness": robustness_sections(mcq, intervals),
        "image_metrics": [{"key": keys[run_key(run)], "label": run.label, **run.summary.image_metrics} for run in mcq if run.summary.image_metrics.get("mean")],
    }
    report["common_notes"] = _hoist_common_notes(report["runs"])
    report["charts"] = _mcq_charts([run for run in mcq if run.summary.n_samples], keys) | _curves(runs)
    if runs:
        chosen = runs[min(gallery_run, len(runs) - 1)]
        galleries = {"mcq": mcq_gallery, "gpt4vad": gpt4vad_gallery, "bbox": box_gallery}
        report["gallery"] = galleries[chosen.spec.task](chosen, gallery_size) | {"key": keys[run_key(chosen)]}
    return report
