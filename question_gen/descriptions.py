"""Defect Description and Defect Analysis options that are true of the defect, and distractors that
are not: measured from the pixels for marks, from the kind's look for what no outline describes,
from the knowledge file's own sentences about the same object, and causes or consequences of other
families (question_gen/data/defects.toml, analysis_families.toml)."""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from harness.asking.prompting import render_text
from question_gen.attributes import LINES_SHOWN, DefectAttributes, ruled_out
from question_gen.knowledge import CategoryKnowledge, DefectInfo, DefectKind, defect_kinds, exclusive, names_kind_or_near

_COUNTS = (1, 2, 3)
# A measured description names at least this many attributes known for sure (the count included).
MIN_KNOWN_ATTRIBUTES = 3
# A question built from a knowledge file's sentences needs this many of the same object's own.
OWN_ALTERNATIVES = 3
# Families of causes or consequences that are weakly true of any defect ("it spoils the looks"):
# a key may be one, a distractor never.
WEAKLY_TRUE_OF_ANY = frozenset({"looks"})


@dataclass(frozen=True)
class Described:
    """The right option and pools of distractors, in order of preference, and where they came from."""

    correct: str
    pools: list[list[str]]
    source: str
    template: str


def measured(attributes: DefectAttributes, noun: tuple[str, str], noun_shaped: bool = False) -> Described | None:
    """'A single small, round opening, darker than its surroundings.' from the attributes known for
    sure; distractors change one or two of those, never one that is unknown (it might be true)."""
    if not attributes.count_sure:  # "a single scratch" of a patch of dozens would be a guess
        return None
    if noun_shaped and attributes.measures.get("shown_share", 1.0) < LINES_SHOWN:  # faint lines: their count is a guess
        return None
    count = min(attributes.count, 3)
    known = {"size": attributes.size, "shape": None if noun_shaped else attributes.shape, "tone": attributes.tone}
    if 1 + noun_shaped + sum(v is not None for v in known.values()) < MIN_KNOWN_ATTRIBUTES:  # a shaped noun says its shape
        return None
    axes = [name for name, value in known.items() if value is not None]
    truth = (count, *(known[a] for a in axes))
    false = ruled_out(attributes)
    # a distractor changes one or two attributes, each to a value the measures make clearly false:
    # a discoloured area that is also brighter is never offered as "with a different colour"
    choices = [_COUNTS, *((known[a], *sorted(v for v in false[a] if not _adjacent(a, known[a], v))) for a in axes)]
    text = lambda combo: _description(combo[0], dict(zip(axes, combo[1:])), noun)  # noqa: E731
    alternatives = [
        text(combo)
        for combo in itertools.product(*choices)
        if 1 <= sum(a != b for a, b in zip(combo, truth)) <= 2
    ]
    return Described(text(truth), [alternatives], "measured from the image: " + ", ".join(f"{a} {known[a]}" for a in axes), "question_gen/defect_description.j2")


# Values a person cannot tell apart at a look, however far past its boundary the measure puts one:
# sizes one class apart have no scale in the image ("medium" against "large" of a poke), and a dark
# surface's grey specks are as much "a different colour" as "similar in tone" (a hand audit of real
# capsules). A distractor never takes a value next to the key's.
ADJACENT = {"size": {frozenset({"small", "medium"}), frozenset({"medium", "large"})}, "tone": {frozenset({"similar", "discoloured"})}}


def _adjacent(axis: str, key: str, value: str) -> bool:
    return frozenset({key, value}) in ADJACENT.get(axis, set())


def _description(count: int, attributes: dict, noun: tuple[str, str]) -> str:
    return render_text("question_gen/description_option.j2", count=count, size=attributes.get("size"), shape=attributes.get("shape"), tone=attributes.get("tone"), noun=noun[count > 1])


def possible_kinds(knowledge: CategoryKnowledge) -> frozenset[str]:
    """The defect kinds that can occur on this object: its own folders' kinds, and those defects.toml's
    occurs_on allows for its material (any object's, where the material is unknown)."""
    own = {other.kind.kind for other in knowledge.defects.values() if other.kind is not None}
    return frozenset(k.kind for k in defect_kinds()[0].values() if k.kind in own or k.occurs(knowledge.material))


def looks(kind: DefectKind, knowledge: CategoryKnowledge | None = None) -> Described:
    """For a kind that is no mark (flipped, bent, missing, misplaced): how such a defect looks,
    against the looks of kinds that could not be mistaken for it and can occur on the object ("two
    items fused" offered on a bottle is ruled out without the image)."""
    possible = possible_kinds(knowledge) if knowledge is not None else frozenset(defect_kinds()[0])
    others = [k.looks for k in defect_kinds()[0].values() if exclusive(kind.kind, k.kind) and k.kind in possible]
    return Described(kind.looks, [others], f"defects.toml#{kind.kind}.looks", "question_gen/defect_description.j2")


