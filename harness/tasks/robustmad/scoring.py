"""RobustMAD's answer parser and scorer, as its scripts run them (evaluation/mcq_*.py @ 3711b52):
the letter from a list of patterns tried in order, then any A–E; accuracy per robustness category,
per category and difficulty, and per category, object-defect pair and question, written in the
layout of its `accuracy_*.csv` files; its published rows beside a run on the same release.
"""

from __future__ import annotations

import csv
import math
import re
from functools import lru_cache
from importlib import resources

from harness.storage.files import csv_text
from harness.tasks.robustmad.data import DIFFICULTIES

# parse_model_response: the patterns in order on the upper-cased, stripped reply, then any A-E.
_PATTERNS = tuple(re.compile(p) for p in (
    r"\b([A-E])\b",
    r"\b([A-E])(?=[\.\,\)\]\}\>\:\s]|$)",
    r"(?:answer|option|choice)[\s\:]*([A-E])\b",
    r"\[([A-E])\]",
    r"\*\*([A-E])\*\*",
    r"^([A-E])\s",
))
EMPTY, INVALID = "Error: Empty response", "Error: Invalid response"
# compute_and_log_accuracy drops this sentence from pair-wise questions before grouping them.
_PAIRWISE_LEAD = "The first image shows a normal, defect-free reference object. The second image shows the query object for inspection. "
CSV_COLUMNS = ("robustness_category", "difficulty", "object_specie_pair", "num_questions", "question", "correct_questions", "incorrect_questions", "accuracy_per_pair", "average_per_category")


def parse_answer(reply: str | None) -> str:
    """The script's answer: a letter A–E, or its error string (never right)."""
    if not reply:
        return EMPTY
    text = reply.strip().upper()
    for pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    fallback = re.search(r"[A-E]", text)
    return fallback.group(0) if fallback else INVALID


# results/gemini3flash_s0/robust_parsing_gemini3flash.py, run over Gemini 3 Flash's answers before
# its rows were published: every match of these patterns, the one that starts last wins.
_LAST_PATTERNS = tuple(re.compile(p) for p in (
    r"\b([A-E])\b",
    r"\b([A-E])(?=[\.\,\)\]\}\>\:\s]|$)",
    r"(?:ANSWER|OPTION|CHOICE|ASSESSMENT)[\s\:]*([A-E])\b",
    r"\[([A-E])\]",
    r"\*\*([A-E])\*\*",
    r"^([A-E])\s",
    r"FINAL\s+ASSESSMENT:\s*([A-E])",
    r"([A-E])[\.\s]*$",
))


def parse_answer_last(reply: str | None) -> str:
    """The post-hoc parser of the Gemini 3 Flash rows: of all pattern matches the one starting
    last (a stable sort: at one position the later pattern's), then the last standalone A–E, then
    the last A–E anywhere."""
    if not reply:
        return EMPTY
    text = reply.strip().upper()
    candidates = sorted(((m.start(1), m.group(1)) for pattern in _LAST_PATTERNS for m in pattern.finditer(text)), key=lambda c: c[0])
    if candidates:
        return candidates[-1][1]
    letters = [c for c in text if c in "ABCDE"]  # (no standalone letter matched, or the first pattern would have)
    return letters[-1] if letters else INVALID


PARSERS = {"first-pattern": parse_answer, "last-candidate": parse_answer_last}


def category_scores(samples: list) -> dict:
    """{category: {questions, correct, accuracy, by_difficulty: {general|domain: {...}}}} in the
    scripts' category order (sorted short names)."""
    result: dict = {}
    for sample in samples:
        row = result.setdefault(sample.robustness_category, {"questions": 0, "correct": 0, "by_difficulty": {}})
        row["questions"] += 1
        row["correct"] += bool(sample.correct)
        cell = row["by_difficulty"].setdefault(sample.difficulty, {"questions": 0, "correct": 0})
        cell["questions"] += 1
        cell["correct"] += bool(sample.correct)
    for row in result.values():
        row["accuracy"] = row["correct"] / row["questions"]
        for cell in row["by_difficulty"].values():
            cell["accuracy"] = cell["correct"] / cell["questions"]
    return dict(sorted(result.items()))


def question_groups(samples) -> dict[tuple[str, str, str], list]:
    """Samples by (category, object-defect pair, question without the pair-wise lead), as the
    scripts group them for their CSVs (accuracy and judged scores alike)."""
    groups: dict[tuple[str, str, str], list] = {}
    for sample in samples:
        groups.setdefault((sample.robustness_category, sample.pair, sample.question.replace(_PAIRWISE_LEAD, "")), []).append(sample)
    return groups


