"""Plain-text results tables for the terminal, in MMAD's layout."""

from __future__ import annotations

from harness.metrics.headline import headline
from harness.schema import SUBTASKS, RunSpec, RunSummary

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


def _title(summary: RunSummary, spec: RunSpec, what: str) -> str:
    """The first line of every results table: model, data, and the conditions that make this run
    differ from a plain one (degradations, strategies), so a sweep's tables cannot be confused."""
    conditions = [f"degraded {'+'.join(spec.perturb)}" + (" (templates too)" if spec.perturb_templates else "")] if spec.perturb else []
    conditions += [f"strategies {'+'.join(spec.strategies)}"] if spec.strategies else []
    return f"{summary.model} on {_on(summary)}" + (f" [{'; '.join(conditions)}]" if conditions else "") + f": {what}"


def answered(summary: RunSummary) -> int:
    """Samples with an answer of any kind (parsed or not); failed calls are not answers."""
    return summary.n_samples - summary.status_counts.get("error", 0)


def _no_answers(summary: RunSummary, spec: RunSpec, unit: str) -> str | None:
    """A run without a single answer has no figures to show, only why."""
    if answered(summary):
        return None
    if summary.n_samples:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items())) or "errors"
        why = f"every one of the {summary.n_samples} {unit} asked failed ({kinds}); no metrics"
    else:
        why = f"no {unit} answered yet (0 of {summary.n_questions}); no metrics"
    return "\n".join([_title(summary, spec, "no results"), why, *_usage_lines(summary)])


def _cell(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.1f}"


def _table(title: str, rows: dict[str, dict], columns: list[str], extra_rows: dict[str, dict] | None = None) -> list[str]:
    width = max([len(r) for r in rows] + [len(r) for r in (extra_rows or {})] + [10])
    header = f"{'':<{width}}  " + "  ".join(f"{SHORT.get(c, c):>7}" for c in columns)
    lines = [title, header, "-" * len(header)]
    for name, row in list(rows.items()) + list((extra_rows or {}).items()):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_cell(row.get(c)):>7}" for c in columns))
    return lines


AD_COLUMNS = (
    ("image_auroc", "I-AUROC"),
    ("image_ap", "I-AP"),
    ("image_f1_max", "I-F1max"),
    ("pixel_auroc", "P-AUROC"),
    ("pixel_ap", "P-AP"),
    ("pixel_f1_max", "P-F1max"),
    ("pixel_aupro", "AUPRO"),
)


def ad_table(summary: RunSummary, spec: RunSpec) -> str:
    """GPT-4V-AD runs: image and pixel metrics (%) per category and their mean."""
    empty = _no_answers(summary, spec, "images")
    if empty:
        return empty
    metrics = summary.ad_metrics
    rows = dict(metrics.get("per_category", {})) | {"mean": metrics.get("mean", {})}
    width = max([len(r) for r in rows] + [10])
    header = f"{'':<{width}}  " + "  ".join(f"{title:>7}" for _, title in AD_COLUMNS)
    definitions = "ADer's evaluator (image score: pooled map maximum)" if str(metrics.get("definitions", "")).startswith("ader") else "MVTec definitions, image score as stated"
    lines = [_title(summary, spec, f"GPT-4V-AD, maps by Text2Segmentation, {definitions} (%)"), header, "-" * len(header)]
    for name, row in rows.items():
        cells = [row.get(key) for key, _ in AD_COLUMNS]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_cell(None if v is None or v != v else 100 * v):>7}" for v in cells))
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    lines.append(f"{summary.n_samples}/{summary.n_questions} images answered; reply status: {statuses}")
    ader = str(metrics.get("definitions", "")).startswith("ader")
    seven = metrics.get("mean", {}).get("mad" if ader else "mean7")
    if seven is not None and seven == seven:
        lines.append(("mAD (ADer's definition)" if ader else "mean of the seven (MVTec definitions; not ADer's mAD: --metrics ader)") + f": {100 * seven:.1f}")
    lines += [f"note: {note}" for note in metrics.get("notes", [])]
    lines += _usage_lines(summary)
    return "\n".join(lines)


