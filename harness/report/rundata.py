"""A run's per-question outcomes as arrays, as a report holds them (harness/report/runs.py reads
them from a run folder). No kind or registry is imported here: the kinds' report parts use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.schema import SUBTASKS, RunSpec, RunSummary


SUBTASK_INDEX = {s.value: i for i, s in enumerate(SUBTASKS)}


@dataclass
class RunData:
    path: Path
    spec: RunSpec
    summary: RunSummary
    ids: np.ndarray  # question ids (object), in ordinal order
    dataset: np.ndarray  # object
    category: np.ndarray  # object
    subtask: np.ndarray  # int8 index into SUBTASKS
    anomalous: np.ndarray  # bool: the image's label
    correct: np.ndarray  # bool
    status: np.ndarray  # object: ok, unparsable, …
    label: str = field(default="")  # set for a report by label_runs: the model plus what tells this run apart
    chosen: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))  # object: the letter answered, or None

    def same_questions(self, other: "RunData") -> bool:
        """Whether two runs answered exactly the same questions (the condition for pairing them)."""
        if self.ids.shape == other.ids.shape and np.array_equal(self.ids, other.ids):
            return True
        return self.ids.size == other.ids.size and np.array_equal(np.sort(self.ids.astype(str)), np.sort(other.ids.astype(str)))


def run_key(run: RunData) -> str:
    """A run's identity in a report: its folder (two folders can carry the same run id)."""
    return str(run.path.resolve())
