"""Small file helpers shared by the run folder and the question generator."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path


def write_json_atomically(path: Path, payload: object) -> None:
    """Write JSON so a reader (or a crash) never sees half a file: temp file, fsync, rename."""
    text = json_text(payload, indent=2)
    write_atomically(path, lambda handle: handle.write(text + "\n"))


# Python's JSON reader refuses integers past 4,300 digits, and no count iadbench keeps is near
# 2^63: a larger one (a server's usage of 10**400) is written as this bound, readable everywhere.
JSON_INT_BOUND = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_safe(value: object) -> object:
    """`value` as strict JSON can hold it, so a writer never stops a run or writes what no reader
    takes: lone surrogates (a reply's "\\ud800") become U+FFFD, NaN and ±Infinity become null,
    integers past ±2^63 are capped. Every JSON and JSON-lines file iadbench writes goes through it."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return max(-JSON_INT_BOUND, min(JSON_INT_BOUND, value))
    if isinstance(value, dict):
        return {(json_safe(key) if isinstance(key, str) else key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def json_text(payload: object, **options) -> str:
    """Strict JSON text (never NaN or Infinity, never a surrogate a UTF-8 file cannot hold)."""
    return json.dumps(json_safe(payload), allow_nan=False, ensure_ascii=False, **options)


def model_json(record) -> str:
    """A pydantic record as one JSON line: pydantic's fast writer, or, when the record holds what it
    cannot encode (a lone surrogate), the same record through json_safe."""
    try:
        return record.model_dump_json()
    except ValueError:  # PydanticSerializationError: surrogates not allowed
        return json_text(record.model_dump(mode="json"))


def write_text_atomically(path: Path, text: str) -> None:
    """A whole text file (a report, an export) or none: never half of one after a full disk or Ctrl-C."""
    write_atomically(path, lambda handle: handle.write(text))


def write_atomically(path: Path, fill) -> None:
    """Temp file beside `path`, filled by `fill(handle)`, fsynced, renamed over `path`."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two processes never share a temp file
    try:
        # never through a link planted at the temp file's (predictable) name
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:  # a full disk, Ctrl-C: the old file stays whole and no temp file is left
        try:
            temporary.unlink()
        except OSError:
            pass
        raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_git_blob(path: Path) -> str:
    """The file's git blob id (sha1 of "blob SIZE\\0" and its bytes): how a repository names a file
    whose SHA-256 was never published."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
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


# A plain number written as text ("-0.5", "1e-05") is a number to a spreadsheet, not a formula:
# left as it is, so an export that must match a published CSV byte for byte still does.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs: text starting like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows) -> str:
    """Rows as CSV text, every field quoted as RFC 4180 needs (commas, quotes, line breaks) and
    neutralised against formula injection; the one way iadbench writes CSV."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # Python's writer quotes a field holding "\n" but not one holding a lone "\r", which readers
    # then take for a row break: such a row is written with every field quoted.
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [csv_cell(cell) for cell in row]
        (quoted if any(isinstance(cell, str) and "\r" in cell for cell in cells) else writer).writerow(cells)
    return buffer.getvalue()


_BOMS = ((b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def read_text_file(path: Path, *, what: str = "file") -> str:
    """A data file's text as UTF-8, or a one-line error naming the file and what it is instead
    (UTF-16, Latin-1, …), so a file saved by another tool is never misread or a traceback."""
    from harness.errors import DataError

    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a {what}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    for bom, name in _BOMS:
        if data.startswith(bom):
            if bom == b"\xef\xbb\xbf":
                data = data[len(bom):]  # a spreadsheet's byte-order mark: the text is UTF-8
                break
            raise DataError(f"{path}: the {what} is {name}, not UTF-8; save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        guess = "Latin-1 or Windows-1252" if all(b >= 0x80 for b in data[error.start:error.end]) else "not text"
        raise DataError(f"{path}: the {what} is not UTF-8 (byte {error.start}: {data[error.start:error.start + 1]!r}; it looks {guess}); save it as UTF-8") from None


def read_json_file(path: Path, *, what: str = "JSON file", object_pairs_hook=None):
    """A JSON data file, every way it can be wrong named in one line: unreadable, not UTF-8, not
    JSON, or nested deeper than Python's parser goes."""
    from harness.errors import DataError

    text = read_text_file(path, what=what)
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: the {what} is not valid JSON ({error})") from None
    except RecursionError:
        raise DataError(f"{path}: the {what} is nested too deeply to read (thousands of levels); it is not a file iadbench writes or reads") from None


def toml_string(text: str) -> str:
    """`text` as a TOML basic string. JSON's escapes are TOML's, but TOML takes no surrogate pair
    (so non-ASCII stays as it is, in UTF-8) and no raw DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
