"""Files inside a folder iadbench owns (a run folder, a written question set): plain files only.

iadbench writes every file in a run folder itself, so a symbolic link there (samples.jsonl, .lock,
an overlay folder) or a path recorded in a sample that leads out of the folder (an absolute
overlay_path, '..') was put there by someone else: following it would append answers to, create,
or embed in a report a file outside the folder. One rule, at the one place every such file is
opened: the path stays lexically inside the folder, no part of it below the folder is a link
(lstat), and the final open does not follow one either (O_NOFOLLOW), so a link made after the
check is refused too. The folder itself may be reached through links (runs/ on another disk).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import IO

from harness.errors import RunFolderError

_MODES = {
    "r": os.O_RDONLY, "rb": os.O_RDONLY,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def inside_folder(folder: Path, relative: str | os.PathLike, *, what: str = "run folder") -> Path:
    """`folder / relative`, refused unless it stays inside `folder` through plain folders and files."""
    text = os.fspath(relative)
    pure = PurePosixPath(text.replace("\\", "/")) if isinstance(text, str) else None
    if not text or pure is None or "\x00" in text or pure.is_absolute() or ".." in pure.parts or (pure.parts and pure.parts[0].endswith(":")):
        raise RunFolderError(f"{folder}: the {what} names {text!r}, a path outside it; iadbench only reads and writes files inside its own folders (restore the file that names it, or start a new run)")
    path = folder
    for part in pure.parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break  # what follows does not exist yet: it will be made as a plain file or folder
        except OSError:
            break  # unreadable: the open that follows names the failure
        if stat.S_ISLNK(mode):
            raise refused_link(path, what)
    return folder.joinpath(*pure.parts)


def refused_link(path: Path, what: str = "run folder") -> RunFolderError:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return RunFolderError(f"{path}: is a symbolic link (to {target}) inside a {what}, which iadbench never makes; it is refused so nothing outside is read or written: "
                          "replace it with the file itself, or start a new run")


def open_inside(folder: Path, relative: str | os.PathLike, mode: str = "rb", *, what: str = "run folder", linked_ok: bool = False) -> IO:
    """open() for a file inside `folder`, with `inside_folder`'s rule and without following a link.
    A file opened to write that has another hard link (the same bytes under a name outside) is
    refused too, unless `linked_ok` (a lock file, never written)."""
    path = inside_folder(folder, relative, what=what)
    try:
        descriptor = os.open(path, _MODES[mode] | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as error:
        if os.path.islink(path):  # ELOOP: made a link between the check and the open
            raise refused_link(path, what) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # a FIFO or device would hang or stream forever
            raise RunFolderError(f"{path}: not a plain file (a pipe, device or folder) inside a {what}; replace it with the file iadbench wrote, or start a new run")
        if mode[0] in "aw" and not linked_ok and os.fstat(descriptor).st_nlink > 1:
            raise RunFolderError(f"{path}: has {os.fstat(descriptor).st_nlink - 1} other hard link(s), so writing it would change that file too; "
                                 f"replace it with a copy of its own (cp {path.name} x && mv x {path.name}), or start a new run")
        return os.fdopen(descriptor, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except BaseException:
        os.close(descriptor)
        raise


def read_inside(folder: Path, relative: str | os.PathLike, *, what: str = "run folder") -> bytes:
    with open_inside(folder, relative, "rb", what=what) as handle:
        return handle.read()


def check_no_links(folder: Path, *, what: str = "run folder") -> None:
    """Refuse a folder holding a link or a special file anywhere below it (one walk, nothing
    followed): every later read or write of its files can then only reach the folder itself."""
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue  # an unreadable subfolder: the read that needs it names the failure
        for entry in entries:
            if entry.is_symlink():
                raise refused_link(Path(entry.path), what)
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif not entry.is_file(follow_symlinks=False):
                raise RunFolderError(f"{entry.path}: not a plain file (a pipe, socket or device) inside a {what}; remove it, or start a new run")
