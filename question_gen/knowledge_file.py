"""`generate --knowledge FILE`: a domain-knowledge file in MMAD's shape, read for question generation.

MMAD ships `domain_knowledge.json`: `{dataset: {category: {defect folder | "good" | "combined": text}}}`
where a text reads `" <Title>\n Description: …"` (several such blocks in some entries). A TOML file of
the same shape is read the same way. One extension: a category may hold an `object` table,
`{name = "...", material = "...", facts = [{question, answer, distractors}]}`, for Object
Classification and Analysis.

From a defect's text the generator takes its title (the option name) and, by each sentence's role
(question_gen/sentence_roles.py), its first appearance sentence (Defect Description), its first
consequence sentence and its first cause sentence (Defect Analysis); location sentences are never
keys. From "good", a one-sentence summary of the normal object. Sentences longer than MAX_WORDS
words are cut there, so options drawn from texts of very different lengths do not give the answer
away by length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.adsets.knowledge import read_knowledge
from harness.errors import DataError

# MMAD's top-level keys for iadbench's dataset kinds (DS-MVTec queries use the MVTec key).
MMAD_KEYS = {"mvtec-ad": "MVTec", "loco": "MVTec-LOCO", "visa": "VisA", "goodsad": "GoodsAD"}
MAX_WORDS = 24
_BLOCK = re.compile(r"<([^<>\n]+)>\s*\n?\s*Description:\s*(.*?)(?=\n\s*<[^<>\n]+>\s*\n|\Z)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
SKIP_ENTRIES = ("combined",)  # a summary of the category's defects, not one defect


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


def sentences(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", text.replace("**", "")).strip()
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


def shortened(sentence: str) -> str:
    words = sentence.split()
    return sentence if len(words) <= MAX_WORDS else " ".join(words[:MAX_WORDS]).rstrip(",;:") + " …"


@dataclass(frozen=True)
class ParsedEntry:
    title: str
    appearance: str | None  # what the defect looks like
    consequence: str | None  # what it does to the product
    cause: str | None  # where it comes from


def parse_entry(text: str) -> ParsedEntry | None:
    """The title and the first sentence of each role of one MMAD-style text; None if it has no <Title>."""
    from question_gen.sentence_roles import sentence_role

    block = _BLOCK.search(text)
    if block is None:
        return None
    title, body = block.group(1).strip(), block.group(2)
    found = [s for s in sentences(body) if not s.endswith(":") and len(s.split()) >= 4]
    first = {}
    for sentence in found:
        first.setdefault(sentence_role(sentence), shortened(sentence))
    return ParsedEntry(title, first.get("appearance"), first.get("consequence"), first.get("cause"))


@dataclass(frozen=True)
class KnowledgeEntries:
    """One dataset's categories from a knowledge file."""

    label: str  # file name and dataset key, for provenance
    categories: dict

    def _category(self, category: str) -> dict:
        wanted = _normalise(category)
        return next((value for key, value in self.categories.items() if _normalise(key) == wanted), {})

    def defect(self, category: str, folder: str) -> tuple[ParsedEntry, str] | None:
        """A defect folder's entry, parsed, with its provenance."""
        entries = self._category(category)
        key = next((k for k in entries if _normalise(k) == _normalise(folder)), None)
        if key is None or key in SKIP_ENTRIES or not isinstance(entries[key], str):
            return None
        parsed = parse_entry(entries[key])
        return None if parsed is None else (parsed, f"{self.label}/{category}/{key}")

    def defect_folders(self, category: str) -> list[str]:
        """Every defect entry of a category (images of it or not): the pool of its own alternatives."""
        return [key for key, value in self._category(category).items() if key not in (*SKIP_ENTRIES, "good", "object") and isinstance(value, str)]

    def normal(self, category: str) -> tuple[str, str] | None:
        text = self._category(category).get("good")
        parsed = parse_entry(text) if isinstance(text, str) else None
        return None if parsed is None or parsed.appearance is None else (parsed.appearance, f"{self.label}/{category}/good")

    def object(self, category: str) -> tuple[str, str | None, list[tuple[str, str, tuple[str, ...]]], str] | None:
        """(name, material, facts, provenance) from the category's `object` table."""
        entry = self._category(category).get("object")
        if not isinstance(entry, dict) or not entry.get("name"):
            return None
        where = f"{self.label}/{category}/object"
        # the file was checked when read (harness/adsets/knowledge.py): every field has its type
        facts = [(fact["question"], fact["answer"], tuple(fact["distractors"])) for fact in entry.get("facts", [])]
        return entry["name"], entry.get("material"), facts, where


def read_knowledge_file(path: Path, *, dataset_name: str, knowledge_key: str) -> KnowledgeEntries:
    """The entries of `path` for this dataset: the top-level key named like the dataset (`--name` or
    the folder's name), else MMAD's key for its kind (MVTec, MVTec-LOCO, VisA, GoodsAD), else the
    only key. Anything else is an error that lists the keys."""
    data = read_knowledge(path)
    wanted = [_normalise(dataset_name), _normalise(MMAD_KEYS.get(knowledge_key, knowledge_key))]
    key = next((k for w in wanted for k in data if _normalise(k) == w), None)
    if key is None and len(data) == 1:
        key = next(iter(data))
    if key is None:
        raise DataError(f"{path}: no entry for dataset {dataset_name!r}; its datasets are {', '.join(sorted(data))} (name the dataset with --name)")
    return KnowledgeEntries(f"{path.name}#{key}", data[key])
