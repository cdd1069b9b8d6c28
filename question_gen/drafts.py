"""Draft questions for one image: the right answer and its distractors, before option shuffling.

Each builder returns a Draft, or a reason why the question cannot be asked truthfully (the reason
is counted in the generation report; a question is never invented). Questions built from a
knowledge entry (a built-in table, a knowledge file, an LLM-verified fact) say which in their
provenance.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from harness.prompting import render_text
from harness.schema import Subtask
from question_gen.attributes import TOUCHED_CELL_SHARE, DefectAttributes, adjacent_cells, cell_name
from question_gen.knowledge import CategoryKnowledge, DefectInfo, defect_kinds, generic_objects
from question_gen.options import pick_distractors, same_thing

N_OPTIONS = 4
DISTRACTORS = N_OPTIONS - 1


@dataclass(frozen=True)
class Draft:
    subtask: Subtask
    text: str
    correct: str
    distractors: tuple[str, ...]
    provenance: dict | None = field(default=None, compare=False)  # which knowledge entry, or which LLM wrote and checked it


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
    knowledge: CategoryKnowledge

    @property
    def defect(self) -> DefectInfo | None:
        return self.knowledge.defects.get(self.defect_folder or "")


def _from(source: str) -> dict:
    return {"knowledge": source}


def anomaly_detection(ctx: ImageContext, rng: np.random.Generator) -> Draft:
    yes, no = render_text("question_gen/yes.j2"), render_text("question_gen/no.j2")
    correct, wrong = (yes, no) if ctx.label == "anomaly" else (no, yes)
    return Draft(Subtask.ANOMALY_DETECTION, render_text("question_gen/anomaly_detection.j2"), correct, (wrong,))


def _group_skip(subtask: Subtask, info: DefectInfo) -> Skip:
    return Skip(subtask, f"defect folder {info.folder!r} names several defect kinds ({info.name}), not one")


def defect_classification(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    info = ctx.defect
    assert info is not None
    if info.group:
        return _group_skip(Subtask.DEFECT_CLASSIFICATION, info)
    kind = info.kind.kind if info.kind else None
    # The category's own other defects first (the hard, realistic confusions), then generic ones of another kind.
    own = [other.name for other in ctx.knowledge.defects.values() if not other.group and other.folder != info.folder]
    generic = [name for name, generic_kind in defect_kinds()[1] if generic_kind != kind]
    distractors = pick_distractors(info.name, [own, generic], DISTRACTORS, rng)
    return Draft(Subtask.DEFECT_CLASSIFICATION, render_text("question_gen/defect_classification.j2"), info.name, tuple(distractors), _from(info.source))


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
    if len(candidates) < DISTRACTORS:
        return Skip(Subtask.DEFECT_LOCALIZATION, "fewer than 3 untouched, non-adjacent grid cells for distractors")
    option = lambda cell: render_text("question_gen/localization_option.j2", cell=cell_name(*cell))  # noqa: E731
    distractors = pick_distractors(option((row, col)), [[option(c) for c in candidates]], DISTRACTORS, rng)
    return Draft(Subtask.DEFECT_LOCALIZATION, render_text("question_gen/defect_localization.j2"), option((row, col)), tuple(distractors))


_SIZES, _SHAPES, _TONES, _COUNTS = ("small", "medium", "large"), ("elongated", "round", "irregular"), (
    "darker",
    "brighter",
    "discoloured",
    "similar",
), (1, 2, 3)


def _description(size: str, shape: str, tone: str, count: int) -> str:
    return render_text("question_gen/description_option.j2", size=size, shape=shape, tone=tone, count=count)


def _written(ctx: ImageContext, attribute: str) -> tuple[str, list[list[str]]] | None:
    """The image's defect's sentence from a knowledge file, and as distractor pools those of the
    category's other defects, then of the dataset's other categories, when they are enough."""
    info = ctx.defect
    if info is None or info.group or getattr(info, attribute) is None:
        return None
    correct = getattr(info, attribute)
    own = [getattr(o, attribute) for o in ctx.knowledge.defects.values() if o.folder != info.folder and not o.group and getattr(o, attribute)]
    dataset = list(getattr(ctx.knowledge, f"other_{attribute}s"))
    return (correct, [own, dataset]) if len(set(own + dataset) - {correct}) >= DISTRACTORS else None


def _from_knowledge_file(ctx: ImageContext, attribute: str, subtask: Subtask, template: str, rng: np.random.Generator) -> Draft | None:
    written = _written(ctx, attribute)
    if written is None:
        return None
    correct, pools = written
    distractors = pick_distractors(correct, pools, DISTRACTORS, rng)
    return Draft(subtask, render_text(template), correct, tuple(distractors), _from(ctx.defect.source))


def defect_description(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    """From a knowledge file when the category has enough described defects; else from the mask."""
    written = _from_knowledge_file(ctx, "description", Subtask.DEFECT_DESCRIPTION, "question_gen/defect_description.j2", rng)
    if written is not None:
        return written
    attributes = ctx.attributes
    assert attributes is not None
    truth = (attributes.size, attributes.shape, attributes.tone, min(attributes.count, 3))
    # Distractors change one or two attributes: close enough to need looking, far enough to be wrong.
    alternatives = [
        _description(*combo)
        for combo in itertools.product(_SIZES, _SHAPES, _TONES, _COUNTS)
        if 1 <= sum(a != b for a, b in zip(combo, truth)) <= 2
    ]
    distractors = pick_distractors(_description(*truth), [alternatives], DISTRACTORS, rng)
    return Draft(Subtask.DEFECT_DESCRIPTION, render_text("question_gen/defect_description.j2"), _description(*truth), tuple(distractors))


def defect_analysis(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    """From a knowledge file's impact sentences when there are enough; else the built-in kind's cause
    or consequence against other kinds'."""
    written = _from_knowledge_file(ctx, "impact", Subtask.DEFECT_ANALYSIS, "question_gen/defect_analysis_impact.j2", rng)
    if written is not None:
        return written
    info = ctx.defect
    if info is not None and info.group:
        return _group_skip(Subtask.DEFECT_ANALYSIS, info)
    if info is None or info.kind is None:
        return Skip(Subtask.DEFECT_ANALYSIS, f"no knowledge entry for defect {ctx.defect_folder!r} (question_gen/data/taxonomy.toml, or --knowledge)")
    known = info.kind
    aspect = "cause" if rng.random() < 0.5 else "consequence"
    pool = [getattr(k, aspect) for k in defect_kinds()[0].values() if k.kind != known.kind]
    distractors = pick_distractors(getattr(known, aspect), [pool], DISTRACTORS, rng)
    return Draft(Subtask.DEFECT_ANALYSIS, render_text(f"question_gen/defect_analysis_{aspect}.j2"), getattr(known, aspect), tuple(distractors), _from(f"defects.toml#{known.kind}.{aspect}"))


