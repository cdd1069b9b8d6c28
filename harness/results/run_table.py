"""A run's results table: the one its task kind prints (the kinds' tables live with the kinds;
this module sits above them and the registry, so no kind imports it)."""

from __future__ import annotations

from harness.schema import RunSpec, RunSummary
from harness.tasks.registry import task_kind


def results_table(summary: RunSummary, spec: RunSpec) -> str:
    return task_kind(spec.task).table(summary, spec)
