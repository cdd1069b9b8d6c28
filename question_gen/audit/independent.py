"""Checks that do not grade the generator's homework: each reads evidence the generator never used
to choose a key, so it can disagree with it.

- mask vs wording (Defect Description): the key's count, size, shape and tone read against the mask
  region with this module's own measures: the object's extent from texture (where the generator
  thresholds against the border colour, which fails dark on dark), a size *interval* (mask over the
  object's box, mask over its textured pixels) that says nothing where the two disagree, an
  elongation from the mask's length and area (not an axis ratio), marks counted in the pixels that
  differ from the normal images inside the mask, and the tone against the same region of the
  category's normal images (not a ring around the defect).
- defect vs normal images (Anomaly Detection): does the masked region differ from the same region
  of the category's normal images more than the rest of the object does? A "Yes" whose defect no
  pixel shows is no question a reader can answer.

Every measure is said only where it is sure; images not aligned with their normal ones (the rest of
the object differs as much as the defect) give no tone, count or normal-image evidence at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from harness.metrics.boxes import MIN_COMPONENT_PIXELS
from harness.schema import Subtask
from question_gen.attributes import LARGE_AREA, SMALL_AREA
from question_gen.audit.checks import Check, Finding, ImageFacts, _key_text
from question_gen.audit.claims import claims
from question_gen.audit.topics import foreign_topic

# Grain: a pixel whose 7×7 grey-level spread is above TEXTURE_SHARE of the image's strongest spread
# (its TEXTURE_PERCENTILE) is the object's, an edge or a tread; a background's sensor noise, however
# dark the background, stays below that. The object is those pixels, closed and filled.
TEXTURE_WINDOW, TEXTURE_SHARE, TEXTURE_PERCENTILE = 7, 0.25, 99.5
# Size claims are contradicted only a factor SIZE_SAFETY past the generator's own boundaries
# (SMALL_AREA, LARGE_AREA), over the whole interval from the object's box to its textured pixels.
SIZE_SAFETY = 2.0
# A mask is a line when its mean width is at most THIN_PIXELS or THIN_SHARE of the image's longer side.
THIN_PIXELS, THIN_SHARE = 3.0, 0.006
# Elongation = length² / area (a disk 1.3, a 1:6 bar 6): "elongated" is contradicted below ROUNDISH,
# "round" above THIN.
ROUNDISH, THIN = 2.0, 6.0
# Luminance (0..1) against the same region of the normal images: past TONE_SURE it is sure.
TONE_SURE = 0.08
# Aligned with the normal images (once moved by the best shift up to SHIFT_SEARCH of the frame,
# found at COARSE pixels): the object outside the mask differs by less than this (0..1).
ALIGNED, SHIFT_SEARCH, COARSE = 0.06, 0.1, 128
# "A different colour": contradicted where chromaticity moves under COLOUR_NONE and luminance under
# TONE_NONE; sure past COLOUR_SURE.
COLOUR_NONE, TONE_NONE, COLOUR_SURE = 0.01, 0.03, 0.04
# Marks: parts of the differing pixels inside the mask, each at least MARK_SHARE of the largest one.
MARK_SHARE, MANY_MARKS = 0.1, 4
# Unaligned (a texture, a turned screw): the region is compared with the same-shaped region at SHIFTS²
# places of each normal image: it shows past TEXTURE_CLEAR standard deviations.
SHIFTS, TEXTURE_CLEAR = 4, 4.0
# Extent is measured on a copy at most MEASURE_SIDE pixels on its longer side, colour and grain at GRAIN_SIDE.
MEASURE_SIDE, GRAIN_SIDE = 384, 128
# The defect shows where STANDS_OUT of its pixels differ past the rest's 99th percentile; it blends in
# below BLENDS_IN (chance is 1%), judged only where that percentile is under ALIGNED_P99 (0..1).
STANDS_OUT, BLENDS_IN, ALIGNED_P99 = 0.2, 0.03, 0.12


@dataclass(frozen=True)
class RegionEvidence:
    """What the mask region shows, measured here (None: not sure)."""

    share_of_box: float  # mask / the object's bounding box: the lower end of the size interval
    share_of_texture: float  # mask / the object's textured pixels: the upper end
    elongation: float | None  # length² / area of the mask's largest part
    marks: int | None  # separate marks in the differing pixels inside the mask
    tone: float | None  # luminance inside the mask minus the same region of the normal images
    inside: float | None  # mean difference from the nearest normal image inside the mask
    outside: float | None  # … and on the rest of the object
    templates: int = 0
    exceeding: float | None = None  # pixels near the mask that differ more than 99% of the rest's, per mask pixel
    rest_p99: float | None = None  # the rest's 99th-percentile difference: high where the images are not aligned
    parts: int = 0  # separate parts of the mask
    thin: bool = False  # a line, whose size is its length (not judged by area)
    colour_shift: float | None = None  # chromaticity change against the same region of the normal image
    texture_z: float | None = None  # how far the region's colour and grain lie from the same-shaped regions of the normal images


def _grey(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0].astype(np.uint16) + rgb[..., 1] + rgb[..., 2]).astype(np.float32) * np.float32(1 / 765)


def _coarse(pixels: np.ndarray, side: int) -> tuple[np.ndarray, int]:
    """Every n-th pixel so the longer side is at most `side` (measures of extent and grain need no more)."""
    step = max(1, -(-max(pixels.shape[:2]) // side))
    return pixels[::step, ::step], step


def object_extent(rgb: np.ndarray) -> tuple[float, float]:
    """(bounding-box area, textured pixels) of the object, in the image's pixels: pixels whose local
    grey-level spread stands out, so a dark tire on a dark floor is found by its tread, not by its
    colour."""
    small, step = _coarse(rgb, MEASURE_SIDE)
    box, filled = _extent(small)
    return box * step * step, filled * step * step


def _extent(rgb: np.ndarray) -> tuple[float, float]:
    grey = _grey(rgb)
    mean = ndimage.uniform_filter(grey, TEXTURE_WINDOW)
    spread = np.sqrt(np.maximum(ndimage.uniform_filter(grey * grey, TEXTURE_WINDOW) - mean * mean, 0))
    textured = spread > TEXTURE_SHARE * max(float(np.percentile(spread, TEXTURE_PERCENTILE)), 1e-6)
    textured = ndimage.binary_opening(textured, iterations=1)
    total = float(rgb.shape[0] * rgb.shape[1])
    if textured.sum() < 0.02 * total:
        return total, total
    rows, cols = np.nonzero(ndimage.binary_closing(textured, iterations=3))
    box = float((rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1))
    filled = float(ndimage.binary_fill_holes(ndimage.binary_closing(textured, iterations=3)).sum())
    return box, min(filled, box)


def _elongation(mask: np.ndarray) -> float | None:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if not count:
        return None
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    largest = labels == (int(np.argmax(sizes)) + 1)
    area = float(largest.sum())
    if area < 4 * MIN_COMPONENT_PIXELS:
        return None  # too few pixels for a shape
    ys, xs = np.nonzero(largest)
    points = np.stack([ys, xs], axis=1).astype(np.float32)
    points -= points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(points.T))
    projected = points @ vectors[:, -1]
    length = float(projected.max() - projected.min() + 1)
    return length * length / area


def _spectrum(grey: np.ndarray) -> tuple[np.ndarray, int]:
    step = max(1, -(-max(grey.shape) // COARSE))
    small = grey[::step, ::step]
    return np.fft.rfft2(small - small.mean()), step


def _registered(query: tuple[np.ndarray, int], normal: np.ndarray) -> tuple[int, int]:
    """The normal image moved by the shift (up to SHIFT_SEARCH of the frame) that best lines it up
    with the query (`_spectrum`), found by phase correlation on a coarse copy: objects placed a
    little differently are compared where they overlap."""
    spectrum, step = query
    small = normal[::step, ::step]  # the shift, in the image's pixels
    cross = spectrum * np.conj(np.fft.rfft2(small - small.mean()))
    peak = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-9), s=small.shape)
    dy, dx = np.unravel_index(int(np.argmax(peak)), peak.shape)
    dy, dx = (dy - peak.shape[0] if dy > peak.shape[0] // 2 else dy), (dx - peak.shape[1] if dx > peak.shape[1] // 2 else dx)
    if max(abs(dy) / peak.shape[0], abs(dx) / peak.shape[1]) > SHIFT_SEARCH:
        dy, dx = 0, 0  # a peak that far off is no placement, but a different object
    return int(dy) * step, int(dx) * step


def _stats(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    pixels = rgb[mask].astype(np.float32) / 255.0
    return np.concatenate([pixels.mean(axis=0), [pixels.mean(axis=1).std()]])


def _texture_z(rgb: np.ndarray, mask: np.ndarray, normals: list[np.ndarray]) -> float:
    """A texture is not aligned with its normal images: the region's colour and grain against the
    same-shaped region moved over each normal image (SHIFTS² places), as the largest z-score."""
    rgb, step = _coarse(rgb, GRAIN_SIDE)
    mask = mask[::step, ::step]
    normals = [n[::step, ::step] for n in normals]
    if not mask.any():
        return 0.0
    height, width = mask.shape
    samples = np.stack([_stats(n, np.roll(mask, (dy * height // SHIFTS, dx * width // SHIFTS), axis=(0, 1))) for n in normals for dy in range(SHIFTS) for dx in range(SHIFTS)])
    spread = np.maximum(samples.std(axis=0), 1e-3)
    return float((np.abs(_stats(rgb, mask) - samples.mean(axis=0)) / spread).max())


def _thin(mask: np.ndarray) -> bool:
    """A line (a crack, a scratch), however it winds: its area over its skeleton's length, the mean
    width, is at most THIN_PIXELS or THIN_SHARE of the image's longer side."""
    from skimage.morphology import skeletonize

    width = float(mask.sum()) / max(int(skeletonize(mask).sum()), 1)
    return width <= max(THIN_PIXELS, THIN_SHARE * max(mask.shape))


