"""The audit's checks: each reads one question beside what is known about its image (the folder it
sits in, its mask, its pixels, the category's knowledge texts) and says whether the key holds.

A check answers only where the evidence is sure (a folder that names one defect kind, a location
phrase that is a region, an attribute measured clear of its class boundary); elsewhere it says
nothing, and a question no check could judge is "not checked", never "ok". Verdicts, worst first:

- likely wrong: the evidence contradicts the key;
- ambiguous: another option is as true as the key (the same kind, the same region, the same words);
- giveaway: an option names another object of the set, so the answer needs no look at the image;
- ok: at least one check confirmed the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from harness.schema import MMAD_TYPE_TO_SUBTASK, Subtask
from question_gen.attributes import DefectAttributes
from question_gen.descriptions import ADJACENT
from question_gen.audit.claims import agreements, claims, confirmed, contradictions, unclaimed_words
from question_gen.audit.locations import region
from question_gen.audit.wording import Wording, kinds_named
from question_gen.knowledge import DefectInfo, ObjectFact, defect_kinds
from question_gen.options import same_thing

if TYPE_CHECKING:
    from question_gen.audit.independent import RegionEvidence

Verdict = Literal["likely wrong", "ambiguous", "giveaway", "ok", "not checked"]
SEVERITY: dict[str, int] = {"likely wrong": 4, "ambiguous": 3, "giveaway": 2, "ok": 1, "not checked": 0}
FLAGGED: tuple[Verdict, ...] = ("likely wrong", "ambiguous", "giveaway")
# Defect Localization: the key is likely wrong when its region holds under KEY_EMPTY of the mask
# and another option's holds at least OTHER_HOLDS; ambiguous when another option's region holds
# at least BOTH_HOLD as the key's does.
KEY_EMPTY, OTHER_HOLDS, BOTH_HOLD = 0.1, 0.5, 0.35


@dataclass(frozen=True)
class Finding:
    check: str
    verdict: Verdict
    evidence: str


@dataclass
class ImageFacts:
    """What the audit knows about one image of the set (None: not known)."""

    key: str
    category: str
    folder: str
    label: str | None  # "normal", "anomaly"
    defect: DefectInfo | None  # the folder's kind (taxonomy.toml)
    object_names: tuple[str, ...]  # names that are right for "What is the object?"
    other_objects: tuple[str, ...]  # the set's other categories' object names
    mask: np.ndarray | None = None
    attributes: DefectAttributes | None = None
    knowledge: dict[str, str] = field(default_factory=dict)  # the category's knowledge texts by folder
    facts: tuple[ObjectFact, ...] = ()  # the tables' facts of this object (objects.toml)
    notes: list[str] = field(default_factory=list)  # why some evidence is missing (no mask, unreadable image)
    wording: Wording = field(default_factory=Wording)  # how this category names its defects (audit_wording.toml)
    region: RegionEvidence | None = None  # the mask region measured independently (independent.py)


Check = Callable[[dict, ImageFacts], "Finding | None"]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _kinds_named(text: str, facts: ImageFacts) -> set[str]:
    info = facts.defect
    return kinds_named(text, info.kind.kind if info is not None and info.kind is not None and not info.group else None, facts.wording)


def _own(facts: ImageFacts) -> tuple[str, frozenset[str]] | None:
    """The folder's kind and the kinds that could look like it; None for a group or unknown folder."""
    info = facts.defect
    if info is None or info.kind is None or info.group:
        return None
    return info.kind.kind, frozenset({info.kind.kind, *info.kind.near, *facts.wording.near})


def _key_text(question: dict) -> str | None:
    return question["Options"].get(question["Answer"]) if isinstance(question.get("Options"), dict) else None


def well_formed(question: dict, facts: ImageFacts) -> Finding | None:
    """The key is one of the options, and no two options are the same words."""
    options = question.get("Options")
    if not isinstance(options, dict) or question.get("Answer") not in options:
        return Finding("well formed", "likely wrong", f"the key {question.get('Answer')!r} is not one of the options")
    seen: dict[str, str] = {}
    for letter, text in options.items():
        norm = _norm(str(text))
        if not norm:
            return Finding("well formed", "ambiguous", f"option {letter} is empty")
        if norm in seen:
            return Finding("well formed", "ambiguous", f"options {seen[norm]} and {letter} say the same: {text!r}")
        seen[norm] = letter
    return None


