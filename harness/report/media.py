"""Images in a report: small JPEG data URLs, so the page stands alone."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

THUMBNAIL = 160
# Outline colours, tried in order: the one furthest from the pixels it is drawn on wins (a red
# outline vanished on MVTec's red capsule).
OUTLINE_COLOURS = np.array([(255, 0, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 255, 0), (0, 0, 255)], dtype=float)


def outline_colour(under: np.ndarray) -> tuple[int, int, int]:
    """The outline colour that stands out most from `under` (N×3 pixels it replaces)."""
    if under.size == 0:
        return (255, 0, 0)
    distances = np.linalg.norm(under[None, :, :].astype(float) - OUTLINE_COLOURS[:, None, :], axis=2)
    best = int(np.argmax(np.median(distances, axis=1)))
    return tuple(int(v) for v in OUTLINE_COLOURS[best])  # type: ignore[return-value]


def _refused(error: Exception) -> None:
    import sys

    print(f"iadbench: warning: {error}; that image is left out of the report", file=sys.stderr)


def run_file(folder: Path, relative: object) -> Path | None:
    """An image a sample names inside its run folder (an overlay, a map), or None, said on stderr,
    when the path leads out of the folder or through a link: it costs that image, not the report."""
    from harness.errors import IadbenchError
    from harness.storage.runfiles import inside_folder

    if not isinstance(relative, str) or not relative:
        return None
    try:
        return inside_folder(folder, relative, what="sample's image path")
    except IadbenchError as error:
        _refused(error)
        return None


def run_file_thumbnail(folder: Path, relative: object) -> str | None:
    path = run_file(folder, relative)
    return thumbnail(path) if path is not None else None


def data_path(root: Path, relative: object, what: str) -> Path | None:
    """An image a sample names, resolved inside its data root (the dataset rule,
    harness/storage/paths.py), or None, said once on stderr, when it would lead outside."""
    from harness.errors import IadbenchError
    from harness.storage.paths import resolve_inside

    try:
        return resolve_inside(root, relative, what=what)  # type: ignore[arg-type]
    except IadbenchError as error:
        _refused(error)
        return None


def thumbnail(path: Path, mask_paths: list[Path] | None = None) -> str | None:
    """A small JPEG data URL, with the defect mask's outline when given (in the colour that stands
    out from the image there)."""
    from harness.adsets.images import UnreadableImage, open_rgb

    try:
        rgb = open_rgb(path)
    except UnreadableImage:
        return None
    rgb.thumbnail((THUMBNAIL, THUMBNAIL))
    if mask_paths:
        union = np.zeros((rgb.size[1], rgb.size[0]), bool)
        for mask_path in mask_paths:
            try:
                with Image.open(mask_path) as mask:
                    union |= np.asarray(mask.convert("L").resize(rgb.size, Image.NEAREST)) > 0
            except OSError:
                continue
        edge = union & ~np.pad(union, 1)[1:-1, 2:] | union & ~np.pad(union, 1)[2:, 1:-1] | union & ~np.pad(union, 1)[1:-1, :-2] | union & ~np.pad(union, 1)[:-2, 1:-1]
        pixels = np.asarray(rgb).copy()
        pixels[edge] = outline_colour(pixels[edge])
        rgb = Image.fromarray(pixels)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
