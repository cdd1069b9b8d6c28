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
    questions: int
    official: bool
    sha256: str | None = None
    git_blob: str | None = None  # the repository's blob id, for a file known only by it (RobustMAD's open-question files)
    label: str | None = None  # a benchmark's own name for the release (RobustMAD's published rows use one)


@dataclass(frozen=True)
class Errata:
    name: str
    description: str
    source: str
    records: frozenset[str]
    questions: frozenset[str] = frozenset()  # single questions by id ('<record key>#<index>'): an audit's or a review's findings
    reasons: dict[str, str] | None = None  # per record or question: why it is listed


def releases() -> list[Release]:
    data = tomllib.loads(resources.files("harness.data").joinpath("releases.toml").read_text())
    return [Release(**entry) for entry in data["release"]]


def release_for(sha256: str | None = None, git_blob: str | None = None) -> Release | None:
    """The known release with this SHA-256, or else with this git blob id."""
    known = releases()
    return next((r for r in known if sha256 and r.sha256 == sha256), None) or next((r for r in known if git_blob and r.git_blob == git_blob), None)


def errata_names() -> list[str]:
    folder = resources.files("harness.data").joinpath("errata")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_errata(name_or_path: str) -> Errata:
    """A bundled errata file by name, or a TOML file of the same shape (name, description, source,
    records: the question file's keys)."""
    path = Path(name_or_path)
    if path.is_file():
        from harness.storage.files import read_text_file

        text = read_text_file(path, what="errata file")
    else:
        resource = resources.files("harness.data").joinpath("errata", f"{name_or_path}.toml")
        if not resource.is_file():
            raise ConfigError(f"unknown errata {name_or_path!r}: not a file, and not one of {', '.join(errata_names())}")
        text = resource.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"errata {name_or_path}: not valid TOML ({error})") from None
    for key in ("name", "description", "source"):
        if not isinstance(data.get(key), str):
            raise ConfigError(f"errata {name_or_path}: {key} must be a string (errata files hold name, description, source and records)")
    records, questions, reasons = data.get("records", []), data.get("questions", []), data.get("reasons", {})
    if not isinstance(records, list) or not all(isinstance(r, str) for r in records):
        raise ConfigError(f"errata {name_or_path}: records must be a list of the question file's keys (strings)")
    if not isinstance(questions, list) or not all(isinstance(q, str) and "#" in q for q in questions):
        raise ConfigError(f"errata {name_or_path}: questions must be a list of question ids ('<record key>#<index>', as `iadbench audit` writes them)")
    if not isinstance(reasons, dict) or not all(isinstance(v, str) for v in reasons.values()):
        raise ConfigError(f"errata {name_or_path}: reasons must be a table of strings (id = \"why\")")
    return Errata(data["name"], data["description"], data["source"], frozenset(records), frozenset(questions), reasons or None)


def release_name(protocol: str, digest: str) -> str | None:
    """The known release a question file is (by SHA-256). An official protocol on an unknown file
    is a warning: the run is valid, only not on the published data."""
    import sys

    release = release_for(digest)
    if release is None and protocol != "harmonised":
        print(f"iadbench: warning: the question file (sha256 {digest[:12]}…) is not a known MMAD release; published rows used the official one", file=sys.stderr)
    return release.name if release else None


def exclude_errata(question_set, name: str) -> None:
    """Leave out the records an errata file lists (each counted as skipped, with the errata's reason)."""
    from harness.schema import SkippedRecord

    errata = load_errata(name)
    listed = [key for key in question_set.images if key in errata.records]
    for key in listed:
        del question_set.images[key]
        question_set.skipped.append(SkippedRecord(record=key, reason=f"errata {errata.name}: {errata.description} ({errata.source})"))
    dropped = set(listed)
    reasons = errata.reasons or {}
    kept = []
    for question in question_set.questions:
        if question.image_id in dropped:
            continue
        if question.id in errata.questions:
            why = reasons.get(question.id, errata.description)
            question_set.skipped.append(SkippedRecord(record=question.id, reason=f"errata {errata.name}: {why}"))
            continue
        kept.append(question)
    question_set.questions = kept
