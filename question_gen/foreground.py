"""The object's own pixels in a normal image, on any background: a size is said against the object,
never the frame.

A fixed colour distance from the border (the first rule) found nothing of a black tire on a
dark-grey table, so every tire defect was measured against the whole frame. The object is told
apart from the background by what the background itself is not, both measured on the image's
border band (the background, in MVTec-style photographs):

- colour: farther from the border's median colour than the border's own pixels are
  (its COLOUR_QUANTILE distance, times MARGIN, at least MIN_COLOUR_DISTANCE grey levels);
- texture: a local contrast (standard deviation of luminance in a LOCAL_WINDOW window) above the
  border's own (same quantile and margin, at least MIN_LOCAL_CONTRAST): a dark tread on a dark
  table, or a transparent bottle's edges against its backdrop.
The two are joined, closed over gaps, cleaned of specks, and the object is the convex hull of what
is left: a tire's sidewall and grooves are as dark as the table and show only as the gaps between
its lit tread blocks, which the hull bridges (an error of a hull over a concave part is well inside
the size classes' margin of a factor 1.4). A texture
(carpet, wood) fills the border band too, so almost nothing differs from it: None, and the whole
image is the object; so is a result outside FOREGROUND_SHARE (nothing found, or everything).
Work is done on a copy at most WORK_SIDE pixels wide; the mask comes back at full size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

BORDER_SHARE = 0.04  # the border band, as a share of the shorter side
COLOUR_QUANTILE = 0.99
MARGIN = 1.5
MIN_COLOUR_DISTANCE = 20.0  # grey levels (0..255)
LOCAL_WINDOW = 7
MIN_LOCAL_CONTRAST = 6.0  # grey levels
CLOSE_SHARE = 0.02  # closing radius, as a share of the shorter side
SPECK_SHARE = 0.005  # components smaller than this share of the image are specks
FOREGROUND_SHARE = (0.03, 0.9)
WORK_SIDE = 256


def _border(values: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([values[:width].reshape(-1, *values.shape[2:]), values[-width:].reshape(-1, *values.shape[2:]),
                           values[:, :width].reshape(-1, *values.shape[2:]), values[:, -width:].reshape(-1, *values.shape[2:])])


def _local_contrast(gray: np.ndarray) -> np.ndarray:
    mean = ndimage.uniform_filter(gray, LOCAL_WINDOW)
    square = ndimage.uniform_filter(gray * gray, LOCAL_WINDOW)
    return np.sqrt(np.maximum(square - mean * mean, 0.0))


def foreground_mask(template_rgb: np.ndarray) -> np.ndarray | None:
    """The object's pixels in a normal image (bool, the image's size), or None for a texture or
    when no object stands out (the whole image is then the object)."""
    height, width = template_rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = np.asarray(Image.fromarray(template_rgb.astype(np.uint8)).resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR), dtype=np.float32)
    if small.ndim == 2:
        small = np.stack([small] * 3, axis=-1)
    band = max(2, round(BORDER_SHARE * min(small.shape[:2])))
    border = _border(small, band)
    centre = np.median(border, axis=0)
    distance = np.abs(small - centre).max(axis=-1)
    colour_limit = max(MIN_COLOUR_DISTANCE, MARGIN * float(np.quantile(np.abs(border - centre).max(axis=-1), COLOUR_QUANTILE)))
    contrast = _local_contrast(small @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
    contrast_limit = max(MIN_LOCAL_CONTRAST, MARGIN * float(np.quantile(_border(contrast, band), COLOUR_QUANTILE)))
    found = (distance > colour_limit) | (contrast > contrast_limit)
    radius = max(1, round(CLOSE_SHARE * min(small.shape[:2])))
    found = ndimage.binary_closing(found, iterations=radius, border_value=0)
    labels, count = ndimage.label(found)
    if count:
        sizes = ndimage.sum(found, labels, range(1, count + 1))
        found = np.isin(labels, 1 + np.flatnonzero(sizes >= SPECK_SHARE * found.size))
    if found.any():
        from skimage.morphology import convex_hull_image

        found = convex_hull_image(found)
    share = float(found.mean())
    if not FOREGROUND_SHARE[0] <= share <= FOREGROUND_SHARE[1]:
        return None
    return np.asarray(Image.fromarray(found.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 0
