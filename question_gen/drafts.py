"""Draft questions for one image: the right answer and its distractors, before option shuffling.

Each builder returns a Draft, or a reason why the question cannot be asked truthfully (the reason
is counted in the generation report; a question is never invented). Questions built from a
knowledge entry (a built-in table, a knowledge file, an LLM-verified fact) say which in their
provenance.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.asking.prompting import render_text
from harness.schema import Subtask
from question_gen.attributes import TOUCHED_CELL_SHARE, DefectAttributes, adjacent_cells, cell_name
from question_gen import descriptions
from question_gen.knowledge import CategoryKnowledge, DefectInfo, defect_kinds, exclusive, generic_objects
from question_gen.options import pick_distractors, same_thing, usable_pool

N_OPTIONS = 4
DISTRACTORS = N_OPTIONS - 1


@dataclass(frozen=True)
class Draft:
    subtask: Subtask
    text: str
    correct: str
    distractors: tuple[str, ...]
    provenance: dict | None = field(default=None, compare=False)  # which knowledge entry, or which LLM wrote and checked it
    pool: tuple[str, ...] = field(default=(), compare=False)  # every distractor that would be as true: the set-level filter's choice


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
    # The category's own other defects first (the hard, realistic confusions: its folders say which
    # is which), then generic names of kinds that cannot be mistaken for this one (a dent is a deformation).
    own = [other.name for other in ctx.knowledge.defects.values() if not other.group and other.folder != info.folder]
    generic = [name for name, generic_kind in defect_kinds()[1] if (exclusive(kind, generic_kind) if kind else True)]
    conflicts = _generic_alike({name: k for name, k in defect_kinds()[1]}, {other.name: other.kind.kind for other in ctx.knowledge.defects.values() if other.kind})
    distractors = pick_distractors(info.name, [own, generic], DISTRACTORS, rng, conflicts=conflicts)
    return Draft(Subtask.DEFECT_CLASSIFICATION, render_text("question_gen/defect_classification.j2"), info.name, tuple(distractors), _from(info.source),
                 usable_pool(info.name, [own, generic], conflicts))


def _generic_alike(generic: dict[str, str], own: dict[str, str]) -> Callable[[str, str], bool]:
    """Two options that may not stand together: the same words, or a generic name beside another
    name of a kind that could be mistaken for its own ("Misalignment" beside "Misaligned component":
    two options that rule each other out leave a blind reader two to choose from). The category's own
    folder names may share a kind (a bottle's large and small breakage): its folders say which is which."""
    def conflicts(a: str, b: str) -> bool:
        if a.strip().lower() == b.strip().lower():
            return True
        if a not in generic and b not in generic:
            return False
        kind_a, kind_b = generic.get(a, own.get(a)), generic.get(b, own.get(b))
        return kind_a is not None and kind_b is not None and not exclusive(kind_a, kind_b)
    return conflicts


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
    pool = [[option(c) for c in candidates]]
    distractors = pick_distractors(option((row, col)), pool, DISTRACTORS, rng)
    return Draft(Subtask.DEFECT_LOCALIZATION, render_text("question_gen/defect_localization.j2"), option((row, col)), tuple(distractors), pool=usable_pool(option((row, col)), pool))


def _drafted(subtask: Subtask, described: descriptions.Described | None, rng: np.random.Generator) -> Draft | None:
    if described is None:
        return None
    distractors = pick_distractors(described.correct, described.pools, DISTRACTORS, rng)
    return Draft(subtask, render_text(described.template), described.correct, tuple(distractors), _from(described.source), usable_pool(described.correct, described.pools))


def defect_description(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    """From the knowledge file's appearance sentence, against the same object's other defects'
    (never another object's); else, for a mark, what its pixels show for sure; else, for what no
    outline describes (a flipped, bent, missing or wrong part), how that kind looks."""
    info = ctx.defect
    if info is not None and info.group:
        return _group_skip(Subtask.DEFECT_DESCRIPTION, info)
    written = descriptions.written_description(ctx.knowledge, info) if info is not None else None
    drafted = _complete(_drafted(Subtask.DEFECT_DESCRIPTION, written, rng)) if written else None
    if isinstance(drafted, Draft):
        return drafted
    kind = info.kind if info is not None else None
    if kind is not None and not kind.mark:
        return _drafted(Subtask.DEFECT_DESCRIPTION, descriptions.looks(kind, ctx.knowledge), rng)
    attributes = ctx.attributes
    assert attributes is not None
    noun = kind.noun if kind is not None else ("defect area", "defect areas")
    result = _drafted(Subtask.DEFECT_DESCRIPTION, descriptions.measured(attributes, noun, kind is not None and kind.noun_shaped), rng)
    return result or Skip(Subtask.DEFECT_DESCRIPTION, "too few attributes the image shows for sure (count unclear, size, shape or tone near a class boundary, or a loose mask)")


def defect_analysis(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    """From the knowledge file's consequence sentence when the same object's other defects give
    enough of other families; else a cause or consequence of the kind (true of the object's
    material) against those of other families."""
    info = ctx.defect
    if info is not None and info.group:
        return _group_skip(Subtask.DEFECT_ANALYSIS, info)
    if info is None or info.kind is None:
        return Skip(Subtask.DEFECT_ANALYSIS, f"no knowledge entry for defect {ctx.defect_folder!r} (question_gen/data/taxonomy.toml, or --knowledge)")
    written = _drafted(Subtask.DEFECT_ANALYSIS, descriptions.written_analysis(ctx.knowledge, info), rng)
    if written is not None and isinstance(_complete(written), Draft):
        return written
    aspects = ["cause", "consequence"]
    first = "cause" if rng.random() < 0.5 else "consequence"
    pick = int(rng.integers(1 << 16))  # which of the kind's true statements is the key
    for aspect in sorted(aspects, key=lambda a: a != first):
        drafted = _drafted(Subtask.DEFECT_ANALYSIS, descriptions.analysis(ctx.knowledge, info, aspect, pick), rng)
        if drafted is not None:
            return drafted
    return Skip(Subtask.DEFECT_ANALYSIS, f"no cause or consequence of {info.kind.kind} holds for a {ctx.knowledge.material or 'object of unknown material'}")


def object_classification(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    knowledge = ctx.knowledge
    correct = knowledge.object_name
    pools = [knowledge.other_objects, generic_objects()]
    distractors = pick_distractors(correct, pools, DISTRACTORS, rng, conflicts=same_thing)
    return Draft(Subtask.OBJECT_CLASSIFICATION, render_text("question_gen/object_classification.j2"), correct, tuple(distractors), _from(knowledge.object_source), usable_pool(correct, pools, same_thing))


def object_analysis(ctx: ImageContext, rng: np.random.Generator) -> Draft | Skip:
    """A fact of the object (objects.toml, the knowledge file's object table, or an LLM fact
    verified on normal images), against its own wrong answers. Never a summary of another object
    against this one's: the object's name would give the answer away."""
    knowledge = ctx.knowledge
    if knowledge.facts:
        fact = knowledge.facts[int(rng.integers(len(knowledge.facts)))]
        distractors = pick_distractors(fact.answer, [fact.distractors], DISTRACTORS, rng)
        return Draft(Subtask.OBJECT_ANALYSIS, fact.question, fact.answer, tuple(distractors), _from(fact.source), usable_pool(fact.answer, [fact.distractors]))
    return Skip(Subtask.OBJECT_ANALYSIS, f"no object facts for category {ctx.category!r} (question_gen/data/objects.toml, --knowledge, or --llm)")


DEFECT_BUILDERS = (defect_classification, defect_localization, defect_description, defect_analysis)
OBJECT_BUILDERS = (object_classification, object_analysis)


def _complete(result: Draft | Skip) -> Draft | Skip:
    """A question with too few distinct distractors is skipped, never asked with fewer options."""
    expected = 1 if result.subtask is Subtask.ANOMALY_DETECTION else DISTRACTORS
    if isinstance(result, Draft) and len(set(result.distractors) - {result.correct}) < expected:
        return Skip(result.subtask, f"fewer than {expected} distinct distractors")
    return result


def draft_questions(ctx: ImageContext, stream: Callable[[str], np.random.Generator]) -> tuple[list[Draft], list[Skip]]:
    """Detection first (as in MMAD), then the defect questions for anomalies, then object questions.
    Each question draws from its own random stream (`stream(subtask)`), so adding a source of
    questions (a knowledge file) changes nothing else about the image."""
    builders = [anomaly_detection]
    if ctx.label == "anomaly":
        builders += DEFECT_BUILDERS
    builders += OBJECT_BUILDERS
    drafts, skips = [], []
    for build in builders:
        result = _complete(build(ctx, stream(build.__name__)))
        (skips if isinstance(result, Skip) else drafts).append(result)
    return drafts, skips
