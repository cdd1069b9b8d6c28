"""Small file helpers shared by the run folder and the question generator."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def write_json_atomically(path: Path, payload: object) -> None:
    """Write JSON so a reader (or a crash) never sees half a file: temp file, fsync, rename."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two processes never share a temp file
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_stem(record_id: str) -> str:
    """A file stem for a record's artifacts (overlays, maps, agent images) that cannot collide: a
    readable ASCII part of its path, then a digest of the whole id. Names that differ only in
    characters the readable part drops (non-ASCII folders, '/' against '__') stay apart."""
    import re

    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(record_id).with_suffix("")).replace("/", "__")).strip("_")[-80:]
    return f"{readable}-{hashlib.sha256(record_id.encode('utf-8')).hexdigest()[:12]}"


# Spreadsheet programs run a cell that starts with one of these as a formula (OWASP: CSV
# injection). Text cells that do are written with a leading apostrophe; numbers are left alone.
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs: text starting like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def csv_text(rows) -> str:
    """Rows as CSV text, every field quoted as RFC 4180 needs (commas, quotes, line breaks) and
    neutralised against formula injection; the one way iadbench writes CSV."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()
