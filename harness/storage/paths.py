"""Resolving paths that come from data files, without ever leaving their root.

One rule for every path built from data, read or written (question files, labels.csv, generated
sets, exports): resolved inside its root or refused, before anything is read, written or removed.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path, PurePosixPath

from harness.errors import DataError

# Characters a single folder name from data may not hold: separators, NUL and other controls.
_NOT_IN_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def resolve_inside(root: Path, relative: str, *, what: str) -> Path:
    """Join a path taken from a data file onto `root`, refusing anything that escapes it.

    Both the lexical path (absolute paths, `..` segments) and the resolved path (symlinks
    pointing outside, or in a loop) are checked: a data file must never make us read or write
    arbitrary files. Every write goes through here.
    """
    return _resolve(root, relative, what=what, root_links=False)


def resolve_in_data_root(root: Path, relative: str, *, what: str) -> Path:
    """`resolve_inside` for reading a data root the user assembled: a folder directly in it may be
    the user's link to where a dataset already lives (MVTec-AD -> /datasets/mvtec_ad); the rest of
    the path must stay inside that link's target. A link deeper down, or to a file, is the data's
    and still may not lead out; nothing is ever written through here."""
    return _resolve(root, relative, what=what, root_links=True)


def _resolve(root: Path, relative: str, *, what: str, root_links: bool) -> Path:
    if not isinstance(relative, str) or not relative.strip():
        raise DataError(f"{what}: empty path")
    if "\x00" in relative:
        raise DataError(f"{what}: path {relative!r} holds a NUL character")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
        raise DataError(f"{what}: absolute path {relative!r} is not allowed; paths must be relative to the data root {root}")
    if ".." in pure.parts:
        raise DataError(f"{what}: path {relative!r} escapes the data root {root} ('..' is not allowed)")
    try:
        root_resolved = _linked_root(_real(str(root)), pure.parts[0]) if root_links and pure.parts else _real(str(root))
        candidate = os.path.realpath(os.path.join(_real(str(root)), *pure.parts), strict=False)
    except (OSError, RuntimeError, ValueError) as error:  # a symlink loop (RuntimeError before Python 3.13)
        raise DataError(f"{what}: path {relative!r} cannot be resolved ({error}); a symbolic link loops or is broken") from None
    if os.path.islink(candidate):  # realpath leaves a link it could not follow: a loop
        raise DataError(f"{what}: path {relative!r} cannot be resolved; a symbolic link loops or is broken")
    if candidate != root_resolved and not candidate.startswith(root_resolved.rstrip(os.sep) + os.sep):
        raise DataError(f"{what}: path {relative!r} resolves outside the data root {root}")
    return Path(candidate)


def _linked_root(root: str, first: str) -> str:
    """The root a path is held inside: the data root, or, when the path's first folder is a symbolic
    link to a folder, that link's target."""
    entry = os.path.join(root, first)
    if os.path.islink(entry) and os.path.isdir(entry):
        return _real(entry)
    return root


@lru_cache(maxsize=64)
def _real(root: str) -> str:
    """A root's real path, resolved once (a question file's 70,000 paths share one root)."""
    return os.path.realpath(root)


def check_folder_name(name: str, *, what: str) -> str:
    """A name from data that becomes one folder of an output (a category, a dataset name): no
    separators, no '.' or '..', no control characters, so it can never lead out of its parent."""
    if not isinstance(name, str) or not name.strip() or name.strip() in (".", "..") or _NOT_IN_NAME.search(name) or PurePosixPath(name).is_absolute():
        raise DataError(f"{what}: {name!r} cannot name a folder (no '/', '\\', '.', '..' or control characters); rename it")
    return name
