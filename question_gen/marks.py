"""How many marks a defect's pixels show, beside what its outline says.

An annotator may draw one outline around many marks: a patch of dozens of crossing scratches is
one mask component, so the outline alone says "a single scratch". The pixels inside it that differ
from the surface say otherwise in one of two ways:

- they fall apart into separate parts (parallel scratches, scattered specks);
- they are thin (mean width, area over skeleton length, at most THIN_PIXELS) and their skeleton
  crosses itself at CROSSINGS or more places (lines crossing one another: one connected part, many
  marks). A solid blob is never thin, so its skeleton's branches count for nothing.
Either makes the count of marks at least MANY (attributes.MANY_PARTS decides what is then unsure).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import measure
from skimage.morphology import skeletonize

THIN_PIXELS = 4.0
CROSSINGS = 2


def parts(pixels: np.ndarray, min_pixels: int) -> int:
    """Separate marks among the pixels: 8-connected components of at least `min_pixels`."""
    labels = measure.label(pixels, connectivity=2)
    return sum(r.area >= min_pixels for r in measure.regionprops(labels))


def crossings(pixels: np.ndarray) -> int:
    """Places where thin lines among the pixels cross (junction clusters of their skeleton); 0 for
    pixels that are not thin."""
    skeleton = skeletonize(pixels)
    length = int(skeleton.sum())
    if not length or pixels.sum() / length > THIN_PIXELS:
        return 0
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    junctions = skeleton & (neighbours >= 3)
    return int(ndimage.label(junctions, structure=np.ones((3, 3)))[1])


def marks_shown(pixels: np.ndarray, min_pixels: int, many: int) -> int:
    """The number of marks the pixels show: their separate parts, or `many` where thin lines cross
    at CROSSINGS or more places."""
    found = parts(pixels, min_pixels)
    return max(found, many) if crossings(pixels) >= CROSSINGS else found
