"""Ground-truth masks from disk: the one way every part of iadbench reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image


def load_mask_union(paths: Iterable[Path], shape: tuple[int, int]) -> np.ndarray:
    """Union of an image's masks (MVTec LOCO keeps several; VisA stores class ids): non-zero is
    defect. A mask of another size is resized (nearest) to `shape`."""
    union = np.zeros(shape, dtype=bool)
    for path in paths:
        with Image.open(path) as mask:
            gray = mask.convert("L")
            if gray.size != (shape[1], shape[0]):
                gray = gray.resize((shape[1], shape[0]), Image.NEAREST)
            union |= np.asarray(gray) > 0
    return union
