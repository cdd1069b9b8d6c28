"""`iadbench ablate`: the same model and questions under several strategy arms, side by side.

Each arm is a normal run folder (resumable, sharing the response cache) under one ablation
folder. The table gives each arm's accuracy per subtask (MMAD's macro means), its difference from
the baseline arm with a 95% paired bootstrap interval (the same resampled questions for both
arms, resampled per dataset, subtask and, for detection, per class), and what the arm cost. Whether a
difference is significant is decided by the report's one test (harness/report/stats.py:
SIGNIFICANCE), so ablation.md and `iadbench report` never give one pair two verdicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.report.runs import load_run
from harness.report.rundata import RunData
from harness.report.stats import SIGNIFICANCE, paired_comparison
from harness.schema import SUBTASKS
from harness.storage.files import write_json_atomically

RESAMPLES = 1000
COLUMNS = [s.value for s in SUBTASKS] + ["Average"]


@dataclass(frozen=True)
class Arm:
    name: str  # as written: baseline, rag, rag+agent=expert:bbox; jpeg:3 for a degradation arm
    strategies: list[str]
    perturb: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-")


def parse_arms(text: str) -> list[Arm]:
    """Arms separated by commas; strategies inside an arm joined by '+'; 'baseline' has none."""
    arms = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        strategies = [] if name == "baseline" else [s for s in name.split("+") if s]
        arms.append(Arm(name, strategies))
    if not arms:
        raise ConfigError("--strategies lists no arm; e.g. baseline,rag,agent=expert:bbox")
    if arms[0].strategies:
        arms.insert(0, Arm("baseline", []))  # every delta is against the baseline
    if len({a.slug for a in arms}) != len(arms):
        raise ConfigError(f"--strategies {text!r} names an arm twice")
    return arms


def sweep_arms(kinds: str) -> list[Arm]:
    """`--perturb-sweep jpeg,gaussian_noise`: one arm per kind and severity 1..5 (the baseline arm
    is severity 0)."""
    from harness.asking.perturb import SEVERITIES, canonical_perturbations

    names = [k.strip() for k in kinds.split(",") if k.strip()]
    return [Arm(p, [], (p,)) for p in canonical_perturbations([f"{k}:{s}" for k in names for s in range(1, SEVERITIES + 1)])]


def _groups(run: RunData) -> dict[tuple[str, int, bool | None], np.ndarray]:
    """Question indices per (dataset, subtask, class for detection)."""
    groups: dict[tuple[str, int, bool | None], np.ndarray] = {}
    for dataset in sorted(set(run.dataset)):
        for index in range(len(SUBTASKS)):
            members = (run.dataset == dataset) & (run.subtask == index)
            if index == 0:
                for cls in (False, True):
                    part = np.flatnonzero(members & (run.anomalous == cls))
                    if part.size:
                        groups[(dataset, index, cls)] = part
            elif members.any():
                groups[(dataset, index, None)] = np.flatnonzero(members)
    return groups


def _table(group_accuracy: dict, datasets: list[str]) -> dict[str, np.ndarray]:
    """Column values (as the strict table computes them) from per-group accuracies (arrays of draws)."""
    per_dataset: dict[str, dict[int, np.ndarray]] = {}
    for (dataset, index, _), values in group_accuracy.items():
        per_dataset.setdefault(dataset, {}).setdefault(index, []).append(values)
    columns: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
    for dataset in datasets:
        row = {index: 100 * np.mean(parts, axis=0) for index, parts in per_dataset.get(dataset, {}).items()}
        for index, values in row.items():
            columns[COLUMNS[index]].append(values)
        if row:
            columns["Average"].append(np.mean(list(row.values()), axis=0))
    return {column: np.mean(values, axis=0) for column, values in columns.items() if values}


def paired_deltas(base: RunData, arm: RunData, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """{column: (arm − baseline, low, high)} with a 95% paired bootstrap interval."""
    if base.ids.shape != arm.ids.shape or not np.array_equal(base.ids, arm.ids):
        raise ConfigError(f"{arm.path} and {base.path} did not answer the same questions; an ablation needs identical question sets")
    rng = np.random.default_rng(seed)
    groups = _groups(base)
    datasets = sorted(set(base.dataset))
    point_base = _table({k: base.correct[v].mean() for k, v in groups.items()}, datasets)
    point_arm = _table({k: arm.correct[v].mean() for k, v in groups.items()}, datasets)
    draws_base, draws_arm = {}, {}
    for key, members in groups.items():
        picks = members[rng.integers(0, members.size, (RESAMPLES, members.size))]  # the same picks for both arms
        draws_base[key] = base.correct[picks].mean(axis=1)
        draws_arm[key] = arm.correct[picks].mean(axis=1)
    boot_base, boot_arm = _table(draws_base, datasets), _table(draws_arm, datasets)
    result = {}
    for column in point_base:
        low, high = np.quantile(boot_arm[column] - boot_base[column], [0.025, 0.975])
        result[column] = (float(point_arm[column] - point_base[column]), float(low), float(high))
    return result


def ablation_table(folders: list[tuple[Arm, Path]]) -> dict:
    runs = [(arm, load_run(path, circular=True)) for arm, path in folders]
    base = runs[0][1]
    rows = []
    for arm, run in runs:
        deltas = paired_deltas(base, run) if run is not base else {c: (0.0, 0.0, 0.0) for c in COLUMNS}
        tested = paired_comparison(base, run) if run is not base else None
        # the test's "All questions" row stands for the Average column
        tests = {("Average" if t["column"] == "All questions" else t["column"]): t for t in (tested or {}).get("tests", [])}
        summary = run.summary
        # A circular arm is measured as circular evaluation measures: right in every rotation.
        accuracy = (summary.circular or summary.strict)["accuracy"]["Average"]
        rows.append({
            "arm": arm.name,
            "run": str(run.path),
            "circular": "circular" in run.spec.strategies,
            "accuracy": {c: accuracy.get(c) for c in COLUMNS},
            "delta": {c: deltas.get(c) for c in COLUMNS},
            "p_holm": {c: tests[c]["p_holm"] if c in tests else None for c in COLUMNS},
            "significant": {c: bool(tests.get(c, {}).get("significant")) for c in COLUMNS},
            "tokens": summary.usage.prompt_tokens + summary.usage.completion_tokens,
            "cost_usd": summary.cost_usd,
            "wall_time_s": summary.wall_time_s,
        })
    return {"columns": COLUMNS, "rows": rows, "resamples": RESAMPLES, "significance": SIGNIFICANCE}


def markdown(table: dict) -> str:
    """Two narrow tables: accuracy with the difference from the first arm (* where the report's
    paired test calls it significant), then the differences' intervals."""
    short = ["AD", "DefCls", "DefLoc", "DefDesc", "DefAna", "ObjCls", "ObjAna", "Average"]
    first = table["rows"][0]["arm"]
    lines = ["| arm | " + " | ".join(short) + " | tokens | cost | time |", "|---" * (len(short) + 4) + "|"]
    intervals = ["| arm | " + " | ".join(short) + " |", "|---" * (len(short) + 1) + "|"]
    for index, row in enumerate(table["rows"]):
        cells, bounds = [], []
        for column in table["columns"]:
            value, delta = row["accuracy"][column], row["delta"][column]
            text = "-" if value is None else f"{value:.1f}"
            if delta and index > 0:
                text += f" {delta[0]:+.1f}" + ("*" if row["significant"][column] else "")
                bounds.append(f"[{delta[1]:+.1f}, {delta[2]:+.1f}]")
            else:
                bounds.append("-")
            cells.append(text)
        cost = "-" if row["cost_usd"] is None else f"${row['cost_usd']:.2f}"
        time = "-" if row["wall_time_s"] is None else f"{row['wall_time_s']:.0f} s"
        lines.append(f"| {row['arm']} | " + " | ".join(cells) + f" | {row['tokens']:,} | {cost} | {time} |")
        if index > 0:
            intervals.append(f"| {row['arm']} | " + " | ".join(bounds) + " |")
    lines.append("")
    lines.append(f"Accuracy % (strict, MMAD macro means), then the difference from {first}; * where it is significant by "
                 f"{table['significance']} (the test `iadbench report` uses; the Average column by the all-questions row).")
    if any(row.get("circular") for row in table["rows"]):
        lines.append("Circular arms count a question right only if it was answered right in every rotation of its options.")
    if len(intervals) > 2:
        lines += ["", f"95% paired bootstrap intervals of the difference from {first} ({table['resamples']} resamples of the same questions; "
                  "they describe the difference, the test above decides it):", "", *intervals]
    return "\n".join(lines) + "\n"


def write_outputs(table: dict, folder: Path) -> None:
    from harness.storage.files import write_text_atomically

    # replaced whole, never written through a link planted at either name (JSON through the one finite writer)
    write_json_atomically(folder / "ablation.json", table)
    write_text_atomically(folder / "ablation.md", markdown(table))