BOX_COLUMNS = [("mIoU", "mIoU"), ("ACC@0.3", "ACC@.3"), ("ACC@0.5", "ACC@.5"), ("box_precision@0.5", "P@.5"), ("box_recall@0.5", "R@.5"), ("detection_balanced_accuracy", "DetBAcc")]


def box_table(summary: RunSummary, spec: RunSpec) -> str:
    """Box localisation figures (%) per category and overall (harness/metrics/boxes.py)."""
    empty = _no_answers(summary, spec, "images")
    if empty:
        return empty
    metrics = summary.box_metrics
    rows = {**metrics.get("per_category", {}), "overall": metrics.get("overall", {})}
    width = max([len(name) for name in rows] + [8])
    header = f"{'':<{width}}  " + "  ".join(f"{title:>7}" for _, title in BOX_COLUMNS) + "   images"
    lines = [_title(summary, spec, "defect boxes (%; mIoU and ACC over anomalous images)"), header, "-" * len(header)]
    for name, row in rows.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_cell(row.get(key)):>7}" for key, _ in BOX_COLUMNS) + f"  {row.get('images', 0):>7}")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    lines.append(f"{summary.n_samples}/{summary.n_questions} images answered; reply status: {statuses}")
    if summary.error_counts:
        lines.append("failed samples by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items())))
    return "\n".join(lines + _usage_lines(summary))


def official_table(summary: RunSummary, spec: RunSpec) -> list[str]:
    """The official MMAD scorer's table (its rows and columns as its CSV has them)."""
    compat = summary.mmad_compat
    rows = {r: compat["values"][r] for r in compat["rows"]}
    lines = _table(_title(summary, spec, "accuracy %, official MMAD scorer"), rows, [s.value for s in SUBTASKS] + ["Average"])
    lines.append(f"records removed (answer not A-E): {compat['removed']}, skipped after a removal: {compat['skipped']}")
    return lines


def results_table(summary: RunSummary, spec: RunSpec) -> str:
    """The run's results as its task kind prints them (harness/tasks/kinds.py)."""
    from harness.tasks.kinds import task_kind

    return task_kind(spec.task).table(summary, spec)


def mcq_table(summary: RunSummary, spec: RunSpec) -> str:
    """Accuracy (%) per dataset and subtask, the average, and the chance level beside it, headed by
    the run's headline scoring (harness/metrics/headline.py)."""
    empty = _no_answers(summary, spec, "questions")
    if empty:
        return empty
    columns = [s.value for s in SUBTASKS] + ["Average"]
    if headline(spec, summary).mode == "mmad-compat":
        lines = official_table(summary, spec)
    else:
        strict = summary.strict
        chance = {"chance": strict["chance"]["Average"]}
        lines = _table(_title(summary, spec, "accuracy % (strict: unanswered = wrong)"), strict["accuracy"], columns, chance)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    lines.append(f"{summary.n_samples}/{summary.n_questions} questions answered; answer status: {statuses}")
    if summary.circular:
        row = summary.circular["accuracy"].get("Average", {})
        lines.append(
            f"circular (right in every rotation of the options, {summary.circular['questions']} questions): "
            + "  ".join(f"{SHORT[c]} {_cell(row.get(c)).strip()}" for c in columns)
        )
    image = summary.image_metrics
    if image.get("mean"):
        mean = image["mean"]
        lines.append(
            f"image-level (detection scores, mean of {len(image['per_category'])} categories): AUROC {100 * mean['image_auroc']:.1f}, "
            f"AP {100 * mean['image_ap']:.1f}, F1-max {100 * mean['image_f1_max']:.1f}"
        )
    if summary.error_counts:
        lines.append("failed samples by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items())))
    lines += _usage_lines(summary)
    if summary.skipped_records:
        lines.append(f"{len(summary.skipped_records)} bad records skipped (--skip-bad); listed in summary.json")
    return "\n".join(lines)


def _usage_lines(summary: RunSummary) -> list[str]:
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


ROBUSTMAD_COLUMNS = ("all", "general", "domain")


def robustmad_table(summary: RunSummary, spec: RunSpec) -> str:
    """RobustMAD: accuracy (%) per robustness category, overall and per difficulty, as its scripts
    report them; beside it the model's published row on the same release, and yours − published
    with the 95% interval your run's size allows."""
    from harness.tasks.robustmad_kind import difference_cells

    empty = _no_answers(summary, spec, "questions")
    if empty:
        return empty
    metrics = summary.metrics
    rows = {category: {"all": 100 * row["accuracy"], **{d: 100 * c["accuracy"] for d, c in row["by_difficulty"].items()}} for category, row in metrics["categories"].items()}
    published = {f"published {category}": {d: 100 * v for d, v in cells.items()} for category, cells in (metrics.get("published") or {}).items()}
    lines = _table(_title(summary, spec, "RobustMAD accuracy % (a failed or unparsable answer is wrong)"), rows, list(ROBUSTMAD_COLUMNS), published or None)
    overall = metrics.get("overall")
    lines.append(f"{summary.n_samples}/{summary.n_questions} questions answered" + (f"; overall {100 * overall:.1f}%" if overall is not None else "")
                 + f"; protocol {spec.protocol}" + (f"; release {metrics['release']}" if metrics.get("release") else "; not a published release: no published row beside it"))
    for category, (difference, low, high) in difference_cells(summary).items():
        lines.append(f"{category}: yours − published {100 * difference:+.1f} points (95% interval {100 * low:+.1f} to {100 * high:+.1f})")
    lines += _usage_lines(summary)
    return "\n".join(lines)


OPEN_COLUMNS = ("overall", "accuracy", "complete", "relevance", "style", "accurate %")


def open_table(summary: RunSummary, spec: RunSpec) -> str:
    """RobustMAD open answers: the judge's mean scores (1-5) per category, with its name, apart
    from exact accuracy (a judge's opinion moves with the judge)."""
    empty = _no_answers(summary, spec, "questions")
    if empty:
        return empty
    metrics = summary.metrics
    order = ("overall_score", "technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity")
    rows = {category: {**dict(zip(OPEN_COLUMNS, (row["scores"][k] for k in order))), "accurate %": 100 * row["accurate"] / row["judged"]}
            for category, row in metrics.get("categories", {}).items()}
    published = {f"published {category}": dict(zip(OPEN_COLUMNS, (cells["all"][k] for k in order))) for category, cells in (metrics.get("published") or {}).items() if "all" in cells}
    lines = _table(_title(summary, spec, f"RobustMAD open answers judged by {metrics.get('judge')} (scores 1-5; not exact)"), rows, list(OPEN_COLUMNS), published or None)
    overall = metrics.get("overall")
    lines.append(f"{metrics.get('judged', 0)}/{metrics.get('answers', 0)} answers judged" + (f"; mean overall score {overall:.2f}" if overall is not None else "")
                 + f"; {metrics.get('unparsable_verdicts', 0)} verdicts not JSON, {metrics.get('judge_errors', 0)} judge calls failed"
                 + (" (asked again by iadbench eval --resume RUN --retry-errors)" if metrics.get("judge_errors") else ""))
    from harness.tasks.robustmad_open import open_differences

    for category, (difference, low, high) in open_differences(summary).items():
        lines.append(f"{category}: overall yours − published {difference:+.2f} (95% interval {low:+.2f} to {high:+.2f})")
    if metrics.get("published_note"):
        lines.append(metrics["published_note"])
    usage = metrics.get("judge_usage") or {}
    cost = metrics.get("judge_cost_usd")
    lines.append(f"judge: {usage.get('prompt_tokens', 0):,} prompt + {usage.get('completion_tokens', 0):,} completion tokens; cost "
                 + ("unknown" if cost is None else f"${cost:.4f}") + f"; {metrics.get('judge_cached', 0)} from cache")
    lines += _usage_lines(summary)
    return "\n".join(lines)
