"""Which defect kinds an option's words name, read through a category's own wording
(question_gen/data/audit_wording.toml): a screw's "thread" is a part of the screw, not a loose
thread; a zipper's "rough" folder is named "rough". Every check that asks "does this text name the
folder's kind, or another one?" reads through here, so MMAD's own wording is not flagged."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from question_gen.knowledge import defect_kinds


@dataclass(frozen=True)
class Wording:
    """One category's (and folder's) wording: its parts, the folder's names, its near kinds."""

    parts: re.Pattern | None = None
    names: re.Pattern | None = None
    near: frozenset[str] = frozenset()

    def strip(self, text: str) -> str:
        """The text without the words that are the object's parts or the folder's own names."""
        for pattern in (self.parts, self.names):
            if pattern is not None:
                text = pattern.sub(" ", text)
        return text

    def names_folder(self, text: str) -> bool:
        return self.names is not None and bool(self.names.search(text))


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


@lru_cache(maxsize=1)
def _table() -> dict[str, dict]:
    raw = tomllib.loads(resources.files("question_gen.data").joinpath("audit_wording.toml").read_text())
    return {_key(category): entry for category, entry in raw.items() if isinstance(entry, dict)}


@lru_cache(maxsize=256)
def wording(category: str, folder: str) -> Wording:
    entry = _table().get(_key(category), {})
    own = next((v for k, v in entry.items() if isinstance(v, dict) and _key(k) == _key(folder)), {})
    pattern = lambda text: re.compile(text, re.I) if text else None  # noqa: E731
    return Wording(pattern(entry.get("parts")), pattern(own.get("names")), frozenset(own.get("near", ())))


def kinds_named(text: str, own_kind: str | None, words: Wording) -> set[str]:
    """The defect kinds `text` names: the folder's own where its names are used, and the kinds
    the rest of the words name once the object's parts are taken out."""
    named = {kind for kind, entry in defect_kinds()[0].items() if entry.terms.search(words.strip(text))}
    if own_kind is not None and words.names_folder(text):
        named.add(own_kind)
    return named
