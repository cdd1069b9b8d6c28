"""Facts about a defect that its pixels support (and where it sits, from its mask).

These facts make the localization and description questions true by construction. A description
must hold for what a person sees, not for the annotator's outline, so:

- tone is the defect's pixels against a ring of the object's own pixels around it (background left
  out), read off medians;
- the mask's outline gives the shape only where the mask is tight: where the band just inside the
  outline differs from the surroundings as the core does (a coarse blob drawn around a jagged hole
  is not a round defect);
- size is the defect's area (for a loose mask, its pixels that differ) against the object's area;
- a value within a margin of a class boundary is unknown (None): it is neither keyed nor offered as
  a distractor, because a person could fairly read it either way.
Thresholds and margins are module constants, so the README can state them and tests can pin them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from skimage import measure

from question_gen.marks import marks_shown

GRID_ROWS = ("top", "middle", "bottom")
GRID_COLS = ("left", "center", "right")

# Components smaller than this many pixels are specks, not separate defects (shared with the box task).
from harness.metrics.boxes import MIN_COMPONENT_PIXELS  # noqa: E402


def _margins() -> dict:
    import tomllib
    from importlib import resources

    return tomllib.loads(resources.files("question_gen.data").joinpath("attributes.toml").read_text())


_M = _margins()
# A defect is "mainly" in a cell holding MAIN_CELL_SHARE of its area; a cell holding more than
# TOUCHED_CELL_SHARE is touched by it (never a distractor).
MAIN_CELL_SHARE, TOUCHED_CELL_SHARE = _M["grid"]["main_cell_share"], _M["grid"]["touched_cell_share"]
# Relative area (defect / object): below SMALL is small, below LARGE is medium, else large; within a
# factor SIZE_MARGIN of either boundary the size is not said.
SMALL_AREA, LARGE_AREA, SIZE_MARGIN = _M["size"]["small_below"], _M["size"]["large_from"], _M["size"]["margin"]
# Shape of the largest component (a tight mask only): elongated at a major/minor axis ratio of at
# least ELONGATED_RATIO, round below ROUND_RATIO with a solidity of at least ROUND_SOLIDITY,
# irregular when neither and clearly so (solidity below IRREGULAR_SOLIDITY, or a ratio between the
# two ranges with a margin on each side).
ELONGATED_RATIO, ROUND_RATIO, ROUND_SOLIDITY = _M["shape"]["elongated_ratio"], _M["shape"]["round_ratio"], _M["shape"]["round_solidity"]
IRREGULAR_SOLIDITY, IRREGULAR_RATIOS = _M["shape"]["irregular_solidity"], tuple(_M["shape"]["irregular_ratios"])
ROUND_CIRCULARITY = _M["shape"]["round_circularity"]
# Tone: the median luminance (0..1) of the defect against its ring; darker or brighter beyond
# TONE_DELTA + TONE_MARGIN, similar within TONE_DELTA - TONE_MARGIN (and no colour shift), unknown
# in between. A colour shift is the largest per-channel difference once luminance is set aside.
TONE_DELTA, TONE_MARGIN, COLOUR_SHIFT = _M["tone"]["delta"], _M["tone"]["margin"], _M["tone"]["colour_shift"]
# A mask is loose (drawn well around the defect) when a clear share (CLEAR_CONTRAST) of its core's
# pixels differ from the ring around it while the band just inside its outline has less than
# LOOSE_BAND of that share: the outline then runs over the intact surface. A mask too thin for a
# core is tight.
CLEAR_CONTRAST, LOOSE_BAND, BAND_PIXELS = _M["tightness"]["clear_contrast"], _M["tightness"]["loose_band"], _M["tightness"]["band_pixels"]
RING_PIXELS = _M["tightness"]["ring_pixels"]
# A mask drawn as one or two parts whose differing pixels show MANY_PARTS or more marks (separate,
# or thin lines crossing: question_gen/marks.py) has no count a person would agree on: unsure.
MANY_PARTS = _M["count"]["many_parts"]
LINES_SHOWN = _M["count"]["lines_shown"]

Size = Literal["small", "medium", "large"]
Shape = Literal["elongated", "round", "irregular"]
Tone = Literal["darker", "brighter", "discoloured", "similar"]


@dataclass(frozen=True)
class DefectAttributes:
    cell_shares: tuple[tuple[float, ...], ...]  # 3×3 share of the defect area per grid cell
    main_cell: tuple[int, int] | None  # (row, col) holding ≥ MAIN_CELL_SHARE, else None
    relative_area: float
    size: Size | None  # None: too close to a class boundary to say
    shape: Shape | None  # None: the mask is not tight around the defect, or the shape is borderline
    count: int
    tone: Tone | None  # None: too close to a class boundary to say
    tone_vs_template: Tone | None = None  # the defect area against the same area of the nearest normal image
    count_sure: bool = True  # False: the pixels show many marks where the outline shows one or two
    tightness: float = 1.0  # how much the band inside the outline differs from the ring, relative to the core
    measures: dict = field(default_factory=dict, compare=False)  # the numbers behind each attribute, for the report and the audit


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


def _size(relative_area: float) -> Size | None:
    if relative_area < SMALL_AREA / SIZE_MARGIN:
        return "small"
    if SMALL_AREA * SIZE_MARGIN <= relative_area < LARGE_AREA / SIZE_MARGIN:
        return "medium"
    if relative_area >= LARGE_AREA * SIZE_MARGIN:
        return "large"
    return None


def circularity(region) -> float:
    """4πA/P² with the Crofton perimeter: about 1.0 for a disk, 0.89-0.94 for a square."""
    return float(4 * np.pi * region.area / max(region.perimeter_crofton, 1.0) ** 2)


def _shape(region) -> tuple[Shape | None, float, float]:
    """(shape or None, axis ratio, solidity) of a component. A compact, convex outline is round
    only when its outline is also a curve (ROUND_CIRCULARITY): a square chunk of rubber is no
    round patch, nor clearly irregular, so its shape is not said."""
    ratio = region.axis_major_length / max(region.axis_minor_length, 1.0)
    solidity = float(region.solidity)
    if ratio >= ELONGATED_RATIO:
        return "elongated", ratio, solidity
    if ratio < ROUND_RATIO and solidity >= ROUND_SOLIDITY:
        return ("round" if circularity(region) >= ROUND_CIRCULARITY else None), ratio, solidity
    low, high = IRREGULAR_RATIOS
    if solidity < IRREGULAR_SOLIDITY or low <= ratio <= high:
        return "irregular", ratio, solidity
    return None, ratio, solidity


def ruled_out(attributes: DefectAttributes) -> dict[str, frozenset[str]]:
    """Per attribute, the values the measures make clearly false (past the boundary and its margin):
    a distractor may say only these, and an audit finds a description wrong only when it says one.
    A value near a boundary is neither the attribute nor ruled out."""
    m = attributes.measures
    out: dict[str, set[str]] = {"size": set(), "shape": set(), "tone": set()}
    area = m.get("relative_area", attributes.relative_area)
    if area >= SMALL_AREA * SIZE_MARGIN:
        out["size"].add("small")
    if area < SMALL_AREA / SIZE_MARGIN or area >= LARGE_AREA * SIZE_MARGIN:
        out["size"].add("medium")
    if area < LARGE_AREA / SIZE_MARGIN:
        out["size"].add("large")
    if "luminance_delta" in m:
        delta, shift = m["luminance_delta"], m["colour_shift"]
        if delta > -(TONE_DELTA - TONE_MARGIN):
            out["tone"].add("darker")
        if delta < TONE_DELTA - TONE_MARGIN:
            out["tone"].add("brighter")
        if shift < COLOUR_SHIFT - TONE_MARGIN:
            out["tone"].add("discoloured")
        if abs(delta) >= TONE_DELTA + TONE_MARGIN or shift >= COLOUR_SHIFT + TONE_MARGIN:
            out["tone"].add("similar")
    if attributes.shape is not None and "axis_ratio" in m:  # a loose mask's outline says nothing of the shape
        ratio, solidity = m["axis_ratio"], m["solidity"]
        if ratio < IRREGULAR_RATIOS[1]:
            out["shape"].add("elongated")
        if ratio >= IRREGULAR_RATIOS[0] or solidity < IRREGULAR_SOLIDITY:
            out["shape"].add("round")
        if solidity >= ROUND_SOLIDITY and (ratio < ROUND_RATIO or ratio >= ELONGATED_RATIO):
            out["shape"].add("irregular")
    return {name: frozenset(values) for name, values in out.items()}


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _ring(mask: np.ndarray, foreground: np.ndarray | None) -> np.ndarray:
    """The pixels around the defect it is compared with: the object's own, not the background
    (a defect at an object's edge would otherwise be compared with the table it lies on)."""
    from scipy import ndimage

    ring = ndimage.binary_dilation(mask, iterations=RING_PIXELS) & ~mask
    if foreground is not None:
        on_object = ring & foreground
        if on_object.sum() >= max(20, 0.3 * ring.sum()):
            return on_object
    return ring


def _tone(inside: np.ndarray, reference: np.ndarray) -> tuple[Tone | None, float, float]:
    """(tone or None, luminance delta, colour shift) of the defect's pixels against the reference
    pixels (both N×3, 0..1), by medians."""
    if not len(inside) or not len(reference):
        return None, 0.0, 0.0
    a, b = np.median(inside, axis=0), np.median(reference, axis=0)
    delta = float(_luminance(a) - _luminance(b))
    shift = float(np.abs((a - a.mean()) - (b - b.mean())).max())
    if delta <= -(TONE_DELTA + TONE_MARGIN):
        return "darker", delta, shift
    if delta >= TONE_DELTA + TONE_MARGIN:
        return "brighter", delta, shift
    if abs(delta) <= TONE_DELTA - TONE_MARGIN:
        if shift >= COLOUR_SHIFT + TONE_MARGIN:
            return "discoloured", delta, shift
        if shift <= COLOUR_SHIFT - TONE_MARGIN:
            return "similar", delta, shift
    return None, delta, shift


def _differing(pixels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Which pixels (N×3, 0..1) differ from the reference pixels: farther from their median than 95%
    of the reference pixels themselves are (with a floor, so a flat surface does not flag noise)."""
    centre = np.median(reference, axis=0)
    spread = max(float(np.quantile(np.abs(reference - centre).max(axis=1), 0.95)), 0.06)
    return np.abs(pixels - centre).max(axis=1) > spread


def tightness(rgb: np.ndarray, mask: np.ndarray, ring: np.ndarray) -> tuple[float, np.ndarray]:
    """(how much the band inside the outline differs from the ring, relative to the core: 1.0 where
    it cannot be judged; the mask's pixels that differ from the ring). A mask too thin for a core
    (a crack, a scratch), or one whose core hardly differs (a subtle defect on a busy texture), is
    taken as drawn: tight."""
    from scipy import ndimage

    differing = np.zeros_like(mask)
    if not ring.any():
        return 1.0, mask
    differing[mask] = _differing(rgb[mask], rgb[ring])
    core = ndimage.binary_erosion(mask, iterations=BAND_PIXELS)
    band = mask & ~core
    if core.sum() < 20 or band.sum() < 20:
        return 1.0, differing
    core_share = float(differing[core].mean())
    if core_share < CLEAR_CONTRAST:
        return 1.0, differing
    return min(1.0, float(differing[band].mean()) / core_share), differing


def change_against_template(image: np.ndarray, template: np.ndarray, mask: np.ndarray) -> Tone | None:
    """The defect area against the same pixels of a normal image of the category (MVTec-style
    objects are photographed in place, so the same pixels show the same part). None when the two
    images differ in size: then there is no pixel correspondence to trust."""
    if template.shape != image.shape or not mask.any():
        return None
    inside = image[mask].astype(np.float32) / 255.0
    reference = template[mask].astype(np.float32) / 255.0
    return _tone(inside, reference)[0]


def defect_attributes(mask: np.ndarray, image: np.ndarray, object_area: float | None, template: np.ndarray | None = None, foreground: np.ndarray | None = None) -> DefectAttributes:
    """Attributes of a binary defect mask over an RGB uint8 image of the same size (`object_area`
    None: the object's extent is unsure, so no size is said); with `template`
    (the nearest normal image), also the change against it; with `foreground` (the object's pixels
    in a normal image), the ring is kept on the object."""
    labels = measure.label(mask, connectivity=2)
    regions = [r for r in measure.regionprops(labels) if r.area >= MIN_COMPONENT_PIXELS]
    if not regions:
        raise ValueError("defect mask has no component of at least MIN_COMPONENT_PIXELS pixels")
    largest = max(regions, key=lambda r: r.area)
    shares = grid_cell_shares(mask)
    row, col = np.unravel_index(int(shares.argmax()), shares.shape)
    main_cell = (int(row), int(col)) if shares[row, col] >= MAIN_CELL_SHARE else None
    if foreground is not None and foreground.shape != mask.shape:
        foreground = None
    rgb = image.astype(np.float32) / 255.0
    ring = _ring(mask, foreground)
    tight_ratio, differing = tightness(rgb, mask, ring)
    tight = tight_ratio >= LOOSE_BAND
    # a loose mask overstates the defect: its size and tone are read from the pixels that differ
    defect = mask if tight or differing.sum() < MIN_COMPONENT_PIXELS else differing
    relative_area = float(defect.sum()) / max(object_area if object_area is not None else mask.size, 1.0)
    marks = marks_shown(differing, MIN_COMPONENT_PIXELS, MANY_PARTS) if differing is not mask else len(regions)
    count_sure = len(regions) >= MANY_PARTS or marks < MANY_PARTS
    shown = float(differing[mask].mean()) if differing is not mask else 1.0  # how much of the outline the pixels confirm
    tone, delta, shift = _tone(rgb[defect], rgb[ring])
    shape, ratio, solidity = _shape(largest)
    return DefectAttributes(
        cell_shares=tuple(tuple(float(v) for v in row_) for row_ in shares),
        main_cell=main_cell,
        relative_area=relative_area,
        size=_size(relative_area) if object_area is not None else None,
        shape=shape if tight else None,
        count=len(regions),
        count_sure=count_sure,
        tone=tone,
        tone_vs_template=change_against_template(image, template, mask) if template is not None else None,
        tightness=tight_ratio,
        measures={"luminance_delta": round(delta, 4), "colour_shift": round(shift, 4), "axis_ratio": round(float(ratio), 3), "solidity": round(solidity, 3),
                  "relative_area": round(relative_area, 5), "tightness": round(tight_ratio, 3), "differing_parts": marks, "shown_share": round(shown, 4)},
    )


def foreground_mask(template_rgb: np.ndarray) -> np.ndarray | None:
    """The object's pixels in a normal image; None for a texture (question_gen/foreground.py)."""
    from question_gen.foreground import foreground_mask as found

    return found(template_rgb)


def estimate_object_area(template_rgb: np.ndarray) -> float:
    """Object extent from a normal image (foreground_mask); a texture counts the whole image."""
    foreground = foreground_mask(template_rgb)
    return float(foreground.sum()) if foreground is not None else float(template_rgb.shape[0] * template_rgb.shape[1])


# Normal images an object's extent is estimated from: one image's background may fool the estimate
# (a shadow, a reflection), the median of a few does not; where the few disagree by more than the
# size classes' own margin (SIZE_MARGIN), the extent is unsure and no size is said.
AREA_TEMPLATES = 5


def median_object_area(templates: list[np.ndarray]) -> float | None:
    """The median extent of the object over the first AREA_TEMPLATES normal images; None when
    their estimates disagree by more than a factor SIZE_MARGIN."""
    areas = [estimate_object_area(t) for t in templates[:AREA_TEMPLATES]]
    if not areas or max(areas) > SIZE_MARGIN * max(min(areas), 1.0):
        return None
    return float(np.median(areas))
