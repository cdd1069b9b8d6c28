"""GPT-4V-AD's granular region division and the numbered overlay a model is shown.

The image is resized to 768×768 (aspect not kept, as in the paper) and divided into regions by
SLIC superpixels (n_segments=60, compactness=20), a k×k grid, or masks the user supplies (e.g.
exported from SAM). Regions with 600 < area < 120,000 px are kept and numbered from 1 in the
order they were generated. The overlay follows zhangzjn/GPT-4V-AD's region_division.py: each
region's 1-px inner border in white (regions at the image edge framed along it), its number in
white size-10 TrueType text on a grey (128,128,128) box at the region pixel nearest its centroid,
so the label lies inside the region even for curved regions; borders are drawn over labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.segmentation import find_boundaries, slic

from harness.models.image_loading import LoadingName, load_image

SIDE = 768
MIN_AREA, MAX_AREA = 600, 120_000
SLIC_SEGMENTS, SLIC_COMPACTNESS = 60, 20
LABEL_FONT_SIZE = 10
LABEL_BOX_GREY = (128, 128, 128)
# region_division.py:60-62 opens each image with cv2.imread then cv2.cvtColor(BGR2RGB). iadbench
# opens it its own way (harness/models/image_loading.py), which gives the same pixels for 8-bit
# RGB, RGBA, LA and palette files (alpha dropped, the RGB under it kept), within one level for
# 16-bit and CMYK files, and keeps the stored orientation where OpenCV applies an EXIF tag: the
# masks are drawn on the stored pixels, and the base install carries no OpenCV.
LOADING: LoadingName = "iadbench-rgb"


@dataclass(frozen=True)
class Division:
    masks: np.ndarray  # (n, SIDE, SIDE) bool; region i+1 is masks[i]

    @property
    def count(self) -> int:
        return int(self.masks.shape[0])


def load_square(path: str | Path) -> np.ndarray:
    """The image opened as LOADING, resized to SIDE×SIDE (Pillow bilinear; the public code's cv2.resize)."""
    return np.asarray(load_image(str(path), LOADING).resize((SIDE, SIDE), Image.BILINEAR))


def _keep(candidates: list[np.ndarray]) -> Division:
    kept = [m for m in candidates if MIN_AREA < int(m.sum()) < MAX_AREA]
    return Division(np.stack(kept) if kept else np.zeros((0, SIDE, SIDE), bool))


def _from_label_map(labels: np.ndarray) -> Division:
    """One region a label above 0, in label order, sizes filtered as `_keep` does; built in one
    comparison from the label counts (no per-region pass over the image)."""
    values, counts = np.unique(labels, return_counts=True)
    kept = values[(values > 0) & (counts > MIN_AREA) & (counts < MAX_AREA)]
    if not kept.size:
        return Division(np.zeros((0, *labels.shape), bool))
    return Division(labels[None, :, :] == kept[:, None, None])


def slic_division(rgb: np.ndarray, segments: int = SLIC_SEGMENTS, compactness: float = SLIC_COMPACTNESS) -> Division:
    return _from_label_map(slic(rgb, n_segments=segments, compactness=compactness, start_label=1))


def grid_division(cells: int) -> Division:
    edges = np.linspace(0, SIDE, cells + 1).round().astype(int)
    labels = np.zeros((SIDE, SIDE), np.int32)
    for row in range(cells):
        for col in range(cells):
            labels[edges[row] : edges[row + 1], edges[col] : edges[col + 1]] = row * cells + col + 1
    return _from_label_map(labels)


def masks_division(path: Path) -> Division:
    """User regions: a PNG label map (0 = no region, k = region k) or an .npz with `masks` (n×H×W)."""
    if path.suffix == ".npz":
        with np.load(path) as data:
            stack = np.asarray(data["masks"], bool)
        return masks_from_list(list(stack))
    with Image.open(path) as image:
        labels = np.asarray(image.resize((SIDE, SIDE), Image.NEAREST))
    return _from_label_map(labels)


def masks_from_list(masks: list[np.ndarray]) -> Division:
    """Regions given as masks (the official .pth files hold them at 768×768 already), in order."""
    return _keep([m if m.shape == (SIDE, SIDE) else _resize_mask(m) for m in masks])


def _resize_mask(mask: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((SIDE, SIDE), Image.NEAREST)) > 0


def label_anchor(mask: np.ndarray) -> tuple[int, int]:
    """The region pixel nearest the region's centroid (y, x). Read on the region's bounding box:
    the same pixels in the same row-major order as the whole mask, at a fraction of the cost."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    ys, xs = np.nonzero(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    ys, xs = ys + rows[0], xs + cols[0]
    nearest = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return int(ys[nearest]), int(xs[nearest])


def region_border(mask: np.ndarray) -> np.ndarray:
    """The public code's border: find_boundaries(mode="inner") of the mask padded by one pixel, then
    cropped, so a region touching the image edge is framed along that edge too. Computed on the
    region's bounding box only (the same pixels, without a full-image pass per region)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    padded = np.pad(mask[top:bottom, left:right], 1)
    border = np.zeros_like(mask)
    border[top:bottom, left:right] = find_boundaries(padded, mode="inner")[1:-1, 1:-1]
    return border


def label_font() -> ImageFont.FreeTypeFont:
    """An open TrueType font at the official size 10 (the public code used Arial, which cannot be
    redistributed): Pillow's bundled font (FreeType), so no system font is needed."""
    return ImageFont.load_default(size=LABEL_FONT_SIZE)


def draw_overlay(rgb: np.ndarray, division: Division) -> Image.Image:
    """The numbered overlay as the public code composes it: labels drawn one after another on a
    black layer (a later label covers an earlier one), each a grey box of the text's size whose top
    two rows are left open, white text at the box's corner; every border white on top of all
    labels; then every layer value above 100 replaces the image's."""
    layer = Image.new("RGB", (rgb.shape[1], rgb.shape[0]))
    draw = ImageDraw.Draw(layer)
    font = label_font()
    borders = np.zeros(rgb.shape[:2], bool)
    for number, mask in enumerate(division.masks, start=1):
        y, x = label_anchor(mask)
        text = str(number)
        _, _, width, height = draw.textbbox((0, 0), text, font=font)  # Pillow's old textsize: (right, bottom)
        left, top = x - width // 2, y - height // 2
        draw.rectangle([(left, top + 2), (left + width, top + height)], fill=LABEL_BOX_GREY)
        draw.text((left, top), text, font=font, fill=(255, 255, 255))
        borders |= region_border(mask)
    composed = np.asarray(layer).copy()
    composed[borders] = 255
    canvas = rgb.copy()
    shown = composed > 100
    canvas[shown] = composed[shown]
    return Image.fromarray(canvas)


def save_division(division: Division, stem: Path) -> Path:
    """Non-overlapping regions (SLIC, grid) as a 16-bit label-map PNG (small, fast); overlapping
    user regions as a compressed .npz of masks."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if division.count and not (division.masks.sum(0) > 1).any():
        labels = np.zeros((SIDE, SIDE), np.uint16)
        for number, mask in enumerate(division.masks, start=1):
            labels[mask] = number
        path = stem.with_suffix(".png")
        Image.fromarray(labels).save(path)
        return path
    path = stem.with_suffix(".npz")
    np.savez_compressed(path, masks=division.masks)
    return path


def load_division(path: Path) -> Division:
    if path.suffix == ".npz":
        with np.load(path) as data:
            return Division(np.asarray(data["masks"], bool))
    with Image.open(path) as image:
        labels = np.asarray(image)
    return Division(np.stack([labels == n for n in range(1, int(labels.max()) + 1)]) if labels.max() else np.zeros((0, SIDE, SIDE), bool))


def text_to_segmentation(division: Division, region_scores: dict[int, float], shape: tuple[int, int]) -> np.ndarray:
    """Text2Segmentation: each named region takes its score (the max where regions overlap), 0
    elsewhere; the 768² map is resized to `shape` (nearest: the map is piecewise constant)."""
    square = np.zeros((SIDE, SIDE), np.float32)
    for region, score in region_scores.items():
        np.maximum(square, np.where(division.masks[region - 1], np.float32(score), np.float32(0)), out=square)
    from harness.metrics.ad import resize_nearest

    return resize_nearest(square, shape)


def region_purity(division: Division, mask: np.ndarray) -> dict[int, float]:
    """For each region (1-based) touching a ground-truth mask, the share of its pixels inside the
    mask. Scoring regions so is the best any region answer can do: ranking regions by purity gives
    the highest pixel ROC and PR curves among maps constant on these regions."""
    if not division.count:
        return {}
    square = _resize_mask(mask)
    inside = (division.masks & square).reshape(division.count, -1).sum(1)
    areas = division.masks.reshape(division.count, -1).sum(1)
    return {i + 1: float(inside[i] / areas[i]) for i in np.flatnonzero(inside)}


def overlapping_regions(division: Division, mask: np.ndarray) -> list[int]:
    """Regions (1-based) that touch a ground-truth mask: what an ideal responder would name."""
    square = _resize_mask(mask)
    return [i + 1 for i, region in enumerate(division.masks) if (region & square).any()]
