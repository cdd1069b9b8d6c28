"""Resolving paths that come from data files, without ever leaving the dataset root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from harness.errors import DataError


def resolve_inside(root: Path, relative: str, *, what: str) -> Path:
    """Join a path taken from a data file onto `root`, refusing anything that escapes it.

    Both the lexical path (absolute paths, `..` segments) and the resolved path (symlinks
    pointing outside) are checked: a question file must never make us read arbitrary files.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise DataError(f"{what}: empty path")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
        raise DataError(f"{what}: absolute path {relative!r} is not allowed; paths must be relative to the data root {root}")
    if ".." in pure.parts:
        raise DataError(f"{what}: path {relative!r} escapes the data root {root} ('..' is not allowed)")
    root_resolved = root.resolve()
    candidate = (root_resolved / Path(*pure.parts)).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise DataError(f"{what}: path {relative!r} resolves outside the data root {root}")
    return candidate
