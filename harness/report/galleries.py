"""What every kind's failure gallery shares: a small sample spread over subtasks and categories,
and the run's readable sample lines. Each kind's gallery lives with the kind."""

from __future__ import annotations

import json

from harness.report.rundata import RunData
from harness.run.runlog import SAMPLES
from harness.storage.runfiles import open_inside


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


def stratified(candidates: list[dict], limit: int) -> list[dict]:
    """A small gallery that still shows every subtask, and within each, every category."""
    by_subtask: dict[str, list[dict]] = {}
    for item in candidates:
        by_subtask.setdefault(item["subtask"], []).append(item)
    spread = {subtask: _round_robin(items, lambda s: s["category"]) for subtask, items in by_subtask.items()}
    return _round_robin([item for items in spread.values() for item in items], lambda s: s["subtask"])[:limit]


def gallery_samples(run: RunData, keys: tuple[str, ...]) -> list[dict]:
    """The run's samples that hold what a gallery shows. A damaged line was named already by the
    report's reader of the same file (report/runs.py) and is left out here too, not a crash."""
    samples = []
    with open_inside(run.path, SAMPLES, "rb") as handle:
        for line in handle:
            try:
                sample = json.loads(line)
            except ValueError:
                continue
            if isinstance(sample, dict) and all(k in sample for k in keys) and isinstance(sample.get("image_id", ""), str):
                samples.append(sample)
    return samples


