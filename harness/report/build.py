"""Assembling a comparison report from run folders: one data structure, several renderers.

Every run of a report gets a key (run1, run2, …) and a distinct label (harness/report/identity.py)
once; each section takes a run's figures from that run alone and names it by both, so no figure or
note can be attributed to another run, and the renderers look runs up by key, never by label.
"""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import combinations

import numpy as np

from harness.report import charts
from harness.report.agreement import agreement_section
from harness.report.identity import clean_twin_key, difference_table
from harness.report.published import PAPER_ROWS, published_rows
from harness.report.reference import release_coverage
from harness.report.rundata import RunData, run_key
from harness.report.sections import robustness_sections
from harness.report.stats import COLUMNS, SIGNIFICANCE, bootstrap_intervals, finite as _finite, paired_comparison
from harness.schema import SUBTASKS
from harness.tasks.registry import task_kind, task_kind_names

# Beyond this many runs, all pairs would be more tables than anyone reads: each run is tested
# against the first (an ablation's baseline arm) and a degraded run against its clean twin.
ALL_PAIRS_UP_TO = 5
HEATMAPS_AT_MOST = 24


_plain = charts.plain_label


def _failures(run: RunData) -> str:
    errors = run.summary.error_counts
    return ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items())) if errors else "none"


def _notes(run: RunData) -> list[str]:
    """What a reader must know about this run's figures, said once, under this run (its kind says)."""
    return task_kind(run.spec.task).report_notes(run)


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
    kind = task_kind(run.spec.task)
    info |= {"answers_questions": kind.answers_questions, "kind_title": kind.title} | kind.report_info(run)
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


def coverage(run: RunData) -> str:
    """How much of its question set a run answered, in words (a --limit run names its subset)."""
    from harness.data.subset import subset_note

    spec, summary = run.spec, run.summary
    available = spec.limit_of or summary.n_questions
    note = subset_note(summary.n_questions, available, spec.limit_sampling, spec.seed, what="")  # under the column "questions"
    if summary.n_samples < summary.n_questions:
        note += f"; {summary.n_samples} answered"
    return note


def ranked_runs(runs: list[RunData]) -> list[RunData]:
    """The runs a leaderboard ranks: those over the same questions as the run with the most (a
    subset run, or a run over other data, has another average: shown, not ranked among them)."""
    if not runs:
        return []
    widest = max(enumerate(runs), key=lambda pair: (pair[1].ids.size, -pair[0]))[1]
    return [run for run in runs if run is widest or run.same_questions(widest)]


def _leaderboard(runs: list[RunData], keys: dict[str, str], intervals: dict[str, dict], published: str) -> dict:
    ranked = {id(run) for run in ranked_runs(runs)}
    rows, unranked = [], []
    for run in runs:
        strict = run.summary.strict["accuracy"]["Average"]
        ci = intervals[run_key(run)].get("Average", {})
        cells = [{"value": _finite(strict.get(column)), "low": ci.get(column, (None, None))[0], "high": ci.get(column, (None, None))[1]} for column in COLUMNS]
        row = {"key": keys[run_key(run)], "label": run.label, "kind": "run" if id(run) in ranked else "unranked", "run_id": run.spec.run_id, "data": run.spec.data,
               "coverage": coverage(run), "date": run.spec.created_at[:10], "cells": cells}
        (rows if id(run) in ranked else unranked).append(row)
    # MMAD's published rows answer MMAD's whole official release: shown beside runs that answered it all
    covering = [run for run in runs if release_coverage(run.spec, run.summary)[0]]
    if published == "always" or (published == "auto" and covering):
        for row in published_rows():
            cells = [{"value": row.averages.get(column), "low": None, "high": None} for column in COLUMNS]
            rows.append({"key": None, "label": f"{row.model} ({row.shots}-shot)", "kind": "published", "run_id": None, "data": "MMAD (published)", "coverage": "", "date": "", "cells": cells})
        for name, average in PAPER_ROWS.items():
            cells = [{"value": None, "low": None, "high": None} for _ in COLUMNS[:-1]] + [{"value": average, "low": None, "high": None}]
            rows.append({"key": None, "label": name, "kind": "paper", "run_id": None, "data": "MMAD paper", "coverage": "", "date": "", "cells": cells})
    ranked_list = [run for run in runs if id(run) in ranked]
    chance = ranked_list[0].summary.strict.get("chance", {}).get("Average") if ranked_list else None
    if chance:  # what uniform guessing scores on the ranked runs' questions (the per-dataset tables say it per dataset)
        rows.append({"key": None, "label": "chance (uniform guessing)", "kind": "guess", "run_id": None, "data": ranked_list[0].spec.data,
                     "coverage": "", "date": "", "cells": [{"value": _finite(chance.get(column)), "low": None, "high": None} for column in COLUMNS]})
    by_average = lambda row: -(row["cells"][-1]["value"] if row["cells"][-1]["value"] is not None else -1)  # noqa: E731
    # one model's arms (an ablation, a degradation sweep) read in the order they were run, severity
    # by severity; different models are ranked
    in_order = len(ranked) > 1 and len({run.spec.model for run in runs if id(run) in ranked}) == 1
    if in_order:
        rows = [row for row in rows if row["kind"] == "run"] + sorted((row for row in rows if row["kind"] != "run"), key=by_average)
    else:
        rows.sort(key=by_average)
    return {"columns": COLUMNS, "rows": rows + unranked, "unranked": len(unranked), "in_order": in_order,
            "published_shown": any(r["kind"] in ("published", "paper") for r in rows)}


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


