"""What the generator knows about a dataset's categories: built-in tables (question_gen/data/*.toml),
a knowledge file (`generate --knowledge`, MMAD's domain_knowledge.json shape) and LLM-verified facts,
gathered per category into one CategoryKnowledge that the question builders read."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

from question_gen.knowledge_file import KnowledgeEntries

GROUP = "group"  # a folder that covers several defect kinds (combined, logical_anomalies, bad)


@dataclass(frozen=True)
class DefectKind:
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
    source: str = ""  # where the fact came from (provenance)


@dataclass(frozen=True)
class DefectInfo:
    """One defect folder (or label) of a category, as the questions show it."""

    folder: str
    name: str  # shown in options
    kind: DefectKind | None  # None: unknown, or a group of kinds
    group: bool
    source: str  # provenance of the name: "taxonomy.toml#folders/cut", "domain_knowledge.json#MVTec/cable/cut_lead"
    description: str | None = None  # from a knowledge file: what the defect looks like (one sentence)
    impact: str | None = None  # from a knowledge file: what the defect does (one sentence)
    known: bool = True  # False: the name is the folder made readable (reported as unknown)


@dataclass(frozen=True)
class CategoryKnowledge:
    category: str
    object_name: str
    object_source: str
    facts: tuple[ObjectFact, ...] = ()
    normal_summary: str | None = None  # from a knowledge file's "good" entry
    normal_source: str = ""
    defects: dict[str, DefectInfo] = field(default_factory=dict)
    other_objects: tuple[str, ...] = ()  # names of the dataset's other categories' objects
    other_normal_summaries: tuple[str, ...] = ()
    # knowledge-file sentences of the other categories' defects: distractors when a category has few defects
    other_descriptions: tuple[str, ...] = ()
    other_impacts: tuple[str, ...] = ()

    def with_facts(self, facts: tuple[ObjectFact, ...]) -> "CategoryKnowledge":
        return replace(self, facts=self.facts + facts)


def _load(name: str) -> dict:
    return tomllib.loads(resources.files("question_gen.data").joinpath(name).read_text())


@lru_cache(maxsize=1)
def defect_kinds() -> tuple[dict[str, DefectKind], tuple[tuple[str, str], ...]]:
    """(kind → knowledge, generic distractor [name, kind] pairs)."""
    raw = _load("defects.toml")
    generic = tuple((name, kind) for name, kind in raw.pop("generic")["names"])
    return {kind: DefectKind(kind, e["name"], e["cause"], e["consequence"], e["looks"]) for kind, e in raw.items()}, generic


@lru_cache(maxsize=1)
def _taxonomy() -> dict:
    return _load("taxonomy.toml")


def folder_key(name: str) -> str:
    """How a folder name or label is looked up: lower case, spaces/hyphens/underscores as one underscore."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def readable(name: str) -> str:
    """A folder name made readable: metal_nut → "Metal nut"."""
    return re.sub(r"[\s_]+", " ", name).strip().capitalize()


def defect_info(folder: str, knowledge_key: str, category: str) -> DefectInfo:
    """The built-in name and kind of a defect folder: the category's override, then [folders]."""
    key = folder_key(folder)
    taxonomy = _taxonomy()
    override = taxonomy.get("overrides", {}).get(knowledge_key, {}).get(category, {})
    entry, where = (override[key], f"overrides/{knowledge_key}/{category}/{key}") if key in override else (taxonomy["folders"].get(key), f"folders/{key}")
    if entry is None:
        return DefectInfo(folder, readable(folder), None, False, "folder name", known=False)
    name, kind = entry
    return DefectInfo(folder, name, defect_kinds()[0].get(kind), kind == GROUP, f"taxonomy.toml#{where}")


@lru_cache(maxsize=1)
def _objects() -> dict:
    return _load("objects.toml")


def generic_objects() -> tuple[str, ...]:
    return tuple(_objects()["generic_objects"])


def _builtin_object(knowledge_key: str, category: str) -> tuple[str, tuple[ObjectFact, ...], str] | None:
    entry = _objects().get(knowledge_key, {}).get(category)
    if entry is None:
        return None
    source = f"objects.toml#{knowledge_key}/{category}"
    return entry["name"], tuple(ObjectFact(f["question"], f["answer"], tuple(f["distractors"]), source) for f in entry.get("facts", [])), source


def _object(knowledge_key: str, category: str, entries: KnowledgeEntries | None) -> tuple[str, tuple[ObjectFact, ...], str]:
    """The object's name and facts: the knowledge file's, else the tables', else the folder's name."""
    from_file = entries.object(category) if entries else None
    if from_file is not None:
        name, facts, source = from_file
        return name, tuple(ObjectFact(*fact, source=source) for fact in facts), source
    builtin = _builtin_object(knowledge_key, category)
    return builtin if builtin is not None else (readable(category), (), "folder name")


def _defect(folder: str, knowledge_key: str, category: str, entries: KnowledgeEntries | None) -> DefectInfo:
    """The built-in entry, with the knowledge file's title and sentences over it where it has them."""
    info = defect_info(folder, knowledge_key, category)
    written = entries.defect(category, folder) if entries else None
    if written is None:
        return info
    title, description, impact, source = written
    return replace(info, name=info.name if info.group else title, description=description, impact=impact, source=source, known=True)


def category_knowledge(knowledge_key: str, categories: dict[str, tuple[str, ...]], entries: KnowledgeEntries | None = None) -> dict[str, CategoryKnowledge]:
    """Per category (name → its defect folders): everything the question builders may use."""
    objects = {name: _object(knowledge_key, name, entries) for name in categories}
    summaries = {name: entries.normal(name) if entries else None for name in categories}
    defects_by_category = {name: {folder: _defect(folder, knowledge_key, name, entries) for folder in folders} for name, folders in categories.items()}
    result = {}
    for name, folders in categories.items():
        defects = defects_by_category[name]
        others = [info for other, infos in defects_by_category.items() if other != name for info in infos.values() if not info.group]
        object_name, facts, source = objects[name]
        normal = summaries[name]
        result[name] = CategoryKnowledge(
            category=name,
            object_name=object_name,
            object_source=source,
            facts=facts,
            normal_summary=normal[0] if normal else None,
            normal_source=normal[1] if normal else "",
            defects=defects,
            other_objects=tuple(objects[other][0] for other in categories if other != name),
            other_normal_summaries=tuple(summaries[other][0] for other in categories if other != name and summaries[other]),
            other_descriptions=tuple(info.description for info in others if info.description),
            other_impacts=tuple(info.impact for info in others if info.impact),
        )
    return result


def domain_knowledge_texts(knowledge: CategoryKnowledge) -> dict[str, str]:
    """One category's entry of MMAD's domain_knowledge.json: {defect folder or "good": text}, in
    MMAD's style (" <Name>\n Description: …"). It names the category's defect kinds, which are
    also the Defect Classification options: a leakage risk the ablation should keep in mind."""
    texts: dict[str, str] = {}
    for folder, info in knowledge.defects.items():
        looks = info.description or (info.kind.looks if info.kind else None)
        if looks is not None:
            texts[folder] = f" <{info.name}>\n Description: {looks}"
    name = knowledge.object_name.lower()
    traits = "; ".join(fact.answer[0].lower() + fact.answer[1:] for fact in knowledge.facts)
    normal = knowledge.normal_summary or f"A {name} without defects." + (f" Normal characteristics: {traits}." if traits else "")
    texts["good"] = f" <Normal {name}>\n Description: {normal}"
    return texts
