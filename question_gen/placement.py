"""Where a dataset's files sit in a generated set, and copying them there: every target checked to
stay inside the output folder before anything is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.storage.paths import resolve_inside


def placed(category: str, relative: str) -> str:
    """Where a source file sits in the generated set: MMAD keys read `<dataset>/<category>/...`, so a
    file not already under a folder named after its category (a labelled folder's imgs/a.png)
    is placed under one (part/imgs/a.png): the category comes from the labels, not the first folder."""
    return relative if relative.split("/", 1)[0] == category else f"{category}/{relative}"


def _placements(source_root: Path, dataset_dir: Path, files: list[tuple[str, str]]) -> list[tuple[Path, Path]]:
    """Every (source, target) pair, each checked to stay inside its root, before anything is
    written: a crafted labels.csv cannot make generation write, replace or delete a file outside
    the output folder."""
    return [
        (resolve_inside(source_root, relative, what=f"{source_root}: source file"), resolve_inside(dataset_dir, place, what=f"{dataset_dir}: generated file"))
        for relative, place in files
    ]


def materialise(source_root: Path, dataset_dir: Path, files: list[tuple[str, str]]) -> None:
    """Make the set self-contained: link (or copy) each needed file (source path, place in the set)
    under the output folder. A file already there (from an earlier generation into the same
    folder) is replaced when the source changed since; nothing outside the folder is touched."""
    if source_root.resolve() == dataset_dir.resolve():
        return
    dataset_dir.mkdir(parents=True, exist_ok=True)
    for source, target in _placements(source_root, dataset_dir, files):
        if target.exists():
            if target.samefile(source) or (target.stat().st_size == source.stat().st_size and target.stat().st_mtime >= source.stat().st_mtime):
                continue
            target.unlink()  # generating again after a source image was replaced: never keep the old copy
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