def object_classification(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    knowledge = ctx.knowledge
    correct = knowledge.object_name
    distractors = pick_distractors(correct, [knowledge.other_objects, generic_objects()], DISTRACTORS, rng, conflicts=same_thing)
    return Draft(Subtask.OBJECT_CLASSIFICATION, render_text("question_gen/object_classification.j2"), correct, tuple(distractors), _from(knowledge.object_source))


def object_analysis(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    knowledge = ctx.knowledge
    if knowledge.facts:
        fact = knowledge.facts[int(rng.integers(len(knowledge.facts)))]
        distractors = pick_distractors(fact.answer, [fact.distractors], DISTRACTORS, rng)
        return Draft(Subtask.OBJECT_ANALYSIS, fact.question, fact.answer, tuple(distractors), _from(fact.source))
    others = [s for s in knowledge.other_normal_summaries if s != knowledge.normal_summary]
    if knowledge.normal_summary and len(set(others)) >= DISTRACTORS:
        distractors = pick_distractors(knowledge.normal_summary, [others], DISTRACTORS, rng)
        return Draft(Subtask.OBJECT_ANALYSIS, render_text("question_gen/object_normal_appearance.j2"), knowledge.normal_summary, tuple(distractors), _from(knowledge.normal_source))
    return Skip(Subtask.OBJECT_ANALYSIS, f"no object facts for category {ctx.category!r} (question_gen/data/objects.toml, --knowledge, or --llm)")


DEFECT_BUILDERS = (defect_classification, defect_localization, defect_description, defect_analysis)
OBJECT_BUILDERS = (object_classification, object_analysis)


def _complete(result: Draft | Skip) -> Draft | Skip:
    """A question with too few distinct distractors is skipped, never asked with fewer options."""
    expected = 1 if result.subtask is Subtask.ANOMALY_DETECTION else DISTRACTORS
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
