"""MMAD's published results as reference rows (harness/published/, the official CSVs)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from importlib import resources

# From the MMAD paper (headline averages only; no per-subtask table was released for these).
PAPER_ROWS = {"Human expert": 86.65, "Ordinary person": 78.69}


@dataclass(frozen=True)
class PublishedRow:
    model: str
    shots: int
    averages: dict[str, float]  # the CSV's "Average" row: the 7 subtasks and "Average"


def published_rows() -> list[PublishedRow]:
    rows = []
    for resource in sorted(resources.files("harness.published").iterdir(), key=lambda r: r.name):
        match = re.fullmatch(r"answers_(\d+)_shot_(.+?)_accuracy(?:_test\d+)?\.csv", resource.name)
        if not match:
            continue
        table = list(csv.reader(io.StringIO(resource.read_text())))
        header, average = table[0], next(r for r in table if r[0] == "Average")
        values = {column: float(value) for column, value in zip(header[1:], average[1:])}
        rows.append(PublishedRow(match.group(2), int(match.group(1)), values))
    rows.sort(key=lambda row: -row.averages["Average"])
    return rows


def _gpt4vad_table() -> dict:
    import tomllib

    return tomllib.loads(resources.files("harness.published").joinpath("gpt4vad_references.toml").read_text())


def gpt4vad_references(data: str) -> list[dict]:
    """Published zero-shot rows for a GPT-4V-AD run's dataset (mvtec:DIR, visa:DIR), in %."""
    kind = data.partition(":")[0]
    return [row for row in _gpt4vad_table()["reference"] if row["dataset"] == kind]


def gpt4vad_coverage(data: str, images_per_category: dict[str, int]) -> tuple[bool, str]:
    """Whether a run answered the dataset's whole test split (the published rows' data), checked
    category by category; else the words that say why no reference is shown."""
    kind = data.partition(":")[0]
    split = _gpt4vad_table().get("test_split", {}).get(kind)
    if split is None:
        return False, "no published rows for this dataset"
    total = sum(split.values())
    covered = sum(images_per_category.values())
    if images_per_category != split:
        return False, f"subset ({covered:,} of {total:,} images): not comparable"
    return True, ""
