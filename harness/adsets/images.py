"""Images from disk: the one way every part of iadbench reads a photograph (generation, prompting,
experts, GPT-4V-AD, reports), whatever mode the camera or the dataset wrote.

- 8-bit RGB, grey ("L"), 1-bit, palette, RGBA/LA (alpha dropped), CMYK, YCbCr: Pillow's RGB conversion.
- 16-bit grey or RGB ("I;16*", "I", 48-bit PNGs): scaled by 1/257 (0–65535 → 0–255). Pillow's own
  conversion clips everything above 255 to white, which turned industrial cameras' 16-bit images
  into blank pictures.
- 32-bit float ("F"): values in [0, 1] ×255; otherwise divided by the image's maximum.
- EXIF orientation is NOT applied: AD datasets draw their masks on the stored pixels, and rotating
  the image alone would move the defect away from its mask.
- A file that cannot be decoded raises UnreadableImage naming it; callers turn it into a per-record
  error or warning.
"""

from __future__ import annotations

from collections.abc import Callable

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.errors import DataError

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class UnreadableImage(DataError):
    """An image file that cannot be decoded."""


def to_rgb(image: Image.Image) -> Image.Image:
    """An opened image as 8-bit RGB by the rules above."""
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        peak = values.max() if values.size else 1.0
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return Image.fromarray(np.clip(np.round(values * scale), 0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    """The image at `path` as 8-bit RGB (fully loaded; the file is closed)."""
    return open_converted(path, to_rgb)


def open_converted(path: str | Path, convert: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """`convert` applied to the file as Pillow opens it (fully loaded; the file is closed); a file
    Pillow cannot decode, or no regular file, raises UnreadableImage naming it."""
    if not Path(path).is_file():  # a folder, a pipe (reading it would wait forever), a broken or looping link
        raise UnreadableImage(f"cannot decode image {path}: not a regular file")
    try:
        with Image.open(path) as image:
            image.load()
            return convert(image)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"cannot decode image {path}: {error}") from None


def load_rgb_array(path: str | Path) -> np.ndarray:
    """The image as an H×W×3 uint8 array."""
    return np.asarray(open_rgb(path))