def _kind(info: DefectInfo) -> str | None:
    return info.kind.kind if info.kind else None


def _own_alternatives(knowledge: CategoryKnowledge, info: DefectInfo, attribute: str) -> list[str]:
    """The same object's other described defects' sentences (this category's, then those of
    categories of the same object), each specific enough to be seen, and only of kinds that cannot
    be mistaken for this one (two breakage entries describe the same thing in other words)."""
    from question_gen.sentence_roles import specific

    alternatives = []
    for other in (*knowledge.described.values(), *knowledge.kin_described):
        text = getattr(other, attribute)
        if other.folder == info.folder or other.group or not text or _kind(other) is None or _kind(info) is None:
            continue
        if exclusive(_kind(info), _kind(other)) and specific(text) and not names_kind_or_near(text, _kind(info)) and text not in alternatives:
            alternatives.append(text)
    return alternatives


def written_description(knowledge: CategoryKnowledge, info: DefectInfo) -> Described | None:
    """The knowledge file's appearance sentence on this defect, against the same object's other
    defects' (of kinds not to be mistaken for it) when there are enough of them: one writer's
    sentences against each other, so none stands out by its style. Never a sentence about another
    object: it would give the answer away."""
    from question_gen.sentence_roles import specific

    if info.description is None or info.group or info.kind is None or not specific(info.description):
        return None
    own = _own_alternatives(knowledge, info, "description")
    if len(own) < OWN_ALTERNATIVES:
        return None
    return Described(info.description, [own], info.source, "question_gen/defect_description.j2")


@lru_cache(maxsize=1)
def _families() -> dict[str, dict[str, list[re.Pattern]]]:
    table = tomllib.loads(resources.files("question_gen.data").joinpath("analysis_families.toml").read_text())
    return {aspect: {family: [re.compile(p, re.I) for p in patterns] for family, patterns in families.items()} for aspect, families in table.items()}


def families(text: str, aspect: str) -> frozenset[str]:
    """The families a cause or consequence sentence speaks of (analysis_families.toml)."""
    return frozenset(family for family, patterns in _families()[aspect].items() if any(p.search(text) for p in patterns))


def analysis(knowledge: CategoryKnowledge, info: DefectInfo, aspect: str, pick: int = 0) -> Described | None:
    """A cause or consequence of the defect's kind that is true of the object's material (the
    `pick`-th of them, modulo their number), against those of other kinds from families none of
    this kind's own entries has, and only of kinds that can occur on this object (its own defect
    folders' kinds, and those defects.toml's occurs_on allows for its material): a distractor about
    a package's count or a product's marking on a tire is ruled out without the image."""
    kind = info.kind
    if kind is None:
        return None
    material = knowledge.material
    own = [s for s in kind.statements(aspect) if s.applies(material)]
    if not own:
        return None
    taken = {s.family for s in kind.statements(aspect)} | WEAKLY_TRUE_OF_ANY
    possible = possible_kinds(knowledge)
    pool = [
        s.text for k in defect_kinds()[0].values() if exclusive(kind.kind, k.kind) and k.kind in possible
        for s in k.statements(aspect) if s.family not in taken and s.applies(material)
    ]
    key = own[pick % len(own)]
    return Described(key.text, [list(dict.fromkeys(pool))], f"defects.toml#{kind.kind}.{aspect}", f"question_gen/defect_analysis_{aspect}.j2")


def written_analysis(knowledge: CategoryKnowledge, info: DefectInfo) -> Described | None:
    """The knowledge file's consequence sentence on this defect, against the same object's other
    defects' consequence sentences that share no family with it (analysis_families.toml), when
    there are enough of them."""
    if info.impact is None or info.group:
        return None
    key_families = families(info.impact, "consequence") - WEAKLY_TRUE_OF_ANY
    if not key_families:
        return None
    own = []
    for other in (*knowledge.described.values(), *knowledge.kin_described):
        if other.folder == info.folder or other.group or not other.impact or other.impact in own:
            continue
        theirs = families(other.impact, "consequence")
        if theirs and not theirs & (key_families | WEAKLY_TRUE_OF_ANY):
            own.append(other.impact)
    if len(own) < OWN_ALTERNATIVES:
        return None
    return Described(info.impact, [own], info.source, "question_gen/defect_analysis_impact.j2")