def detection(question: dict, facts: ImageFacts) -> Finding | None:
    """Yes/No against the folder: a good image has no defect, a defect folder's image has one."""
    key = _norm(_key_text(question) or "")
    if facts.label is None or key not in ("yes", "no") or not re.search(r"\b(defect|anomal|flaw|damage)", question.get("Question", ""), re.I):
        return None
    says_defect = key == "yes"
    if says_defect == (facts.label == "anomaly"):
        return Finding("detection vs folder", "ok", f"key {key!r} for an image in {facts.folder!r}")
    return Finding("detection vs folder", "likely wrong", f"key {key!r}, but the image is in folder {facts.folder!r} ({facts.label})")


def _names_folder(text: str, kind: str, facts: ImageFacts) -> bool:
    """Whether an option names the folder's own kind: its terms, the folder's words, or its name."""
    folder_words = set(_norm(facts.folder).split())
    words = set(_norm(text).split())
    # where the category names this folder its own way, only those words name it (a screw's
    # "thread_side" is "thread damage", not any "bent" word)
    named = facts.wording.names_folder(text) if facts.wording.names is not None else kind in _kinds_named(text, facts)
    return named or (bool(folder_words) and folder_words <= words) or (facts.defect is not None and _norm(text) == _norm(facts.defect.name))


def defect_class(question: dict, facts: ImageFacts) -> Finding | None:
    """The key names the folder's kind, and no other option names it too."""
    own = _own(facts)
    if own is None:
        return None
    kind, alike = own
    key_letter, key = question["Answer"], _key_text(question) or ""
    exact = [letter for letter, text in question["Options"].items() if _names_folder(str(text), kind, facts)]
    if key_letter in exact:
        others = [letter for letter in exact if letter != key_letter]
        if others:
            return Finding("class vs folder", "ambiguous", f"option {others[0]} {question['Options'][others[0]]!r} also names {kind}, as the key {key!r} does")
        return Finding("class vs folder", "ok", f"key {key!r} names the folder's kind ({kind})")
    if exact:
        return Finding("class vs folder", "likely wrong", f"option {exact[0]} {question['Options'][exact[0]]!r} names the folder's kind ({facts.folder!r}: {kind}); the key {key_letter} {key!r} does not")
    key_kinds = _kinds_named(key, facts)
    if key_kinds and not key_kinds & alike:
        return Finding("class vs folder", "likely wrong", f"key {key_letter} {key!r} names {', '.join(sorted(key_kinds))}; the image is in folder {facts.folder!r} ({kind})")
    return None  # a name no table knows, or one of a kind that looks alike: nothing sure to say


def localization(question: dict, facts: ImageFacts) -> Finding | None:
    """The key's region holds the mask, and no other option's region holds as much."""
    if facts.mask is None or not facts.mask.any():
        return None
    regions = {letter: region(str(text)) for letter, text in question["Options"].items()}
    key_letter = question["Answer"]
    if regions.get(key_letter) is None:
        return None  # a part of the object, or everywhere: the mask cannot say
    shares = {letter: r.share(facts.mask) for letter, r in regions.items() if r is not None}
    key_share = shares[key_letter]
    others = {letter: share for letter, share in shares.items() if letter != key_letter}
    best = max(others, key=others.get) if others else None
    shown = ", ".join(f"{letter} {share:.0%}" for letter, share in shares.items())
    if best is not None and key_share < KEY_EMPTY and others[best] >= OTHER_HOLDS:
        return Finding("location vs mask", "likely wrong", f"share of the mask in each option's region: {shown}")
    if best is not None and others[best] >= BOTH_HOLD and key_share >= BOTH_HOLD:
        return Finding("location vs mask", "ambiguous", f"two options' regions hold the defect: {shown}")
    if key_share >= OTHER_HOLDS or (key_share >= BOTH_HOLD and (best is None or others[best] < KEY_EMPTY)):
        return Finding("location vs mask", "ok", f"share of the mask in each option's region: {shown}")
    return None