def _gallery(runs: list[RunData], keys: dict[str, str], chosen_index: int | None, size: int, skip_declined: bool) -> tuple[dict | None, str | None]:
    """(the failure gallery, a note): of the run asked for, else of the first run that got anything
    wrong; a note says why there is none, or why it is not the first run's."""
    if not runs or size == 0:
        return None, None
    order = [runs[min(chosen_index, len(runs) - 1)]] if chosen_index is not None else runs
    for run in order:
        gallery = task_kind(run.spec.task).gallery(run, size, skip_declined)
        if gallery is not None and gallery["items"]:
            note = None if chosen_index is not None or run is runs[0] else f"{runs[0].label} got nothing wrong to show; the gallery shows {run.label}, the first run that did (--gallery-run picks another)."
            return gallery | {"key": keys[run_key(run)]}, note
    if chosen_index is not None:
        return None, f"No failure gallery: {order[0].label} got nothing wrong to show" + (" but declined answers (left out by --gallery-hide-declined)." if skip_declined else ".")
    return None, "No failure gallery: no run got anything wrong to show" + (" but declined answers (left out by --gallery-hide-declined)." if skip_declined else ".")


def build_report(runs: list[RunData], *, published: str = "auto", gallery_run: int | None = None, gallery_size: int = 60, gallery_hide_declined: bool = False) -> dict:
    """The report of runs already labelled (harness/report/runs.py: label_runs)."""
    keys = {run_key(run): f"run{index}" for index, run in enumerate(runs, start=1)}
    mcq = [run for run in runs if task_kind(run.spec.task).answers_questions]  # accuracy per subtask: tables, pairs, charts
    intervals = {run_key(run): bootstrap_intervals(run) for run in mcq}
    pairs, pairing = comparable_pairs(mcq)
    report: dict = {
        "title": "iadbench report",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [_run_info(run, keys[run_key(run)]) for run in runs],
        "differences": difference_table([run.spec for run in runs], [run.label for run in runs]),
        "methods": [task_kind(name).method for name in sorted({run.spec.task for run in runs}) if task_kind(name).method],
        "leaderboard": _leaderboard(mcq, keys, intervals, published) if mcq else None,
        # per dataset only where a run has several (one dataset's row is its leaderboard row)
        "datasets": [{"key": keys[run_key(run)], "label": run.label, "rows": _dataset_tables(run, intervals[run_key(run)])} for run in mcq
                     if run.summary.n_samples and len(run.summary.strict["accuracy"]) > 2],
        "pairs": [comparison | {"first_key": keys[run_key(a)], "second_key": keys[run_key(b)]} for a, b in pairs if (comparison := paired_comparison(a, b))],
        "pairing": pairing,
        "agreement": agreement_section(mcq, keys),  # people against each other and against the models
        "significance": SIGNIFICANCE,
        "robustness": robustness_sections(mcq, intervals),
        "image_metrics": [{"key": keys[run_key(run)], "label": run.label, **run.summary.image_metrics} for run in mcq if run.summary.image_metrics.get("mean")],
    }
    report["common_notes"] = _hoist_common_notes(report["runs"])
    report["charts"] = _mcq_charts([run for run in mcq if run.summary.n_samples], keys)
    report["tables"] = []  # any kind's plain tables (harness/tasks/kinds.py: report_sections)
    for name in task_kind_names():  # every kind's sections exist, empty when no run of it is here
        report |= {section: [] for section in task_kind(name).section_names}
    by_kind: dict[str, list[RunData]] = {}
    for run in runs:
        by_kind.setdefault(run.spec.task, []).append(run)
    for name, members in by_kind.items():
        for section, entries in task_kind(name).report_sections(members, keys).items():  # kinds may add to a shared section ("tables")
            report[section] = report.get(section, []) + entries
        report["charts"] |= task_kind(name).report_charts(members)
    gallery, report["gallery_note"] = _gallery(runs, keys, gallery_run, gallery_size, gallery_hide_declined)
    if gallery is not None:
        report["gallery"] = gallery
    return report
