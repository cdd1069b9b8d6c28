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


def gpt4vad_references(data: str) -> list[dict]:
    """Published zero-shot rows for a GPT-4V-AD run's dataset (mvtec:DIR, visa:DIR), in %."""
    import tomllib

    kind = data.partition(":")[0]
    table = tomllib.loads(resources.files("harness.published").joinpath("gpt4vad_references.toml").read_text())
    return [row for row in table["reference"] if row["dataset"] == kind]
