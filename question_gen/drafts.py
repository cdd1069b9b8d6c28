"""Draft questions for one image: the right answer and its distractors, before option shuffling.

Each builder returns a Draft, or a reason why the question cannot be asked truthfully (the reason
is counted in the generation report; a question is never invented).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from harness.prompting import render_text
from harness.schema import Subtask
from question_gen import knowledge
from question_gen.attributes import (
    TOUCHED_CELL_SHARE,
    DefectAttributes,
    adjacent_cells,
    cell_name,
)

N_OPTIONS = 4


@dataclass(frozen=True)
class Draft:
    subtask: Subtask
    text: str
    correct: str
    distractors: tuple[str, ...]
    provenance: dict | None = field(default=None, compare=False)  # LLM-written questions: who wrote and checked them


@dataclass(frozen=True)
class Skip:
    subtask: Subtask
    reason: str


@dataclass(frozen=True)
class ImageContext:
    """Everything the builders may use about one query image."""

    category: str
    label: str
    defect_folder: str | None
    attributes: DefectAttributes | None
    category_defects: tuple[str, ...]  # defect folder names of this category
    dataset_objects: tuple[str, ...]  # object names of the dataset's other categories
    object_knowledge: knowledge.ObjectKnowledge | None


def _pick(pool: list[str], count: int, exclude: set[str]) -> list[str]:
    """Up to `count` distinct entries of `pool` (in order of preference) not in `exclude`."""
    seen, picked = set(exclude), []
    for item in pool:
        if item not in seen:
            picked.append(item)
            seen.add(item)
        if len(picked) == count:
            break
    return picked


def _shuffled(rng: np.random.Generator, items) -> list[str]:
    items = list(items)
    rng.shuffle(items)
    return items


def anomaly_detection(ctx: ImageContext, rng: np.random.Generator) -> Draft:
    yes, no = render_text("question_gen/yes.j2"), render_text("question_gen/no.j2")
    correct, wrong = (yes, no) if ctx.label == "anomaly" else (no, yes)
    return Draft(Subtask.ANOMALY_DETECTION, render_text("question_gen/anomaly_detection.j2"), correct, (wrong,))


def defect_classification(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    correct = knowledge.defect_display_name(ctx.defect_folder or "")
    _, _, generic = knowledge.defect_table()
    # Prefer the category's own other defect kinds (the hard, realistic confusions), then generic ones.
    own = _shuffled(rng, [knowledge.defect_display_name(d) for d in ctx.category_defects])
    distractors = _pick(own + _shuffled(rng, generic), N_OPTIONS - 1, {correct})
    return Draft(Subtask.DEFECT_CLASSIFICATION, render_text("question_gen/defect_classification.j2"), correct, tuple(distractors))


def defect_localization(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    attributes = ctx.attributes
    assert attributes is not None
    if attributes.main_cell is None:
        return Skip(Subtask.DEFECT_LOCALIZATION, "defect spread over several grid cells (no cell holds half of it)")
    row, col = attributes.main_cell
    excluded = adjacent_cells(row, col) | {(row, col)}
    candidates = [
        (r, c)
        for r, c in itertools.product(range(3), range(3))
        if (r, c) not in excluded and attributes.cell_shares[r][c] < TOUCHED_CELL_SHARE
    ]
    if len(candidates) < N_OPTIONS - 1:
        return Skip(Subtask.DEFECT_LOCALIZATION, "fewer than 3 untouched, non-adjacent grid cells for distractors")
    chosen = rng.choice(len(candidates), N_OPTIONS - 1, replace=False)
    option = lambda cell: render_text("question_gen/localization_option.j2", cell=cell_name(*cell))  # noqa: E731
    distractors = tuple(option(candidates[i]) for i in sorted(chosen))
    return Draft(Subtask.DEFECT_LOCALIZATION, render_text("question_gen/defect_localization.j2"), option((row, col)), distractors)


_SIZES, _SHAPES, _TONES, _COUNTS = ("small", "medium", "large"), ("elongated", "round", "irregular"), (
    "darker",
    "brighter",
    "discoloured",
    "similar",
), (1, 2, 3)


def _description(size: str, shape: str, tone: str, count: int) -> str:
    return render_text("question_gen/description_option.j2", size=size, shape=shape, tone=tone, count=count)


def defect_description(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    attributes = ctx.attributes
    assert attributes is not None
    truth = (attributes.size, attributes.shape, attributes.tone, min(attributes.count, 3))
    # Distractors change one or two attributes: close enough to need looking, far enough to be wrong.
    alternatives = [
        combo
        for combo in itertools.product(_SIZES, _SHAPES, _TONES, _COUNTS)
        if 1 <= sum(a != b for a, b in zip(combo, truth)) <= 2
    ]
    chosen = rng.choice(len(alternatives), N_OPTIONS - 1, replace=False)
    distractors = tuple(_description(*alternatives[i]) for i in sorted(chosen))
    return Draft(Subtask.DEFECT_DESCRIPTION, render_text("question_gen/defect_description.j2"), _description(*truth), distractors)


def defect_analysis(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    known = knowledge.defect_knowledge(ctx.defect_folder or "")
    if known is None:
        return Skip(Subtask.DEFECT_ANALYSIS, f"no knowledge entry for defect {ctx.defect_folder!r} (question_gen/data/defects.toml)")
    kinds, _, _ = knowledge.defect_table()
    field = "cause" if rng.random() < 0.5 else "consequence"
    pool = _shuffled(rng, [getattr(k, field) for k in kinds.values() if k.kind != known.kind])
    distractors = _pick(pool, N_OPTIONS - 1, {getattr(known, field)})
    return Draft(Subtask.DEFECT_ANALYSIS, render_text(f"question_gen/defect_analysis_{field}.j2"), getattr(known, field), tuple(distractors))


def object_classification(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    if ctx.object_knowledge is None:
        return Skip(Subtask.OBJECT_CLASSIFICATION, f"no object entry for category {ctx.category!r} (question_gen/data/objects.toml)")
    correct = ctx.object_knowledge.name
    pool = _shuffled(rng, ctx.dataset_objects) + _shuffled(rng, knowledge.generic_objects())
    distractors = _pick(pool, N_OPTIONS - 1, {correct})
    return Draft(Subtask.OBJECT_CLASSIFICATION, render_text("question_gen/object_classification.j2"), correct, tuple(distractors))


def object_analysis(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    if ctx.object_knowledge is None or not ctx.object_knowledge.facts:
        return Skip(Subtask.OBJECT_ANALYSIS, f"no object facts for category {ctx.category!r} (question_gen/data/objects.toml)")
    fact = ctx.object_knowledge.facts[int(rng.integers(len(ctx.object_knowledge.facts)))]
    distractors = _pick(_shuffled(rng, fact.distractors), N_OPTIONS - 1, {fact.answer})
    return Draft(Subtask.OBJECT_ANALYSIS, fact.question, fact.answer, tuple(distractors))


DEFECT_BUILDERS = (defect_classification, defect_localization, defect_description, defect_analysis)
OBJECT_BUILDERS = (object_classification, object_analysis)


def _complete(result: Draft | Skip) -> Draft | Skip:
    """A question with too few distinct distractors is skipped, never asked with fewer options."""
    expected = 1 if result.subtask is Subtask.ANOMALY_DETECTION else N_OPTIONS - 1
    if isinstance(result, Draft) and len(set(result.distractors) - {result.correct}) < expected:
        return Skip(result.subtask, f"fewer than {expected} distinct distractors")
    return result


def draft_questions(ctx: ImageContext, rng: np.random.Generator) -> tuple[list[Draft], list[Skip]]:
    """Detection first (as in MMAD), then the defect questions for anomalies, then object questions."""
    builders = [anomaly_detection]
    if ctx.label == "anomaly":
        builders += DEFECT_BUILDERS
    builders += OBJECT_BUILDERS
    drafts, skips = [], []
    for build in builders:
        result = _complete(build(ctx, rng))
        (skips if isinstance(result, Skip) else drafts).append(result)
    return drafts, skips
