"""Accuracy tables in MMAD's layout: rows are datasets (+ Average), columns the 7 subtasks.

Two scorers:
- `strict_scores`: every question counts; an unparsable, ambiguous or failed answer is wrong and
  counted. Detection is balanced accuracy over the images' true labels.
- `mmad_compat_table`: the official MMAD scorer reproduced number for number on MMAD's answers-file
  format, including its quirks (see notes/mmad-protocol.md): records whose answers are not A–E are
  removed while iterating, which also skips the record right after each one; "normal" means the
  substring `good` occurs in the image path; sums run left to right as pandas does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from harness.schema import MMAD_TYPE_TO_SUBTASK, SUBTASKS, SampleResult, Subtask

VALID_LETTERS = ("A", "B", "C", "D", "E")
DETECTION_COLUMNS = ("Recall", "Precision", "F1", "Overkill", "Miss")


def _mean(values: Iterable[float]) -> float:
    """Left-to-right sum / count, like pandas' mean on a handful of columns (not math.fsum, and not
    Python 3.12's compensated sum()), so results match the official CSVs to the last digit."""
    total, count = 0.0, 0
    for value in values:
        total += value
        count += 1
    return total / count if count else 0.0


# ---------------------------------------------------------------------------------------------
# Strict scoring of a run's samples


@dataclass
class _Tally:
    total: int = 0
    correct: int = 0
    chance: float = 0.0
    not_answered: int = 0

    def add(self, sample: SampleResult) -> None:
        self.total += 1
        self.correct += sample.correct
        self.chance += 1.0 / len(sample.options)
        self.not_answered += sample.parse_status != "ok"


def _balanced(normal: _Tally, anomaly: _Tally, attribute: str) -> float | None:
    rates = [getattr(t, attribute) / t.total for t in (normal, anomaly) if t.total]
    return 100.0 * _mean(rates) if rates else None


def _rate(tally: _Tally, attribute: str = "correct") -> float | None:
    return 100.0 * getattr(tally, attribute) / tally.total if tally.total else None


def strict_scores(samples: list[SampleResult]) -> dict:
    """Per-dataset and per-category accuracy tables with chance levels and answer-status counts."""
    by_group: dict[tuple[str, Subtask], _Tally] = defaultdict(_Tally)
    detection: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    for sample in samples:
        for group in (sample.dataset, f"{sample.dataset}/{sample.category}"):
            by_group[group, sample.subtask].add(sample)
            if sample.subtask is Subtask.ANOMALY_DETECTION:
                detection[group, sample.label].add(sample)
    datasets = sorted({s.dataset for s in samples})
    categories = sorted({f"{s.dataset}/{s.category}" for s in samples})

    def table(groups: list[str], attribute: str) -> dict[str, dict[str, float | None]]:
        rows: dict[str, dict[str, float | None]] = {}
        for group in groups:
            row: dict[str, float | None] = {}
            for subtask in SUBTASKS:
                if subtask is Subtask.ANOMALY_DETECTION:
                    row[subtask.value] = _balanced(detection[group, "normal"], detection[group, "anomaly"], attribute)
                else:
                    row[subtask.value] = _rate(by_group[group, subtask], attribute)
            row["Average"] = _mean_present(row.values())
            rows[group] = row
        return rows

    accuracy, chance = table(datasets, "correct"), table(datasets, "chance")
    for rows in (accuracy, chance):
        rows["Average"] = {column: _mean_present(r[column] for r in list(rows.values())) for column in _columns()}
    return {
        "columns": list(_columns()),
        "accuracy": accuracy,
        "chance": chance,
        "by_category": table(categories, "correct"),
        "detection": {d: _detection_rates(detection[d, "normal"], detection[d, "anomaly"]) for d in datasets},
        "counts": {
            d: {s.value: {"total": by_group[d, s].total, "correct": by_group[d, s].correct, "not_answered": by_group[d, s].not_answered} for s in SUBTASKS}
            for d in datasets
        },
        "micro_accuracy": 100.0 * sum(s.correct for s in samples) / len(samples) if samples else None,
    }


def _columns() -> tuple[str, ...]:
    return tuple(s.value for s in SUBTASKS) + ("Average",)


