"""Which question-file release a run used (by SHA-256), and errata: known faulty records to leave out."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from harness.errors import ConfigError


@dataclass(frozen=True)
class Release:
    name: str
    sha256: str
    questions: int
    official: bool


@dataclass(frozen=True)
class Errata:
    name: str
    description: str
    source: str
    records: frozenset[str]


def releases() -> list[Release]:
    data = tomllib.loads(resources.files("harness.data").joinpath("releases.toml").read_text())
    return [Release(**entry) for entry in data["release"]]


def release_for(sha256: str) -> Release | None:
    return next((r for r in releases() if r.sha256 == sha256), None)


def errata_names() -> list[str]:
    folder = resources.files("harness.data").joinpath("errata")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_errata(name_or_path: str) -> Errata:
    """A bundled errata file by name, or a TOML file of the same shape (name, description, source,
    records: the question file's keys)."""
    path = Path(name_or_path)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files("harness.data").joinpath("errata", f"{name_or_path}.toml")
        if not resource.is_file():
            raise ConfigError(f"unknown errata {name_or_path!r}: not a file, and not one of {', '.join(errata_names())}")
        text = resource.read_text()
    try:
        data = tomllib.loads(text)
        return Errata(data["name"], data["description"], data["source"], frozenset(data["records"]))
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        raise ConfigError(f"errata {name_or_path}: needs name, description, source and records ({error})") from None
