"""Ground-truth masks from disk: the one way every part of iadbench reads them.

Threshold (documented in the README): a lossless mask with few distinct values (0/255, or VisA's
class ids 1, 2, …) counts every non-zero pixel as defect. A mask that looks lossy (a JPEG file,
or more than MAX_LOSSLESS_LEVELS distinct values: compression noise around 0 and 255) counts only
pixels above half its maximum, and a LossyMaskWarning names the file: with `> 0`, a JPEG box mask
of 64×64 px was read as almost the whole image.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.errors import DataError

MAX_LOSSLESS_LEVELS = 16
LOSSY_SUFFIXES = (".jpg", ".jpeg")


class LossyMaskWarning(UserWarning):
    """A mask that looks compressed: thresholded at half its maximum instead of at 0."""


def mask_pixels(gray: np.ndarray, path: Path) -> np.ndarray:
    """Defect pixels of one mask by the rule above."""
    levels = np.unique(gray)
    if path.suffix.lower() in LOSSY_SUFFIXES or len(levels) > MAX_LOSSLESS_LEVELS:
        _warn_lossy(str(path), len(levels))
        return gray > (int(gray.max()) // 2)
    return gray > 0


@lru_cache(maxsize=1024)
def _warn_lossy(path: str, levels: int) -> None:
    warnings.warn(LossyMaskWarning(f"mask {path} looks lossy ({levels} grey levels): thresholded at half its maximum; save masks as PNG"), stacklevel=3)


def load_mask_union(paths: Iterable[Path], shape: tuple[int, int]) -> np.ndarray:
    """Union of an image's masks (MVTec LOCO keeps several; VisA stores class ids). A mask of
    another size is resized (nearest) to `shape`. An unreadable mask is an error naming it."""
    union = np.zeros(shape, dtype=bool)
    for path in paths:
        try:
            with Image.open(path) as mask:
                gray = mask.convert("L") if mask.mode not in ("I;16", "I;16B", "I;16L", "I") else Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255)
                if gray.size != (shape[1], shape[0]):
                    gray = gray.resize((shape[1], shape[0]), Image.NEAREST)
                union |= mask_pixels(np.asarray(gray), Path(path))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
            raise DataError(f"cannot read mask {path}: {error}; fix or remove the file") from None
    return union
