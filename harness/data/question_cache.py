"""A question file read once: its records parsed and every path in it resolved and checked, kept per
file digest (and the settings that change what is checked) in the cache folder, so `score` and every
later eval of the same file skip the 70,000 path resolutions of an MMAD-sized set.

The entry is only an index of what was checked: it is trusted like the response cache beside it (the
user's own cache folder), and any entry that cannot be read back whole is a miss, parsed again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness.schema import ImageRecord, Question, SkippedRecord

# Bump when what load_mmad checks or records changes: older entries then miss.
FORMAT = 2


def cache_key(digest: str, root: Path, templates: str, shots: int, skip_bad: bool, masks: bool = True) -> str:
    return hashlib.sha256(f"{FORMAT}|{digest}|{root.resolve()}|{templates}|{shots}|{skip_bad}|{masks}".encode()).hexdigest()


class _Entry(BaseModel):
    images: list[ImageRecord]
    questions: list[Question]
    skipped: list[SkippedRecord]


def read_entry(folder: Path, key: str) -> tuple[dict[str, ImageRecord], list[Question], list[SkippedRecord]] | None:
    try:
        entry = _Entry.model_validate_json((folder / f"{key}.json").read_bytes())
    except (OSError, ValueError, ValidationError):
        return None
    return {image.id: image for image in entry.images}, entry.questions, entry.skipped


def write_entry(folder: Path, key: str, images: dict[str, ImageRecord], questions: list[Question], skipped: list[SkippedRecord]) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk) costs only speed."""
    from harness.storage.files import write_text_atomically

    payload = {"images": [i.model_dump(mode="json") for i in images.values()], "questions": [q.model_dump(mode="json") for q in questions],
               "skipped": [s.model_dump(mode="json") for s in skipped]}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomically(folder / f"{key}.json", json.dumps(payload, separators=(",", ":")))
    except OSError:
        pass
