"""Domain-knowledge files (MMAD's domain_knowledge.json, or a TOML of the same shape), read and
checked once for every user: `generate --knowledge` and `--strategy rag`.

The shape is `{dataset: {category: {defect folder | "good" | "combined": text}}}`; a category may
also hold an `object` table `{name, facts: [{question, answer, distractors: [...]}]}`. A value of
the wrong type is a one-line error naming the file, the key and the type expected: a string where a
list belongs would otherwise be read letter by letter ("xyz" → options "x", "y", "z").
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.errors import DataError
from harness.storage.files import read_json_file, read_text_file

SHAPE = "{dataset: {category: {defect or good: text}}} (MMAD's domain_knowledge.json shape)"


def _kind(value: object) -> str:
    return {str: "a string", list: "a list", dict: "a table", int: "a number", float: "a number", bool: "true/false"}.get(type(value), type(value).__name__)


def _expect(value: object, kind: type, where: str, what: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(f"{where}: expected {what}, found {_kind(value)}")


def _check_object(entry: object, where: str) -> None:
    _expect(entry, dict, where, "a table {name, facts}")
    _expect(entry.get("name"), str, f"{where}.name", "a string (the object's name)")
    if "material" in entry:
        _expect(entry["material"], str, f"{where}.material", "a string (metal, glass, plastic, food, …)")
    facts = entry.get("facts", [])
    _expect(facts, list, f"{where}.facts", "a list of {question, answer, distractors}")
    for index, fact in enumerate(facts, start=1):
        at = f"{where}.facts[{index}]"
        _expect(fact, dict, at, "a table {question, answer, distractors}")
        for key in ("question", "answer"):
            _expect(fact.get(key), str, f"{at}.{key}", "a string")
        distractors = fact.get("distractors")
        _expect(distractors, list, f"{at}.distractors", "a list of strings (the wrong answers)")
        if not distractors or not all(isinstance(d, str) and d.strip() for d in distractors):
            raise DataError(f"{at}.distractors: expected a non-empty list of non-empty strings")


def check_knowledge(data: object, path: Path) -> dict:
    """The file's content if it has the shape above; else the first wrong value, named."""
    _expect(data, dict, str(path), SHAPE)
    for dataset, categories in data.items():
        _expect(categories, dict, f"{path}: {dataset}", "a table of categories")
        for category, entries in categories.items():
            where = f"{path}: {dataset}.{category}"
            _expect(entries, dict, where, "a table of defect entries (defect folder or good → text)")
            for key, value in entries.items():
                if key == "object":
                    _check_object(value, f"{where}.object")
                else:
                    _expect(value, str, f"{where}.{key}", "a string (\" <Title>\\n Description: …\")")
    return data


def read_knowledge(path: Path) -> dict:
    """A knowledge file (JSON, or TOML by its suffix), checked."""
    if not path.is_file():
        raise DataError(f"{path}: knowledge file not found")
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(read_text_file(path, what="knowledge file"))
        except tomllib.TOMLDecodeError as error:
            raise DataError(f"{path}: not valid TOML ({error}); expected {SHAPE}") from None
    else:
        data = read_json_file(path, what="knowledge file")
    return check_knowledge(data, path)