def accuracy_csv(samples: list) -> str:
    """The accuracy CSV as its scripts write it (pandas groupby order and number formatting)."""
    groups = question_groups(samples)
    rows = []
    totals: dict[str, list[int]] = {}
    for (category, pair, question), members in sorted(groups.items()):
        correct = sum(bool(s.correct) for s in members)
        rows.append([category, members[0].difficulty, pair, len(members), question, correct, len(members) - correct, number(correct / len(members)), ""])
        total = totals.setdefault(category, [0, 0])
        total[0] += correct
        total[1] += len(members)
    for category, (correct, questions) in totals.items():
        rows.append([category, "", "Average", questions, "", correct, questions - correct, "", number(correct / questions if questions else 0)])
    scores = category_scores(samples)
    for category in sorted(scores):
        for difficulty in DIFFICULTIES:
            cell = scores[category]["by_difficulty"].get(difficulty)
            if cell is None:
                rows.append([category, difficulty, "Average_by_Difficulty", 0, "", 0, 0, "", "0.0"])
            else:
                rows.append([category, difficulty, "Average_by_Difficulty", cell["questions"], "", cell["correct"], cell["questions"] - cell["correct"], "", number(cell["accuracy"])])
    return csv_text([CSV_COLUMNS, *rows])  # category and difficulty come from the data: formulas neutralised


def number(value: float) -> str:
    """A float as pandas writes it (repr: 1.0, 0.925609756097561)."""
    return repr(float(value))


@lru_cache(maxsize=1)
def published_rows() -> list[dict]:
    """Every published model's category averages and difficulty splits (harness/published/robustmad/accuracy_rows.csv)."""
    text = resources.files("harness.published").joinpath("robustmad", "accuracy_rows.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return [row | {"questions": int(row["questions"]), "correct": int(row["correct"])} for row in csv.DictReader(lines)]


# Result folders named otherwise than the model their script ran (MODEL_NAME "gemini-3-flash-preview"
# wrote to results/gemini3flash_s0/), by the normalised names of both.
_FOLDER_NAMES = {"gemini3flashpreview": "gemini3flash"}


def _name(model: str) -> str:
    name = re.sub(r"[^a-z0-9]", "", model.rsplit("/", 1)[-1].lower())
    return _FOLDER_NAMES.get(name, name)


@lru_cache(maxsize=1)
def published_open_rows() -> list[dict]:
    """Every published model's judged open-answer means per category and difficulty (harness/published/robustmad/open_rows.csv)."""
    text = resources.files("harness.published").joinpath("robustmad", "open_rows.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return [row | {"questions": int(row["questions"])} for row in csv.DictReader(lines)]


def published_open_for(model: str, release: str | None) -> dict[str, dict[str, dict[str, float]]] | None:
    """The published {category: {all|general|domain: {score: mean, questions: n}}} of the model's
    own open-answer row on this release (judged by gpt-5), or None."""
    mine = [row for row in published_open_rows() if release is not None and row["release"] == release and _name(row["model"]) == _name(model)]
    if not mine:
        return None
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in mine:
        scores = {k: float(row[k]) for k in ("technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity", "overall_score")}
        table.setdefault(row["category"], {})[row["difficulty"]] = scores | {"questions": row["questions"]}
    return table


def published_for(model: str, release: str | None) -> dict[str, dict[str, float]] | None:
    """The published {category: {all|general|domain: accuracy}} of the model's own row on this
    release (by name: hf/Qwen/Qwen2.5-VL-3B-Instruct is Qwen2_5_VL_3B_Instruct), or None."""
    if release is None:
        return None
    mine = [row for row in published_rows() if row["release"] == release and _name(row["model"]) == _name(model)]
    if not mine:
        return None
    table: dict[str, dict[str, float]] = {}
    for row in mine:
        table.setdefault(row["category"], {})[row["difficulty"]] = row["correct"] / row["questions"]
    return table


def interval(correct: int, questions: int) -> tuple[float, float]:
    """A 95% Wilson interval of an accuracy: how far a published figure may be from a rerun's."""
    if not questions:
        return (math.nan, math.nan)
    z, p = 1.959963984540054, correct / questions
    centre = (p + z * z / (2 * questions)) / (1 + z * z / questions)
    half = z * math.sqrt(p * (1 - p) / questions + z * z / (4 * questions * questions)) / (1 + z * z / questions)
    return centre - half, centre + half


def difference_cells(summary) -> dict[str, tuple[float, float, float]]:
    """Per category: (yours − published, and the 95% interval of that difference from your run's
    size), for a run whose model has a published row on its release."""
    published = summary.metrics.get("published") or {}
    cells = {}
    for category, row in summary.metrics.get("categories", {}).items():
        if "all" in published.get(category, {}):
            low, high = interval(row["correct"], row["questions"])
            reference = published[category]["all"]
            cells[category] = (row["accuracy"] - reference, low - reference, high - reference)
    return cells


def open_differences(summary) -> dict[str, tuple[float, float, float]]:
    """Per category: yours − published mean overall score, with a 95% interval from your run's spread."""
    published = summary.metrics.get("published") or {}
    cells = {}
    for category, row in summary.metrics.get("categories", {}).items():
        if "all" in published.get(category, {}):
            difference = row["scores"]["overall_score"] - published[category]["all"]["overall_score"]
            half = 1.959963984540054 * row.get("overall_se", 0.0)
            cells[category] = (difference, difference - half, difference + half)
    return cells
