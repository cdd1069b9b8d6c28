"""The generator's knowledge tables (question_gen/data/*.toml), loaded once."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class DefectKnowledge:
    kind: str
    name: str
    cause: str
    consequence: str
    looks: str


@dataclass(frozen=True)
class ObjectFact:
    question: str
    answer: str
    distractors: tuple[str, ...]


@dataclass(frozen=True)
class ObjectKnowledge:
    name: str
    facts: tuple[ObjectFact, ...]


def _load(name: str) -> dict:
    return tomllib.loads(resources.files("question_gen.data").joinpath(name).read_text())


@lru_cache(maxsize=1)
def defect_table() -> tuple[dict[str, DefectKnowledge], dict[str, str], tuple[str, ...]]:
    """(kind → knowledge, folder alias → kind, generic distractor names)."""
    raw = _load("defects.toml")
    generic = tuple(raw.pop("generic")["names"])
    kinds, aliases = {}, {}
    for kind, entry in raw.items():
        kinds[kind] = DefectKnowledge(kind, entry["name"], entry["cause"], entry["consequence"], entry["looks"])
        for alias in entry["aliases"]:
            aliases[alias] = kind
    return kinds, aliases, generic


def defect_knowledge(defect_folder: str) -> DefectKnowledge | None:
    kinds, aliases, _ = defect_table()
    kind = aliases.get(defect_folder.lower())
    return kinds[kind] if kind else None


def defect_display_name(defect_folder: str) -> str:
    """The name shown in options: the table's name, else the folder name made readable."""
    known = defect_knowledge(defect_folder)
    return known.name if known else defect_folder.replace("_", " ").strip().capitalize()


@lru_cache(maxsize=1)
def _objects() -> dict:
    return _load("objects.toml")


def generic_objects() -> tuple[str, ...]:
    return tuple(_objects()["generic_objects"])


def object_knowledge(knowledge_key: str, category: str) -> ObjectKnowledge | None:
    entry = _objects().get(knowledge_key, {}).get(category)
    if entry is None:
        return None
    facts = tuple(ObjectFact(f["question"], f["answer"], tuple(f["distractors"])) for f in entry.get("facts", []))
    return ObjectKnowledge(entry["name"], facts)


def domain_knowledge_texts(knowledge_key: str, category: str, defect_folders: tuple[str, ...]) -> dict[str, str]:
    """One category's entry of MMAD's domain_knowledge.json: {defect folder or "good": text}, in
    MMAD's style (" <Name>\n Description: …"). It names the category's defect kinds, which are
    also the Defect Classification options: a leakage risk the ablation should keep in mind."""
    texts: dict[str, str] = {}
    for folder in defect_folders:
        known = defect_knowledge(folder)
        if known is not None:
            texts[folder] = f" <{known.name}>\n Description: {known.looks}"
    obj = object_knowledge(knowledge_key, category)
    if obj is not None:
        traits = "; ".join(fact.answer[0].lower() + fact.answer[1:] for fact in obj.facts)
        texts["good"] = f" <Normal {obj.name.lower()}>\n Description: A {obj.name.lower()} without defects." + (f" Normal characteristics: {traits}." if traits else "")
    return texts
