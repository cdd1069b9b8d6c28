"""Options about another kind of object (Defect Analysis): a distractor that speaks of a package's
count, a circuit or a taste, offered about an object that has none of them, is ruled out without a
look at the image, so the question is answerable blind.

The evidence is the set's own text about the object (its names, the category's knowledge texts, its
facts, its defect folder) read against a lexicon of things only some objects have
(question_gen/data/audit_topics.toml), written from the datasets' objects: not the generator's
tables of which defect occurs on which material, so it can disagree with the generator. A hand
audit of real tire photographs found every Analysis question of a generated set answerable this
way, and the audit's other checks flagged none of them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from question_gen.audit.checks import Finding, ImageFacts


@dataclass(frozen=True)
class Topic:
    name: str
    says: re.Pattern
    objects: re.Pattern


@lru_cache(maxsize=1)
def topics() -> tuple[Topic, ...]:
    raw = tomllib.loads(resources.files("question_gen.data").joinpath("audit_topics.toml").read_text())
    return tuple(Topic(name, re.compile(entry["says"], re.I), re.compile(entry["objects"], re.I)) for name, entry in raw.items())


def _readable(text: str) -> str:
    return re.sub(r"[_\-]+", " ", text)


def object_text(facts: ImageFacts) -> str:
    """Everything the set says of the object: names, knowledge texts, facts, its defect folders."""
    parts = [*facts.object_names, facts.category, facts.folder, *facts.knowledge.keys(), *facts.knowledge.values()]
    parts += [piece for fact in facts.facts for piece in (fact.question, fact.answer)]
    return " ".join(_readable(p) for p in parts if p)


def object_topics(facts: ImageFacts) -> frozenset[str]:
    """The topics the object has: its text says them, or its name is one of the topic's objects."""
    text = object_text(facts)
    names = " ".join(_readable(n) for n in (*facts.object_names, facts.category))
    return frozenset(t.name for t in topics() if t.says.search(text) or t.objects.search(names))


def foreign_topic(question: dict, facts: ImageFacts) -> Finding | None:
    """A giveaway where all distractors but one at most speak of something nothing known of this
    object has: the key is then one of two options a blind reader keeps. One odd distractor leaves
    three plausible options, which a hand audit of twelve held-out MVTec AD categories judged fair
    (a package's count offered about a hazelnut); the tire's questions had three such distractors."""
    if not facts.object_names and not facts.category:
        return None
    have = object_topics(facts)
    foreign = []
    for letter, text in question["Options"].items():
        if letter == question["Answer"]:
            continue
        for topic in topics():
            match = topic.says.search(str(text))
            if match and topic.name not in have:
                foreign.append(f"option {letter} speaks of {topic.name} ({match.group(0)!r})")
                break
    distractors = len(question["Options"]) - 1
    if distractors >= 2 and len(foreign) >= distractors - 1:
        name = facts.object_names[0] if facts.object_names else facts.category
        return Finding("options vs object", "giveaway", f"{'; '.join(foreign)}, which nothing known of the {name} has: ruled out without the image, the key stands with at most one other option")
    return None
