"""What a run used, whatever its task: tokens, cost, cache hits, retries, failures, statuses."""

from __future__ import annotations

from collections import Counter

from harness.models.pricing import cost_usd
from harness.run.runner import _error_kind
from harness.schema import RunSpec, RunSummary, Usage


def run_accounting(spec: RunSpec, samples: list) -> dict:
    """What a run used, whatever its task: tokens, cost of what was paid, cache hits, retries,
    failures by kind, answer statuses."""
    paid = [s for s in samples if not s.cached]
    costs = [cost_usd(spec.model, s.usage) for s in paid]
    return {
        "n_samples": len(samples),
        "status_counts": dict(Counter(s.parse_status for s in samples)),
        "usage": Usage(prompt_tokens=sum(s.usage.prompt_tokens for s in samples), completion_tokens=sum(s.usage.completion_tokens for s in samples)),
        "cost_usd": None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        "cached_samples": len(samples) - len(paid),
        "retries": sum(s.attempts - 1 for s in samples),
        "error_counts": dict(Counter(_error_kind(s.error) for s in samples if s.error)),
    }


def run_summary(spec: RunSpec, samples: list, n_questions: int, wall_time_s: float | None, stopped_reason: str | None, **measured) -> RunSummary:
    """A run's summary: what names it (from its spec), what it used (run_accounting over `samples`),
    and what its task measured (`measured`: strict, box_metrics, ad_metrics, metrics, …)."""
    return RunSummary(run_id=spec.run_id, model=spec.model, suite=spec.suite, data=spec.data, scoring=spec.scoring, task=spec.task, n_questions=n_questions,
                      wall_time_s=wall_time_s, stopped_reason=stopped_reason, **measured, **run_accounting(spec, samples))
