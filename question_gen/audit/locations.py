"""Reading a Defect Localization option as a part of the image, so a mask can say whether it holds.

MMAD's options are free text ("Top left.", "Around the center of the image.", "Along the bottom
edge."); iadbench's are 3×3 cell names ("The top left of the image."). A phrase made of position
words becomes a region: the rows and columns it names (thirds of the image), an edge band, or the
corners. A phrase that names a part of the object ("On the cap.", "Near the thread.") or the whole
image ("Multiple locations.") is no region: the audit does not judge it, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# The share of the image's width or height an edge band covers: what "along the left edge" means.
EDGE_BAND = 0.2
_THIRDS = {"top": 0, "upper": 0, "middle": 1, "bottom": 2, "lower": 2}
_COLUMNS = {"left": 0, "center": 1, "central": 1, "right": 2}
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")
# Words that only frame a position ("the top left of the image", "located around ...").
_FRAME = frozenset("the of image picture photo in at on near around along toward towards to side sides part area region portion located positioned situated is a an section quadrant corner corners edge edges border borders periphery perimeter rim outer and zone".split())
# Words that say the defect covers much of the image: always partly true, never a region to judge.
_EVERYWHERE = frozenset("multiple several various throughout entire whole across all overall everywhere many".split())


@dataclass(frozen=True)
class Region:
    """Rows and columns (thirds, 0..2) the phrase names, or an edge band or the corners."""

    rows: frozenset[int]
    cols: frozenset[int]
    edge: bool = False  # a band along the border (of the named sides, or all four)
    corners: bool = False

    def pixels(self, shape: tuple[int, int]) -> np.ndarray:
        height, width = shape
        ys = np.arange(height)[:, None] * 3 // height
        xs = np.arange(width)[None, :] * 3 // width
        inside = np.isin(ys, list(self.rows)) & np.isin(xs, list(self.cols))
        if self.corners:
            inside = (ys != 1) & (xs != 1) & inside
        if self.edge:
            band_y, band_x = max(1, int(round(EDGE_BAND * height))), max(1, int(round(EDGE_BAND * width)))
            yy, xx = np.arange(height)[:, None], np.arange(width)[None, :]
            sides = np.zeros(shape, dtype=bool)
            named_rows, named_cols = self.rows != frozenset({0, 1, 2}), self.cols != frozenset({0, 1, 2})
            if not named_rows and not named_cols:  # "the edges": all four bands
                sides = (yy < band_y) | (yy >= height - band_y) | (xx < band_x) | (xx >= width - band_x)
            else:
                if named_rows:
                    sides |= ((yy < band_y) & (0 in self.rows)) | ((yy >= height - band_y) & (2 in self.rows))
                if named_cols:
                    sides |= ((xx < band_x) & (0 in self.cols)) | ((xx >= width - band_x) & (2 in self.cols))
                sides &= np.isin(ys, list(self.rows)) & np.isin(xs, list(self.cols))
            inside = sides
        return inside

    def share(self, mask: np.ndarray) -> float:
        """The share of the mask's pixels inside the region."""
        total = int(mask.sum())
        return float((mask & self.pixels(mask.shape)).sum()) / total if total else 0.0


def region(phrase: str) -> Region | None:
    """The region a location phrase names; None when it names none (a part, or everywhere)."""
    words = _WORD.findall(phrase.lower().replace("centre", "center"))
    if not words or any(w in _EVERYWHERE for w in words):
        return None
    rows = {_THIRDS[w] for w in words if w in _THIRDS}
    cols = {_COLUMNS[w] for w in words if w in _COLUMNS}
    edge = any(w in ("edge", "edges", "border", "borders", "periphery", "perimeter", "rim", "outer") for w in words)
    corners = any(w in ("corner", "corners") for w in words)
    central = any(w in ("center", "central", "middle") for w in words)
    unknown = [w for w in words if w not in _THIRDS and w not in _COLUMNS and w not in _FRAME]
    if unknown or not (rows or cols or edge or corners):
        return None  # a part of the object ("the cap", "the thread"): the mask cannot say where that is
    if central and not (rows - {1}) and not (cols - {1}):
        rows, cols = {1}, {1}  # "the center", "the middle", "around the center of the image"
    return Region(frozenset(rows or {0, 1, 2}), frozenset(cols or {0, 1, 2}), edge=edge and not central, corners=corners and not (rows and cols))
