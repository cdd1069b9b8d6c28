"""Which normal images look most like a query: the template-similarity descriptor.

A 16×16 grey thumbnail, zero-mean and unit-norm; cosine similarity of two of them compares global
layout and pose, which is what makes a normal template useful beside a query. No download, and
microseconds an image once decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

THUMBNAIL_SIDE = 16


def descriptor(rgb: np.ndarray) -> np.ndarray:
    thumb = Image.fromarray(rgb).convert("L").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.BILINEAR)
    vector = np.asarray(thumb, dtype=np.float32).ravel()
    vector -= vector.mean()
    return vector / (np.linalg.norm(vector) or 1.0)


def file_descriptor(path: Path) -> np.ndarray:
    from harness.adsets.images import UnreadableImage, to_rgb

    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))  # JPEGs decode at reduced size: the thumbnail needs no more
            return descriptor(np.asarray(to_rgb(image)))
    except OSError as error:
        raise UnreadableImage(f"cannot decode image {path}: {error}") from None


def most_similar(query: np.ndarray, candidates: np.ndarray, count: int) -> list[int]:
    """Indices of the `count` candidates (rows) most similar to the query, most similar first."""
    return [int(i) for i in np.argsort(-(candidates @ query), kind="stable")[:count]]
