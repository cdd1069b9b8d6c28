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
class Statement:
    """One cause or consequence of a kind, with its family (options come from different families)
    and the materials it is true of."""

    text: str
    family: str
    materials: frozenset[str] | None = None  # only these (None: any)
    excluded: frozenset[str] = frozenset()  # never these

    def applies(self, material: str | None) -> bool:
        """True of an object made of `material`; an unknown material takes only what holds of any."""
        if self.materials is None and not self.excluded:
            return True
        if material is None:
            return False
        return (self.materials is None or material in self.materials) and material not in self.excluded


@dataclass(frozen=True)
class DefectKind:
    kind: str
    name: str
    looks: str
    near: frozenset[str]  # kinds whose looks could also be true of this one (symmetric)
    mark: bool  # a visible mark whose pixels a measured description can describe
    terms: re.Pattern  # words that name the kind
    noun: tuple[str, str]  # (singular, plural) in a measured description
    causes: tuple[Statement, ...]
    consequences: tuple[Statement, ...]
    noun_shaped: bool = False  # the noun says the shape: a measured description states none
    occurs_on: frozenset[str] | None = None  # the materials it can occur on at all (None: any object)

    def statements(self, aspect: str) -> tuple[Statement, ...]:
        return self.causes if aspect == "cause" else self.consequences

    def occurs(self, material: str | None) -> bool:
        """Whether a defect of this kind can occur on an object of `material` at all; an object of
        unknown material takes only the kinds that can occur on any."""
        return self.occurs_on is None or (material is not None and material in self.occurs_on)


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
    description: str | None = None  # from a knowledge file: what the defect looks like (one appearance sentence)
    impact: str | None = None  # from a knowledge file: what the defect does (one consequence sentence)
    cause: str | None = None  # from a knowledge file: where the defect comes from (one cause sentence)
    known: bool = True  # False: the name is the folder made readable (reported as unknown)


@dataclass(frozen=True)
class CategoryKnowledge:
    category: str
    object_name: str
    object_source: str
    material: str | None = None  # objects.toml or the knowledge file's object table: keeps analysis options true of it
    facts: tuple[ObjectFact, ...] = ()
    normal_summary: str | None = None  # from a knowledge file's "good" entry (the knowledge text written for the set)
    normal_source: str = ""
    defects: dict[str, DefectInfo] = field(default_factory=dict)  # the folders with images
    # every defect of this object the knowledge file describes, images or not: the own alternatives
    # of a knowledge-based question (never another object's sentences, which give the answer away)
    described: dict[str, DefectInfo] = field(default_factory=dict)
    # the described defects of categories of the same object kind (VisA's pcb1 to pcb4): written for
    # this kind of object, so also never a giveaway
    kin_described: tuple[DefectInfo, ...] = ()
    other_objects: tuple[str, ...] = ()  # names of the dataset's other categories' objects

    def with_facts(self, facts: tuple[ObjectFact, ...]) -> "CategoryKnowledge":
        return replace(self, facts=self.facts + facts)


def _load(name: str) -> dict:
    return tomllib.loads(resources.files("question_gen.data").joinpath(name).read_text())


def _expand(names: list[str] | None, groups: dict[str, list[str]]) -> frozenset[str] | None:
    """Material names with defects.toml's groups (hard, soft, …) spelled out; None stays None (any)."""
    return None if names is None else frozenset(m for name in names for m in groups.get(name, [name]))


def _statements(entries: list[dict], groups: dict[str, list[str]]) -> tuple[Statement, ...]:
    return tuple(Statement(e["text"], e["family"], _expand(e.get("materials"), groups), _expand(e.get("except"), groups) or frozenset()) for e in entries)


@lru_cache(maxsize=1)
def defect_kinds() -> tuple[dict[str, DefectKind], tuple[tuple[str, str], ...]]:
    """(kind → knowledge, generic distractor [name, kind] pairs)."""
    raw = _load("defects.toml")
    generic = tuple((name, kind) for name, kind in raw.pop("generic")["names"])
    groups = raw.pop("materials")
    near: dict[str, set[str]] = {kind: set(entry.get("looks_near", [])) for kind, entry in raw.items()}
    for kind, others in list(near.items()):  # "could look alike" goes both ways
        for other in others:
            near.setdefault(other, set()).add(kind)
    kinds = {
        kind: DefectKind(
            kind, e["name"], e["looks"], frozenset(near[kind]), bool(e["mark"]), re.compile(e["terms"], re.I), tuple(e.get("noun", ["mark", "marks"])),  # type: ignore[arg-type]
            _statements(e["causes"], groups), _statements(e["consequences"], groups), bool(e.get("noun_shaped", False)),
            _expand(e.get("occurs_on"), groups),
        )
        for kind, e in raw.items()
    }
    return kinds, generic