def _parts(mask: np.ndarray) -> int:
    """Separate parts of the mask, breaks of a few pixels closed (a crack drawn in pieces is one)."""
    closed = ndimage.binary_closing(mask, iterations=max(1, max(mask.shape) // 100))
    labels, count = ndimage.label(closed | mask, structure=np.ones((3, 3)))
    sizes = ndimage.sum(mask, labels, range(1, count + 1)) if count else []
    return int(sum(1 for s in sizes if s >= MIN_COMPONENT_PIXELS))


def _colour_shift(inside: np.ndarray, normal: np.ndarray) -> float:
    """The largest change of a chromaticity share (r, g, b over their sum) between two regions' means."""
    def share(pixels: np.ndarray) -> np.ndarray:
        mean = pixels.astype(np.float32).mean(axis=0)
        return mean / max(float(mean.sum()), 1e-6)

    return float(np.abs(share(inside) - share(normal)).max())


def region_evidence(rgb: np.ndarray, mask: np.ndarray, normals: list[np.ndarray]) -> RegionEvidence | None:
    if not mask.any():
        return None
    box, textured = object_extent(rgb)
    area = float(mask.sum())
    evidence = dict(share_of_box=area / box, share_of_texture=area / max(textured, 1.0), elongation=_elongation(mask), marks=None, tone=None, inside=None, outside=None,
                    parts=_parts(mask), thin=_thin(mask))
    same_size = [n for n in normals if n.shape == rgb.shape]
    if not same_size:
        return RegionEvidence(**evidence)
    grey = _grey(rgb)
    # a mask drawn a few pixels off its defect still finds it: the defect is looked for near the mask,
    # and the rest is what lies beyond that
    near_mask = ndimage.binary_dilation(mask, iterations=max(2, rgb.shape[0] // 25))
    rest = ~near_mask
    query = _spectrum(grey)
    shifts = [_registered(query, _grey(n)) for n in same_size]
    moved = [np.roll(_grey(n), shift, axis=(0, 1)) for n, shift in zip(same_size, shifts)]
    nearest = min(range(len(moved)), key=lambda i: float(np.abs(grey - moved[i])[rest].mean()) if rest.any() else 0.0)
    difference = np.abs(grey - moved[nearest])
    outside = float(difference[rest].mean()) if rest.any() else 0.0
    p99 = float(np.percentile(difference[rest], 99)) if rest.any() else 0.0
    evidence.update(inside=float(difference[mask].mean()), outside=outside, rest_p99=p99,
                    exceeding=min(1.0, float((difference[near_mask] > p99).sum()) / float(mask.sum())), texture_z=_texture_z(rgb, mask, same_size))
    if outside < ALIGNED and p99 < ALIGNED_P99:  # tone and marks only against a normal image that lines up
        evidence["tone"] = float(np.median(grey[mask]) - np.median(moved[nearest][mask]))
        evidence["colour_shift"] = _colour_shift(rgb[mask], np.roll(same_size[nearest], shifts[nearest], axis=(0, 1))[mask])
        differing = mask & (difference > max(3 * outside, 0.08))
        labels, count = ndimage.label(differing, structure=np.ones((3, 3)))
        if count:
            sizes = ndimage.sum(differing, labels, range(1, count + 1))
            evidence["marks"] = int(sum(1 for s in sizes if s >= max(MIN_COMPONENT_PIXELS, MARK_SHARE * sizes.max())))
    return RegionEvidence(**evidence, templates=len(same_size))


def mask_vs_wording(question: dict, facts: ImageFacts) -> Finding | None:
    """The key's count, size, shape and tone against this module's own measures of the mask region."""
    region = facts.region
    if region is None:
        return None
    key_letter = question["Answer"]
    stated = claims(_key_text(question) or "")
    wrong, right = [], []
    low, high = region.share_of_box, region.share_of_texture
    # a crack's size is its length, which its area does not say: a line's size is not judged
    sizes, shown = frozenset() if region.thin else stated.get("size", frozenset()), f"(mask {low:.1%}–{high:.1%} of the object)"
    if "small" in sizes:  # below SMALL_AREA
        (wrong if low >= SMALL_AREA * SIZE_SAFETY else right if high < SMALL_AREA else []).append(f"size small {shown}")
    if "medium" in sizes:  # from SMALL_AREA to LARGE_AREA
        (wrong if high < SMALL_AREA / SIZE_SAFETY or low >= LARGE_AREA * SIZE_SAFETY else right if SMALL_AREA <= low and high < LARGE_AREA else []).append(f"size medium {shown}")
    if "large" in sizes:  # from LARGE_AREA
        (wrong if high < LARGE_AREA / SIZE_SAFETY else right if low >= LARGE_AREA else []).append(f"size large {shown}")
    shapes = stated.get("shape", frozenset())
    if region.elongation is not None:
        if "elongated" in shapes:
            (wrong if region.elongation < ROUNDISH else right if region.elongation > THIN else []).append(f"shape elongated (length²/area {region.elongation:.1f})")
        if "round" in shapes:
            (wrong if region.elongation > THIN else right if region.elongation < ROUNDISH else []).append(f"shape round (length²/area {region.elongation:.1f})")
    tones = stated.get("tone", frozenset())
    if region.tone is not None:
        if "darker" in tones:
            (wrong if region.tone > TONE_SURE else right if region.tone < -TONE_SURE else []).append(f"tone darker (luminance {region.tone:+.2f} against {region.templates} normal image(s))")
        if "brighter" in tones:
            (wrong if region.tone < -TONE_SURE else right if region.tone > TONE_SURE else []).append(f"tone brighter (luminance {region.tone:+.2f} against {region.templates} normal image(s))")
    counts = stated.get("count", frozenset())
    if region.marks is not None and "1" in counts and region.marks >= MANY_MARKS:
        wrong.append(f"count 1, the pixels that differ from the normal images inside the mask form {region.marks} marks")
    if region.marks is not None and counts & {"2", "3"} and region.parts == 1 and region.marks <= 1:
        wrong.append(f"count {'several' if '3' in counts else 'two'}, the mask is one part and what differs from the normal images inside it one mark")
    if region.colour_shift is not None and region.tone is not None and "discoloured" in tones:
        if region.colour_shift < COLOUR_NONE and abs(region.tone) < TONE_NONE:
            wrong.append(f"a different colour, but colour and luminance match the normal image's (chromaticity {region.colour_shift:.3f}, luminance {region.tone:+.2f})")
        elif region.colour_shift >= COLOUR_SURE:
            right.append(f"a different colour (chromaticity {region.colour_shift:.3f})")
    if wrong:
        return Finding("mask vs wording", "likely wrong", f"key {key_letter} says " + "; ".join(wrong))
    if right:
        return Finding("mask vs wording", "ok", f"key {key_letter}: " + "; ".join(right))
    return None


def defect_vs_normals(question: dict, facts: ImageFacts) -> Finding | None:
    """A "Yes, there is a defect" key: the masked region differs from the category's normal images
    (moved to fit) more than the rest of the object does: its pixels stand out past the rest's 99th
    percentile difference, or its colour and grain past the normal images' same-shaped regions."""
    region = facts.region
    key = (_key_text(question) or "").strip().lower()
    if region is None or region.exceeding is None or region.rest_p99 is None or not key.startswith("yes"):
        return None
    shown = (f"{region.exceeding:.0%} of the mask's pixels differ from the nearest of {region.templates} normal image(s) more than 99% of the rest does"
             + (f"; colour and grain {region.texture_z:.1f} standard deviations from same-shaped regions of the normal images" if region.texture_z is not None else ""))
    if region.exceeding >= STANDS_OUT or (region.texture_z is not None and region.texture_z >= TEXTURE_CLEAR):
        return Finding("defect vs normal images", "ok", shown)
    # "does not show" needs images that line up (the rest differs little even at its 99th percentile:
    # an unaligned comparison is never sure) and hardly a pixel near the mask standing out
    if region.rest_p99 < ALIGNED_P99 and region.exceeding < BLENDS_IN:
        return Finding("defect vs normal images", "ambiguous", shown + ": the defect does not show")
    return None


# The independent checks by subtask (run.py adds them to checks.py's CHECKS).
INDEPENDENT: dict[Subtask, tuple[Check, ...]] = {
    Subtask.ANOMALY_DETECTION: (defect_vs_normals,),
    Subtask.DEFECT_DESCRIPTION: (mask_vs_wording,),
    Subtask.DEFECT_ANALYSIS: (foreign_topic,),
}
