"""A run's headline score: the one place that says which table a run leads with.

spec.json's `scoring` decides it (set by the suite or `eval --mmad-compat`, changed afterwards only
by `score --headline`, which records the change); summary.json holds both tables. Every reader
(the printed table, the report, its exports) asks here rather than reading a field of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.schema import RunSpec, RunSummary

HEADLINE_NAMES = {"strict": "strict (unanswered = wrong)", "mmad-compat": "official MMAD scorer"}


@dataclass(frozen=True)
class Headline:
    mode: str  # strict | mmad-compat
    name: str
    average: float | None  # the headline table's overall average
    other_name: str
    other_average: float | None


def _averages(summary: RunSummary) -> dict[str, float | None]:
    return {
        "strict": summary.strict.get("accuracy", {}).get("Average", {}).get("Average"),
        "mmad-compat": summary.mmad_compat.get("values", {}).get("Average", {}).get("Average"),
    }


def headline(spec: RunSpec, summary: RunSummary) -> Headline:
    """The run's headline (spec.json's scoring) and the other score beside it."""
    mode = spec.scoring
    other = "strict" if mode == "mmad-compat" else "mmad-compat"
    averages = _averages(summary)
    return Headline(mode, HEADLINE_NAMES[mode], averages[mode], HEADLINE_NAMES[other], averages[other])