def names_kind_or_near(text: str, kind: str) -> bool:
    """Whether a sentence names `kind`, or a kind that could be mistaken for it."""
    kinds = defect_kinds()[0]
    return any(kinds[k].terms.search(text) for k in (kind, *kinds[kind].near) if k in kinds) if kind in kinds else False


def exclusive(a: str, b: str) -> bool:
    """Two kinds whose looks cannot both be true of one defect: one may be the other's distractor."""
    kinds = defect_kinds()[0]
    return a != b and b not in kinds[a].near if a in kinds else a != b


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


def builtin_object(knowledge_key: str, category: str) -> tuple[str, str | None, tuple[ObjectFact, ...], str] | None:
    entry = _objects().get(knowledge_key, {}).get(category)
    if entry is None:
        return None
    source = f"objects.toml#{knowledge_key}/{category}"
    facts = tuple(ObjectFact(f["question"], f["answer"], tuple(f["distractors"]), source) for f in entry.get("facts", []))
    return entry["name"], entry.get("material"), facts, source


def _object(knowledge_key: str, category: str, entries: KnowledgeEntries | None) -> tuple[str, str | None, tuple[ObjectFact, ...], str]:
    """The object's name, material and facts: the knowledge file's, else the tables', else the folder's name."""
    builtin = builtin_object(knowledge_key, category)
    from_file = entries.object(category) if entries else None
    if from_file is not None:
        name, material, facts, source = from_file
        return name, material or (builtin[1] if builtin else None), tuple(ObjectFact(*fact, source=source) for fact in facts), source
    return builtin if builtin is not None else (readable(category), None, (), "folder name")


_LINKING_WORDS = frozenset("on in of at to the a an and or with from near along inside around over under by for".split())


def option_name(title: str, object_words: set[str]) -> str:
    """A knowledge file's title as a Defect Classification option: without the object's own name
    (MMAD titles "Hazelnut Shell Hole", "Broken Grid": the only option naming the object gives the
    answer away) and in sentence case like the built-in names (acronyms kept)."""
    words = [w for w in title.split() if w.lower().rstrip("s") not in object_words and w.lower() not in object_words]
    # a word that only tied the object's name in ("Crack on Bottle" less the bottle) goes with it
    while words and words[-1].lower() in _LINKING_WORDS:
        words.pop()
    while words and words[0].lower() in _LINKING_WORDS:
        words.pop(0)
    words = words or title.split()
    return " ".join(w if w.isupper() and len(w) > 1 else (w.capitalize() if i == 0 else w.lower()) for i, w in enumerate(words))


def _defect(folder: str, knowledge_key: str, category: str, entries: KnowledgeEntries | None, object_name: str = "") -> DefectInfo:
    """The built-in entry, with the knowledge file's title and sentences over it where it has them."""
    info = defect_info(folder, knowledge_key, category)
    written = entries.defect(category, folder) if entries else None
    if written is None:
        return info
    parsed, source = written
    object_words = {w.lower().rstrip("s") for w in re.findall(r"[A-Za-z]+", f"{object_name} {category}")}
    name = info.name if info.group else option_name(parsed.title, object_words)
    return replace(info, name=name, description=parsed.appearance, impact=parsed.consequence, cause=parsed.cause, source=source, known=True)


def category_knowledge(knowledge_key: str, categories: dict[str, tuple[str, ...]], entries: KnowledgeEntries | None = None) -> dict[str, CategoryKnowledge]:
    """Per category (name → its defect folders): everything the question builders may use."""
    objects = {name: _object(knowledge_key, name, entries) for name in categories}
    described = {name: {folder: _defect(folder, knowledge_key, name, entries, objects[name][0]) for folder in (entries.defect_folders(name) if entries else [])} for name in categories}
    result = {}
    for name, folders in categories.items():
        defects = {folder: _defect(folder, knowledge_key, name, entries, objects[name][0]) for folder in folders}
        object_name, material, facts, source = objects[name]
        kin = tuple(info for other in categories if other != name and folder_key(objects[other][0]) == folder_key(object_name) for info in described[other].values())
        normal = entries.normal(name) if entries else None
        result[name] = CategoryKnowledge(
            category=name,
            object_name=object_name,
            object_source=source,
            material=material,
            facts=facts,
            normal_summary=normal[0] if normal else None,
            normal_source=normal[1] if normal else "",
            defects=defects,
            described=described[name],
            kin_described=kin,
            other_objects=tuple(objects[other][0] for other in categories if other != name),
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
