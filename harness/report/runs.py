"""Loading run folders for a report: spec, summary, and the per-question outcomes as arrays.

Samples are read with the json module, not pydantic, and only the fields a report needs are
kept: twenty MMAD-size runs are 800,000 lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from harness.errors import RunFolderError
from harness.run.runlog import SAMPLES, RunFolder
from harness.report.rundata import SUBTASK_INDEX, RunData
from harness.tasks.registry import task_kind


def label_runs(runs: list[RunData]) -> list[RunData]:
    """Give each run of a report its distinct label (harness/report/identity.py), once."""
    from harness.report.identity import run_labels

    for run, label in zip(runs, run_labels([r.spec for r in runs], [str(r.path) for r in runs])):
        run.label = label
    return runs


def load_run(path: Path, *, circular: bool = False) -> RunData:
    """A run's samples as arrays. With `circular`, a circular-evaluation run counts a question
    right only if every rotation of its options was answered right (the arm's own measure)."""
    folder = RunFolder.open(path)
    spec = folder.spec()
    answers_questions = task_kind(spec.task).answers_questions
    summary = folder.summary()
    if summary is None:
        raise RunFolderError(f"{path}: no summary.json yet; finish the run (iadbench eval --resume {path}) or score it (iadbench score {path})")
    rows: list[tuple] = []
    wrong_rotation: set[str] = set()
    seen: set[str] = set()
    digest = folder.settings_digest()
    foreign: list[tuple[str, str]] = []  # answers made under other settings than spec.json's: refused, as the run's reader does
    from harness.storage.runfiles import open_inside

    with open_inside(path, SAMPLES, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                sample = json.loads(line)
                key = sample["question_id"]
                mcq = answers_questions  # per-subtask correctness: the kinds that ask MMAD questions
                row = (sample["ordinal"], key, sample["dataset"], sample["category"], SUBTASK_INDEX[sample["subtask"]] if mcq else -1,
                       sample["label"] == "anomaly", bool(sample["correct"]) if mcq else False, sample["parse_status"], _letter(sample.get("parsed")) if mcq else None)
            except (ValueError, KeyError, TypeError):  # the same lines iadbench's own reader leaves out, named
                print(f"iadbench: warning: {path / SAMPLES}: line {number} is not a valid sample; left out of the report (resume the run to ask it again)", file=sys.stderr)
                continue
            if sample.get("settings_digest") not in (None, digest):
                foreign.append((key, str(sample.get("model"))))
            if key in seen:
                continue  # a repeated question: the first answer counts, as the run's reader keeps it
            seen.add(key)
            if mcq and "@rot" in key:  # circular evaluation: tables use the questions as written
                if not sample["correct"]:
                    wrong_rotation.add(key.split("@rot", 1)[0])
                continue
            rows.append(row)
    if foreign:
        raise folder.foreign_answers(len(foreign), number, foreign[0][0], {model for _, model in foreign})
    if circular and "circular" in spec.strategies:
        rows = [row[:6] + (row[6] and row[1] not in wrong_rotation,) + row[7:] for row in rows]
    rows.sort(key=lambda row: row[0])
    columns = list(zip(*rows)) if rows else [[]] * 9
    return RunData(
        path=path,
        spec=spec,
        summary=summary,
        ids=np.array(columns[1], dtype=object),
        dataset=np.array(columns[2], dtype=object),
        category=np.array(columns[3], dtype=object),
        subtask=np.array(columns[4], dtype=np.int8),
        anomalous=np.array(columns[5], dtype=bool),
        correct=np.array(columns[6], dtype=bool),
        status=np.array(columns[7], dtype=object),
        label=spec.model,
        chosen=np.array(columns[8], dtype=object),
    )


def _letter(parsed: object) -> str | None:
    """The option a run chose (for agreement between runs); anything but a short string is none."""
    return parsed if isinstance(parsed, str) and 0 < len(parsed) <= 3 else None