def description(question: dict, facts: ImageFacts) -> Finding | None:
    """What the key says of count, size, shape and tone against what the pixels show for sure; and
    a key that names another kind of defect than the folder's."""
    key_letter, key = question["Answer"], _key_text(question) or ""
    if facts.attributes is not None:
        wrong = contradictions(claims(key), facts.attributes)
        if wrong:
            return Finding("description vs pixels", "likely wrong", f"key {key_letter} says " + "; ".join(wrong))
    own = _own(facts)
    if own is not None:
        kind, alike = own
        named = _kinds_named(key, facts)
        if named and not named & alike:
            return Finding("description vs folder", "likely wrong", f"key {key_letter} names {', '.join(sorted(named))}; the image is in folder {facts.folder!r} ({kind})")
    if facts.attributes is not None and claims(key):
        # another option every claim of which the pixels confirm (two claims at least) is as true as the key
        true_others = [letter for letter, text in question["Options"].items() if letter != key_letter and len(claims(text)) >= 2 and confirmed(claims(text), facts.attributes)]
        if true_others:
            return Finding("description vs pixels", "ambiguous", f"option {true_others[0]} is as true of the pixels as the key: " + ", ".join(agreements(claims(question["Options"][true_others[0]]), facts.attributes)))
        agreed = agreements(claims(key), facts.attributes)
        if agreed:
            return Finding("description vs pixels", "ok", "the pixels confirm the key's " + ", ".join(agreed))
    return None


def look_alike(question: dict, facts: ImageFacts) -> Finding | None:
    """A Description option that differs from the key only by a value a person cannot tell from the
    key's at a look (descriptions.ADJACENT: a size one class apart, with no scale in the image; a
    similar tone against a different colour): ambiguous, whatever the pixels measure."""
    key_letter, key = question["Answer"], _key_text(question) or ""
    mine, words = claims(key), unclaimed_words(key)
    for letter, text in question["Options"].items():
        theirs = claims(str(text))
        if letter == key_letter or unclaimed_words(str(text)) != words:
            continue
        differ = [a for a in set(mine) | set(theirs) if mine.get(a) != theirs.get(a)]
        if len(differ) == 1 and len(mine.get(differ[0], ())) == 1 == len(theirs.get(differ[0], ())):
            pair = mine[differ[0]] | theirs[differ[0]]
            if pair in ADJACENT.get(differ[0], set()):
                return Finding("options alike at a look", "ambiguous", f"option {letter} differs from the key only in {differ[0]} ({' against '.join(sorted(pair))}), which a look cannot settle")
    return None


def from_knowledge(question: dict, facts: ImageFacts) -> Finding | None:
    """A Description or Analysis key taken word for word from another defect's knowledge text of the
    same object (and not from this defect's) is that defect's, not this one's."""
    if not facts.knowledge or facts.label != "anomaly":
        return None
    key_letter, key = question["Answer"], _norm(_key_text(question) or "")
    if len(key.split()) < 4:
        return None
    own_text = _norm(facts.knowledge.get(facts.folder, ""))
    elsewhere = [folder for folder, text in facts.knowledge.items() if folder not in (facts.folder, "good") and key in _norm(text)]
    if key in own_text:
        for letter, text in question["Options"].items():
            if letter != key_letter and len(_norm(text).split()) >= 4 and _norm(text) in own_text:
                return Finding("text vs knowledge", "ambiguous", f"option {letter} is also from this defect's knowledge text")
        return Finding("text vs knowledge", "ok", f"the key is from {facts.folder!r}'s knowledge text")
    if elsewhere:
        return Finding("text vs knowledge", "likely wrong", f"the key is from the knowledge text of {elsewhere[0]!r}, not of {facts.folder!r}")
    return None


def statement_of_kind(question: dict, facts: ImageFacts) -> Finding | None:
    """A Defect Analysis key that is defects.toml's cause or consequence of one other kind only."""
    own = _own(facts)
    if own is None:
        return None
    kind, alike = own
    key = _key_text(question) or ""
    holders = {k for k, entry in defect_kinds()[0].items() for s in (*entry.causes, *entry.consequences) if s.text == key}
    if not holders:
        return None
    if holders & alike:
        return Finding("analysis vs kind", "ok", f"the key is a {kind} statement of defects.toml")
    return Finding("analysis vs kind", "likely wrong", f"the key is defects.toml's statement of {', '.join(sorted(holders))}; the image is in folder {facts.folder!r} ({kind})")


