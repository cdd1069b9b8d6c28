"""What every kind's terminal table shares: the title line, cells, the no-answers line, usage.
Each kind's own table lives with the kind (harness/tasks/<kind>/tables.py); which one a run
prints is harness/results/run_table.py's to say."""

from __future__ import annotations

from harness.schema import RunSpec, RunSummary

SHORT = {
    "Anomaly Detection": "AD",
    "Defect Classification": "DefCls",
    "Defect Localization": "DefLoc",
    "Defect Description": "DefDesc",
    "Defect Analysis": "DefAna",
    "Object Classification": "ObjCls",
    "Object Analysis": "ObjAna",
    "Average": "Average",
}


def _on(summary: RunSummary) -> str:
    """What the run was on: the suite, or the data that replaced the suite's (and the suite's settings)."""
    from harness.storage.sources import data_label
    from harness.suites import load_suite, suite_names

    if not summary.data or summary.suite not in suite_names() or load_suite(summary.suite).data == summary.data:
        return summary.suite
    return f"{data_label(summary.data)} ({summary.suite} settings)"


def table_title(summary: RunSummary, spec: RunSpec, what: str) -> str:
    """The first line of every results table: model, data, and the conditions that make this run
    differ from a plain one (degradations, strategies), so a sweep's tables cannot be confused."""
    conditions = [f"degraded {'+'.join(spec.perturb)}" + (" (templates too)" if spec.perturb_templates else "")] if spec.perturb else []
    conditions += [f"strategies {'+'.join(spec.strategies)}"] if spec.strategies else []
    from harness.models.registry import model_label  # "human: ana", as reports name a person's run

    return f"{model_label(summary.model)} on {_on(summary)}" + (f" [{'; '.join(conditions)}]" if conditions else "") + f": {what}"


def answered(summary: RunSummary) -> int:
    """Samples with an answer of any kind (parsed or not); failed calls are not answers."""
    return summary.n_samples - summary.status_counts.get("error", 0)


def no_answers(summary: RunSummary, spec: RunSpec, unit: str) -> str | None:
    """A run without a single answer has no figures to show, only why."""
    if answered(summary):
        return None
    if summary.n_samples:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items())) or "errors"
        why = f"every one of the {summary.n_samples} {unit} asked failed ({kinds}); no metrics"
    else:
        why = f"no {unit} answered yet (0 of {summary.n_questions}); no metrics"
    return "\n".join([table_title(summary, spec, "no results"), why, *usage_lines(summary)])


def cell(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.1f}"


def table_lines(title: str, rows: dict[str, dict], columns: list[str], extra_rows: dict[str, dict] | None = None) -> list[str]:
    width = max([len(r) for r in rows] + [len(r) for r in (extra_rows or {})] + [10])
    header = f"{'':<{width}}  " + "  ".join(f"{SHORT.get(c, c):>7}" for c in columns)
    lines = [title, header, "-" * len(header)]
    for name, row in list(rows.items()) + list((extra_rows or {}).items()):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell(row.get(c)):>7}" for c in columns))
    return lines


def usage_lines(summary: RunSummary) -> list[str]:
    """Tokens, cost, cache hits, retries (failed attempts only) and rate, for any task."""
    if not summary.usage.prompt_tokens + summary.usage.completion_tokens:
        return []
    cost = "unknown" if summary.cost_usd is None else f"${summary.cost_usd:.4f}"
    from harness.models.engines import engine_providers

    if summary.model.startswith(("hf/", *engine_providers())):
        cost = "none (a local model)"
    rate = f", {summary.n_samples / summary.wall_time_s:.1f} q/s" if summary.wall_time_s else ""
    return [
        f"tokens: {summary.usage.prompt_tokens:,} prompt + {summary.usage.completion_tokens:,} completion; cost {cost}; "
        f"{summary.cached_samples} from cache, {summary.retries} retries{rate}"
    ]


