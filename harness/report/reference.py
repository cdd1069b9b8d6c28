"""A run beside its published MMAD row: which protocol it used, and the difference with its interval.

A published row is only a fair reference when the run used the official MMAD release and its
family's official protocol; otherwise the lines say why no difference is shown (or what differs).
The interval is a bootstrap over the run's own answers, as the official scorer counts them; the
published value is taken as exact (its per-question answers were not released).
"""

from __future__ import annotations

import re

import numpy as np

from harness.report.published import PublishedRow, published_rows
from harness.schema import MMAD_TYPE_TO_SUBTASK, RunSpec, RunSummary, SampleResult, Subtask



def _normalised(name: str) -> str:
    name = name.lower().removesuffix("-hf")
    name = re.sub(r"-20\d\d-\d\d-\d\d$", "", name)  # dated API snapshots: gpt-4o-2024-08-06
    return re.sub(r"^llava-1\.(\d)", r"llava-v1.\1", name)  # llava-hf/llava-1.5-7b-hf ↔ llava-v1.5-7b


def published_row_for(model: str, shots: int) -> PublishedRow | None:
    """The published row of the same model (by name, across hub and API spellings) and shots."""
    wanted = _normalised(model.split("/", 1)[-1].rstrip("/").rsplit("/", 1)[-1])
    return next((row for row in published_rows() if row.shots == shots and _normalised(row.model) == wanted), None)


def compat_average_interval(records: list[dict], seed: int = 0, resamples: int = 2000, confidence: float = 0.95) -> tuple[float, float] | None:
    """Bootstrap interval of the official scorer's macro average from an answers file's records,
    combined as that scorer combines its cells: every dataset × every question type seen, an empty
    cell (or detection class) counting 0, detection balanced over normal/anomalous by the `good`
    path rule. Each cell's count is drawn as Binomial(n, p̂), the same as resampling its records.
    (Records after a removed one, which the scorer also skips, are kept here.)"""
    rng = np.random.default_rng(seed)
    valid = ("A", "B", "C", "D", "E")
    kept = [r for r in records if r["gpt_answer"] in valid and r["correct_answer"] in valid]
    if not kept:
        return None
    dataset_of = lambda r: r["image"].split("/", 1)[0]  # noqa: E731
    type_of = lambda r: MMAD_TYPE_TO_SUBTASK[r["question_type"]].value if r["question_type"] in MMAD_TYPE_TO_SUBTASK else r["question_type"]  # noqa: E731
    datasets = list(dict.fromkeys(dataset_of(r) for r in records))
    types = list(dict.fromkeys(type_of(r) for r in records))

    def rate(group: list[dict]) -> np.ndarray:
        if not group:
            return np.zeros(resamples)
        return rng.binomial(len(group), np.mean([r["gpt_answer"] == r["correct_answer"] for r in group]), resamples) / len(group)

    rows = []
    for dataset in datasets:
        columns = []
        for question_type in types:
            cell = [r for r in kept if dataset_of(r) == dataset and type_of(r) == question_type]
            if question_type == Subtask.ANOMALY_DETECTION.value:
                columns.append(100 * (rate([r for r in cell if "good" in r["image"]]) + rate([r for r in cell if "good" not in r["image"]])) / 2)
            else:
                columns.append(100 * rate(cell))
        rows.append(np.mean(columns, axis=0))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.mean(rows, axis=0), [alpha, 1 - alpha])
    return float(low), float(high)


def release_coverage(spec: RunSpec, summary: RunSummary) -> tuple[bool, str]:
    """Whether a run answered MMAD's whole official release (a published row's data), and if not,
    the words that say why no difference is shown."""
    from harness.data.releases import releases

    release = next((r for r in releases() if r.name == spec.data_release), None)  # recorded when the run began
    if release is None or not release.official:
        return False, "this question file is not the official MMAD release"
    if summary.n_questions != release.questions:
        return False, f"subset ({summary.n_questions:,} of {release.questions:,} questions): not comparable"
    return True, ""


def comparison_lines(spec: RunSpec, summary: RunSummary, folder) -> list[str]:
    """What the printed table of an MMAD-style run needs beside it: the protocol, the other score,
    the published row."""
    from harness.results.export import answers_file_records
    from harness.metrics.headline import headline

    lines = []
    if spec.protocol == "harmonised":
        lines.append("protocol: harmonised (one layout for every model, strict parsing; not the protocol of a published row: --suite mmad-official)")
    else:
        lines.append(f"protocol: {spec.protocol}, MMAD's official script for this family; {len(spec.protocol_differences)} known differences in spec.json")
        unrecorded = summary.mmad_compat.get("unrecorded", 0)
        if unrecorded:
            lines.append(f"{unrecorded} questions the official script would have recorded no answer for (left out of its score; strict counts them wrong)")
    lead = headline(spec, summary)
    if lead.other_average is not None:
        lines.append(f"{'strict average (unparsable = wrong, every question counted)' if lead.mode == 'mmad-compat' else 'official-scorer average'}: {lead.other_average:.2f}")
    row = published_row_for(spec.model, spec.shots)
    if row is None:
        return lines
    published = row.averages["Average"]
    comparable, why = release_coverage(spec, summary)
    if not comparable:
        lines.append(f"published MMAD row {row.model} ({row.shots}-shot): {published:.2f}; no difference shown: {why}")
        return lines
    compat_average = summary.mmad_compat.get("values", {}).get("Average", {}).get("Average")
    samples = folder.read_samples(sample_type=SampleResult)
    records = answers_file_records(samples)
    interval = compat_average_interval(records)
    if compat_average is None or interval is None:
        return lines
    caveat = "" if spec.protocol != "harmonised" else " (harmonised protocol: not the published row's protocol)"
    lines.append(
        f"published MMAD row {row.model} ({row.shots}-shot): {published:.2f}; yours − published: {compat_average - published:+.2f} "
        f"[{interval[0] - published:+.2f}, {interval[1] - published:+.2f}] (95% bootstrap over your answers){caveat}"
    )
    return lines