def _mean_present(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _mean(present) if present else None


def _detection_rates(normal: _Tally, anomaly: _Tally) -> dict[str, float | None]:
    true_positive = anomaly.correct
    false_positive = normal.total - normal.correct
    precision = 100.0 * true_positive / (true_positive + false_positive) if true_positive + false_positive else None
    recall = _rate(anomaly)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    normal_accuracy = _rate(normal)
    return {
        "Recall": recall,
        "Precision": precision,
        "F1": f1,
        "Overkill": None if normal_accuracy is None else 100.0 - normal_accuracy,
        "Miss": None if recall is None else 100.0 - recall,
    }


# ---------------------------------------------------------------------------------------------
# The official MMAD scorer, reproduced


@dataclass
class CompatTable:
    rows: list[str]  # datasets in order of first appearance, then "Average"
    columns: list[str]  # question types in order of first appearance, "Average", detection columns
    values: dict[str, dict[str, float]]
    removed: int  # records dropped because an answer was not A–E
    skipped: int  # records never counted because they followed a removed one

    def to_csv(self) -> str:
        """The official scorer's CSV layout; row names come from the data (dataset folders), so
        they go through the one quoting and formula-neutralising writer."""
        from harness.storage.files import csv_text

        return csv_text([["", *self.columns], *([row, *(float(self.values[row][c]) for c in self.columns)] for row in self.rows)])

    def write_csv(self, path: Path) -> None:
        from harness.storage.files import write_text_atomically

        write_text_atomically(path, self.to_csv())


# Plain strings: this runs once per record of a 40k-record file, where enum lookups show up.
_MERGED_TYPES = {name: subtask.value for name, subtask in MMAD_TYPE_TO_SUBTASK.items()}
_DETECTION = Subtask.ANOMALY_DETECTION.value


def _merged_type(question_type: str) -> str:
    return _MERGED_TYPES.get(question_type, question_type)


def mmad_compat_table(answers: list[dict], normal_flag: str = "good") -> CompatTable:
    """Score an MMAD answers file (list of {image, question_type, correct_answer, gpt_answer})."""
    records = answers
    datasets: list[str] = []
    types: list[str] = []
    for record in records:
        dataset, question_type = record["image"].split("/")[0], _merged_type(record["question_type"])
        if dataset not in datasets:
            datasets.append(dataset)
        if question_type not in types:
            types.append(question_type)

    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (dataset, type) → [total, correct]
    detection: dict[tuple[str, bool], list[int]] = defaultdict(lambda: [0, 0])  # (dataset, is_normal) → …
    removed = 0
    index = 0
    while index < len(records):
        record = records[index]
        dataset, question_type = record["image"].split("/")[0], _merged_type(record["question_type"])
        right, given = record["correct_answer"], record["gpt_answer"]
        if right not in VALID_LETTERS or given not in VALID_LETTERS:
            # The official loop calls list.remove while iterating. Whichever equal record that
            # removes (this one or an earlier duplicate), the list shrinks by one and the iterator
            # moves on by one, so the record right after this one is never visited. Skipping it
            # directly is the same, in O(1) instead of O(n).
            removed += 1
            index += 2
            continue
        hit = int(right == given)
        totals[dataset, question_type][0] += 1
        totals[dataset, question_type][1] += hit
        if question_type == _DETECTION:
            tally = detection[dataset, normal_flag in record["image"]]
            tally[0] += 1
            tally[1] += hit
        index += 1

    values: dict[str, dict[str, float]] = {}
    for dataset in datasets:
        row: dict[str, float] = {}
        normal_total, normal_correct = detection[dataset, True]
        abnormal_total, abnormal_correct = detection[dataset, False]
        normal_accuracy = normal_correct / normal_total if normal_total else 0
        anomaly_accuracy = abnormal_correct / abnormal_total if abnormal_total else 0
        for question_type in types:
            total, correct = totals[dataset, question_type]
            row[question_type] = (correct / total if total else 0) * 100
            if question_type == Subtask.ANOMALY_DETECTION.value:
                row[question_type] = (normal_accuracy + anomaly_accuracy) / 2 * 100
        row["Average"] = _mean(row[t] for t in types)
        true_positive, false_positive = abnormal_correct, normal_total - normal_correct
        false_negative = abnormal_total - abnormal_correct
        precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else 0
        recall = true_positive / (true_positive + false_negative) if true_positive + false_negative else 0
        row["Recall"], row["Precision"] = recall * 100, precision * 100
        row["F1"] = 2 * row["Precision"] * row["Recall"] / (row["Precision"] + row["Recall"]) if precision + recall else 0.0
        row["Overkill"] = (1 - normal_accuracy) * 100
        row["Miss"] = (1 - anomaly_accuracy) * 100
        values[dataset] = row
    columns = types + ["Average", *DETECTION_COLUMNS]
    values["Average"] = {column: _mean(values[d][column] for d in datasets) for column in columns}
    counted = sum(total for total, _ in totals.values())
    return CompatTable(
        rows=datasets + ["Average"],
        columns=columns,
        values=values,
        removed=removed,
        skipped=len(answers) - removed - counted,
    )
