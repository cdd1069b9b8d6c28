"""RobustMAD's degraded images (`--perturb robustmad-low`), as its utils/generate_LoQ_images.py makes
them: the images in file order get "light" or "blur", half each (the extra one light), shuffled by
Python's random seeded 42; light is cv2.convertScaleAbs with alpha 0.6 and beta -10, blur a
horizontal motion blur of 12 px (a 12×12 kernel whose middle row holds 1/12, cv2.filter2D); the
query and its reference get the same. Written as cv2.imwrite writes them, with the file's extension.
Checked against the published low file's split and an independent numpy rendering in
tests/test_robustmad.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

SEED, ALPHA, BETA, KERNEL = 42, 0.6, -10, 12
LIGHT, BLUR = "light", "blur"


def assignment(images: int) -> list[str]:
    """The degradation of each image, in file order."""
    half = images // 2
    assigned = [LIGHT] * (half + images % 2) + [BLUR] * half
    random.Random(SEED).shuffle(assigned)
    return assigned


def degrade(bgr: np.ndarray, kind: str) -> np.ndarray:
    import cv2

    if kind == LIGHT:
        return cv2.convertScaleAbs(bgr, alpha=ALPHA, beta=BETA)
    kernel = np.zeros((KERNEL, KERNEL))
    kernel[int((KERNEL - 1) / 2), :] = np.ones(KERNEL)
    return cv2.filter2D(bgr, -1, kernel / KERNEL)


def degraded_file(source: Path, kind: str, folder: Path) -> Path:
    """The degraded copy of `source` in `folder` (made once), named as the script names it."""
    import cv2

    target = folder / f"{source.stem}_{kind}{source.suffix}"
    if not target.is_file():
        image = cv2.imread(str(source))
        if image is None:
            raise OSError(f"cannot read image {source}")
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial{target.suffix}")
        cv2.imwrite(str(partial), degrade(image, kind))
        partial.replace(target)  # whole or not at all: a killed run never leaves half an image
    return target
