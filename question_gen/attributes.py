"""Facts about a defect that can be read off its mask (and the image under it).

These facts make the localization and description questions true by construction. Thresholds are
module constants so the README can state them and tests can pin them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from skimage import measure

GRID_ROWS = ("top", "middle", "bottom")
GRID_COLS = ("left", "center", "right")

# A defect is "mainly" in a cell when that cell holds at least this share of its area.
MAIN_CELL_SHARE = 0.5
# A cell counts as touched by the defect (so it cannot be a distractor) above this share.
TOUCHED_CELL_SHARE = 0.05
# Components smaller than this many pixels are specks, not separate defects (shared with the box task).
from harness.metrics.boxes import MIN_COMPONENT_PIXELS  # noqa: E402
# Relative area (defect / object): below SMALL is small, below LARGE is medium, else large.
SMALL_AREA, LARGE_AREA = 0.01, 0.05
# Elongation = major / minor axis of the largest component.
ELONGATED_RATIO, ROUND_RATIO, ROUND_SOLIDITY = 3.0, 1.6, 0.85
# Mean luminance change (0..1) inside the defect against a ring around it.
TONE_DELTA = 0.06

Size = Literal["small", "medium", "large"]
Shape = Literal["elongated", "round", "irregular"]
Tone = Literal["darker", "brighter", "discoloured", "similar"]


@dataclass(frozen=True)
class DefectAttributes:
    cell_shares: tuple[tuple[float, ...], ...]  # 3×3 share of the defect area per grid cell
    main_cell: tuple[int, int] | None  # (row, col) holding ≥ MAIN_CELL_SHARE, else None
    relative_area: float
    size: Size
    shape: Shape
    count: int
    tone: Tone
    tone_vs_template: Tone | None = None  # the defect area against the same area of the nearest normal image


def cell_name(row: int, col: int) -> str:
    """'top left', 'center', 'middle right', … as MMAD-style location words."""
    if (row, col) == (1, 1):
        return "center"
    if row == 1:
        return f"middle {GRID_COLS[col]}"
    if col == 1:
        return f"{GRID_ROWS[row]} center"
    return f"{GRID_ROWS[row]} {GRID_COLS[col]}"


def grid_cell_shares(mask: np.ndarray) -> np.ndarray:
    """Share of the mask's pixels in each cell of a 3×3 grid over the image."""
    height, width = mask.shape
    row_edges = np.linspace(0, height, 4).round().astype(int)
    col_edges = np.linspace(0, width, 4).round().astype(int)
    total = max(int(mask.sum()), 1)
    shares = np.zeros((3, 3))
    for r in range(3):
        for c in range(3):
            shares[r, c] = mask[row_edges[r] : row_edges[r + 1], col_edges[c] : col_edges[c + 1]].sum() / total
    return shares


def adjacent_cells(row: int, col: int) -> set[tuple[int, int]]:
    """Cells sharing an edge with (row, col): distractors must not be these (see README)."""
    return {(r, c) for r, c in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)) if 0 <= r < 3 and 0 <= c < 3}


def _size(relative_area: float) -> Size:
    if relative_area < SMALL_AREA:
        return "small"
    return "medium" if relative_area < LARGE_AREA else "large"


def _shape(region) -> Shape:
    minor = max(region.axis_minor_length, 1.0)
    ratio = region.axis_major_length / minor
    if ratio >= ELONGATED_RATIO:
        return "elongated"
    if ratio < ROUND_RATIO and region.solidity >= ROUND_SOLIDITY:
        return "round"
    return "irregular"


def _tone(image: np.ndarray, mask: np.ndarray) -> Tone:
    """Compare the defect with a ring of pixels around it in the same image (no alignment needed)."""
    from scipy import ndimage

    ring = ndimage.binary_dilation(mask, iterations=4) & ~mask
    if not ring.any():
        return "similar"
    rgb = image.astype(np.float32) / 255.0
    return _compare(rgb[mask].mean(axis=0), rgb[ring].mean(axis=0))


def _compare(inside: np.ndarray, reference: np.ndarray) -> Tone:
    """Mean RGB (0..1) of the defect against a reference colour: luminance first, then a colour shift."""
    delta_luma = float(inside.mean() - reference.mean())
    if delta_luma <= -TONE_DELTA:
        return "darker"
    if delta_luma >= TONE_DELTA:
        return "brighter"
    chroma_shift = float(np.abs((inside - inside.mean()) - (reference - reference.mean())).max())
    return "discoloured" if chroma_shift >= TONE_DELTA else "similar"


def change_against_template(image: np.ndarray, template: np.ndarray, mask: np.ndarray) -> Tone | None:
    """The defect area against the same pixels of a normal image of the category (MVTec-style
    objects are photographed in place, so the same pixels show the same part). None when the two
    images differ in size: then there is no pixel correspondence to trust."""
    if template.shape != image.shape or not mask.any():
        return None
    inside = image[mask].astype(np.float32).mean(axis=0) / 255.0
    reference = template[mask].astype(np.float32).mean(axis=0) / 255.0
    return _compare(inside, reference)


def defect_attributes(mask: np.ndarray, image: np.ndarray, object_area: float, template: np.ndarray | None = None) -> DefectAttributes:
    """Attributes of a binary defect mask over an RGB uint8 image of the same size; with `template`
    (the nearest normal image), also the change against it."""
    labels = measure.label(mask, connectivity=2)
    regions = [r for r in measure.regionprops(labels) if r.area >= MIN_COMPONENT_PIXELS]
    if not regions:
        raise ValueError("defect mask has no component of at least MIN_COMPONENT_PIXELS pixels")
    largest = max(regions, key=lambda r: r.area)
    shares = grid_cell_shares(mask)
    row, col = np.unravel_index(int(shares.argmax()), shares.shape)
    main_cell = (int(row), int(col)) if shares[row, col] >= MAIN_CELL_SHARE else None
    relative_area = float(mask.sum()) / max(object_area, 1.0)
    return DefectAttributes(
        cell_shares=tuple(tuple(float(v) for v in row_) for row_ in shares),
        main_cell=main_cell,
        relative_area=relative_area,
        size=_size(relative_area),
        shape=_shape(largest),
        count=len(regions),
        tone=_tone(image, mask),
        tone_vs_template=change_against_template(image, template, mask) if template is not None else None,
    )


def estimate_object_area(template_rgb: np.ndarray) -> float:
    """Object extent from a normal image: pixels that differ from the border colour.

    Textures (where almost everything, or almost nothing, differs from the border) count the whole
    image as the object.
    """
    rgb = template_rgb.astype(np.float32)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    distance = np.abs(rgb - np.median(border, axis=0)).max(axis=-1)
    share = float((distance > 40).mean())
    if share < 0.03 or share > 0.9:
        return float(rgb.shape[0] * rgb.shape[1])
    return share * rgb.shape[0] * rgb.shape[1]
