"""Report sections for degradation sweeps (robustness); each kind's own sections live with the kind."""

from __future__ import annotations

from collections import defaultdict

from harness.report import charts
from harness.report.identity import clean_twin_key
from harness.report.rundata import RunData
from harness.report.stats import COLUMNS, finite as _finite
from harness.storage.sources import data_label
from harness.tasks.registry import task_kind


def _perturbation(run: RunData) -> tuple[str, int] | None:
    """(kind, severity) of a run with one degradation; ("", 0) for an undegraded run."""
    if not run.spec.perturb:
        return ("", 0)
    if len(run.spec.perturb) != 1:
        return None
    kind, _, severity = run.spec.perturb[0].partition(":")
    return kind, int(severity)


def robustness_sections(runs: list[RunData], intervals: dict[str, dict]) -> list[dict]:
    """Accuracy against severity, per degradation kind and subtask, with 95% bootstrap intervals.
    Severity 0 is the degraded runs' clean twin: the run equal to them in every answer-changing
    setting but the degradation, over the same questions (harness/report/identity.py). Without one
    in the report the section says so, rather than borrow another run's figures."""
    twins: dict[tuple, RunData] = {}
    groups: dict[tuple, dict[str, dict[int, RunData]]] = defaultdict(lambda: defaultdict(dict))
    for run in runs:
        if not task_kind(run.spec.task).answers_questions or not run.summary.n_samples or (found := _perturbation(run)) is None:
            continue
        kind, severity = found
        if kind:
            groups[(clean_twin_key(run.spec), run.spec.perturb_templates)][kind].setdefault(severity, run)
        else:
            twins.setdefault(clean_twin_key(run.spec), run)
    sections = []
    for (key, templates), kinds in groups.items():
        for kind, degraded in sorted(kinds.items()):
            member = next(iter(degraded.values()))
            baseline = twins.get(key)
            if baseline is not None and not all(baseline.same_questions(run) for run in degraded.values()):
                baseline = None
            points = ({0: baseline} if baseline is not None else {}) | dict(sorted(degraded.items()))
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
                run = points[severity]
                rows.append({"severity": severity, "label": run.label, "run_id": run.spec.run_id, "cells": [_finite(run.summary.strict["accuracy"]["Average"].get(c)) for c in COLUMNS]})
            spec = member.spec
            title = f"{kind}: accuracy % against severity" + (" (0 = its clean twin)" if baseline is not None else " (no matching clean run)")
            sections.append({
                "label": f"{spec.model} on {data_label(spec.data)}" + (f" with {', '.join(spec.strategies)}" if spec.strategies else "") + (", templates degraded too" if templates else ""),
                "kind": kind,
                "baseline": baseline.label if baseline is not None else None,
                "baseline_note": None if baseline is not None else "no matching clean run: the report holds no run equal to these in every setting but the degradation, over the same questions, so severity 0 is not drawn",
                "columns": COLUMNS,
                "rows": rows,
                "chart": charts.severity_curves(severities, series, title),
            })
    return sections