def object_class(question: dict, facts: ImageFacts) -> Finding | None:
    """The key names the category's object; no other option names it too."""
    key_letter, key = question["Answer"], _key_text(question) or ""
    names = [n for n in facts.object_names if n]
    if any(same_thing(key, name) for name in names):
        for letter, text in question["Options"].items():
            if letter != key_letter and (same_thing(text, key) or any(same_thing(text, name) for name in names)):
                return Finding("object vs category", "ambiguous", f"option {letter} {text!r} names the same object as the key {key!r}")
        return Finding("object vs category", "ok", f"key {key!r} names the category's object")
    for letter, text in question["Options"].items():
        if letter != key_letter and any(same_thing(text, name) for name in names):
            return Finding("object vs category", "likely wrong", f"option {letter} {text!r} names the category {facts.category!r}; the key {key!r} does not")
    return None


def object_fact(question: dict, facts: ImageFacts) -> Finding | None:
    """An Object Analysis question that is one of the tables' facts of this object: the key is its
    answer, not one of its wrong answers."""
    key = _key_text(question) or ""
    for fact in facts.facts:
        if _norm(fact.question) != _norm(str(question.get("Question", ""))):
            continue
        if _norm(key) == _norm(fact.answer):
            return Finding("fact vs tables", "ok", "the key is the fact's answer")
        if any(_norm(key) == _norm(d) for d in fact.distractors):
            return Finding("fact vs tables", "likely wrong", f"the key {key!r} is a wrong answer of the fact; its answer is {fact.answer!r}")
    return None


def other_object(question: dict, facts: ImageFacts) -> Finding | None:
    """An option of a text question that names another object of the set (and not this one): a
    giveaway, the answer needs no look at the image."""
    own_words = {w for name in facts.object_names for w in _norm(name).split()}
    for letter, text in question["Options"].items():
        words = set(_norm(str(text)).split())
        for other in facts.other_objects:
            other_words = set(_norm(other).split())
            if other_words and other_words <= words and not other_words <= own_words and len(" ".join(other_words)) >= 4:
                return Finding("options vs objects", "giveaway", f"option {letter} names {other!r}, another object of the set")
    return None


def own_object_in_key(question: dict, facts: ImageFacts) -> Finding | None:
    """The key names this image's object and no other option does ("Hazelnut shell hole" among
    "Scratch", "Fold"): a giveaway, the option that fits the object is picked without a look."""
    folder_words = set(_norm(facts.folder).split())  # "Cable swap" is the folder's name, not a hint

    def names_object(text: str) -> bool:
        words = set(_norm(text).split()) - folder_words
        return any(set(_norm(name).split()) and set(_norm(name).split()) <= words for name in facts.object_names)

    key_letter = question["Answer"]
    if names_object(_key_text(question) or "") and not any(names_object(str(t)) for letter, t in question["Options"].items() if letter != key_letter):
        return Finding("key vs object", "giveaway", f"only the key {key_letter} names the object ({facts.object_names[0]})")
    return None


# Which checks read which subtask (variation as data): every question also gets well_formed.
CHECKS: dict[Subtask, tuple[Check, ...]] = {
    Subtask.ANOMALY_DETECTION: (detection,),
    Subtask.DEFECT_CLASSIFICATION: (defect_class, own_object_in_key),
    Subtask.DEFECT_LOCALIZATION: (localization,),
    Subtask.DEFECT_DESCRIPTION: (description, look_alike, from_knowledge, other_object, own_object_in_key),
    Subtask.DEFECT_ANALYSIS: (from_knowledge, statement_of_kind, other_object, own_object_in_key),
    Subtask.OBJECT_CLASSIFICATION: (object_class,),
    Subtask.OBJECT_ANALYSIS: (object_fact,),
}


def check_question(question: dict, facts: ImageFacts, tables: tuple[dict[Subtask, tuple[Check, ...]], ...] = (CHECKS,)) -> tuple[Verdict, list[Finding]]:
    """Every finding on one question by the checks of `tables`, and its verdict (the worst finding;
    "not checked" when none)."""
    first = well_formed(question, facts)
    if first is not None:
        return first.verdict, [first]
    subtask = MMAD_TYPE_TO_SUBTASK.get(str(question.get("type", "")))
    findings = [f for table in tables for check in table.get(subtask, ()) if (f := check(question, facts)) is not None] if subtask else []
    if not findings:
        return "not checked", []
    return max((f.verdict for f in findings), key=SEVERITY.__getitem__), findings
