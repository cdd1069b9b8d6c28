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
