"""Uncertainty for reports: bootstrap intervals on accuracies and paired tests between runs.

Bootstrap without resampling loops: resampling n right/wrong outcomes with replacement gives a
Binomial(n, p̂) count, so each column's bootstrap distribution is drawn directly. Detection is
resampled per class (its balanced accuracy is a mean of two class accuracies); averages combine
the independent draws of their columns exactly as the point estimate combines the columns.
Paired comparisons use McNemar's exact test on the questions both runs answered, with Holm's
correction over the columns of one pair.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest

from harness.report.rundata import RunData
from harness.schema import SUBTASKS

CONFIDENCE = 0.95
RESAMPLES = 2000
LEVEL = 0.05
# The one significance test of the project, named wherever a difference is called significant (the
# report's paired tables and ablation.md alike): intervals describe a difference, this decides it.
SIGNIFICANCE = ("McNemar's exact test on the questions both runs answered, p-values Holm-adjusted over the "
                "rows of each pair (the seven subtasks and all questions), significant at p < 0.05")
COLUMNS = [s.value for s in SUBTASKS] + ["Average"]


def _column_draws(run: RunData, mask: np.ndarray, subtask: int, rng: np.random.Generator) -> np.ndarray | None:
    """B bootstrap draws (in %) of one column's accuracy over the questions in `mask`, or None."""
    selected = mask & (run.subtask == subtask)
    if not selected.any():
        return None
    if subtask == 0:  # Anomaly Detection: balanced over the images' classes
        draws = []
        for cls in (False, True):
            members = selected & (run.anomalous == cls)
            if members.any():
                n = int(members.sum())
                draws.append(rng.binomial(n, run.correct[members].mean(), RESAMPLES) / n)
        return 100 * np.mean(draws, axis=0)
    n = int(selected.sum())
    return 100 * rng.binomial(n, run.correct[selected].mean(), RESAMPLES) / n


def bootstrap_intervals(run: RunData, seed: int = 0) -> dict[str, dict[str, tuple[float, float]]]:
    """{dataset or "Average": {column: (low, high)}} for the MMAD table of a run (macro averages)."""
    rng = np.random.default_rng(seed)
    alpha = (1 - CONFIDENCE) / 2
    per_dataset_average: list[np.ndarray] = []
    per_column_by_dataset: dict[int, list[np.ndarray]] = {i: [] for i in range(len(SUBTASKS))}
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    for dataset in sorted(set(run.dataset)):
        mask = run.dataset == dataset
        row, present = {}, []
        for index, column in enumerate(COLUMNS[:-1]):
            draws = _column_draws(run, mask, index, rng)
            if draws is None:
                continue
            present.append(draws)
            per_column_by_dataset[index].append(draws)
            row[column] = tuple(np.quantile(draws, [alpha, 1 - alpha]))
        if present:
            average = np.mean(present, axis=0)
            per_dataset_average.append(average)
            row["Average"] = tuple(np.quantile(average, [alpha, 1 - alpha]))
        intervals[dataset] = row
    overall = {}
    for index, column in enumerate(COLUMNS[:-1]):
        if per_column_by_dataset[index]:
            overall[column] = tuple(np.quantile(np.mean(per_column_by_dataset[index], axis=0), [alpha, 1 - alpha]))
    if per_dataset_average:
        overall["Average"] = tuple(np.quantile(np.mean(per_dataset_average, axis=0), [alpha, 1 - alpha]))
    intervals["Average"] = overall
    return intervals


def mcnemar(first_correct: np.ndarray, second_correct: np.ndarray) -> tuple[int, int, float]:
    """(questions only the first got right, only the second, exact two-sided p)."""
    only_first = int((first_correct & ~second_correct).sum())
    only_second = int((~first_correct & second_correct).sum())
    if only_first + only_second == 0:
        return only_first, only_second, 1.0
    return only_first, only_second, float(binomtest(only_first, only_first + only_second, 0.5).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_comparison(first: RunData, second: RunData, level: float = LEVEL) -> dict | None:
    """McNemar per subtask (and overall) on the questions both runs answered; None if they share
    no questions (different data)."""
    if first.ids.shape == second.ids.shape and np.array_equal(first.ids, second.ids):
        shared = first.ids  # the usual case, runs on the same question set: no string sort needed
        first_index = second_index = np.arange(first.ids.size)
    else:
        shared, first_index, second_index = np.intersect1d(first.ids, second.ids, return_indices=True)
    if shared.size == 0:
        return None
    subtasks = first.subtask[first_index]
    a, b = first.correct[first_index], second.correct[second_index]
    tests = []
    for index, column in enumerate(COLUMNS[:-1]):
        members = subtasks == index
        if members.any():
            tests.append((column, *mcnemar(a[members], b[members]), int(members.sum())))
    tests.append(("All questions", *mcnemar(a, b), int(shared.size)))
    adjusted = holm([t[3] for t in tests])
    rows = []
    for (column, only_first, only_second, p, n), p_adjusted in zip(tests, adjusted):
        significant = p_adjusted < level and only_first != only_second
        if significant:
            winner = first.label if only_first > only_second else second.label
            verdict = f"{winner} better (p={p_adjusted:.2g})"
        else:
            verdict = "no significant difference"
        rows.append({"column": column, "questions": n, "only_first": only_first, "only_second": only_second, "p": p, "p_holm": p_adjusted, "significant": significant, "verdict": verdict})
    return {"first": first.label, "second": second.label, "shared_questions": int(shared.size), "tests": rows}


def finite(value) -> float | None:
    """A table value, or None for a missing or NaN one."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
