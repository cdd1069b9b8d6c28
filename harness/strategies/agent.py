"""The agent strategy: an expert's anomaly map, post-processed as MMAD does, drawn on the query.

Post-processing: the map is max-normalised and thresholded at 2/3 of its maximum (at its median
if that flags over half the pixels); connected areas under 0.1% of the image are dropped. The kept
areas are drawn on a copy of the query as at most 2 red 2-px boxes around the largest (bbox), their
red outlines (contour), a red overlay (highlight), or a white-on-black mask image (mask).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.segmentation import find_boundaries

MIN_AREA_SHARE = 0.001
RED = (255, 0, 0)


def suspicious_areas(anomaly_map: np.ndarray) -> np.ndarray:
    """Boolean mask of the areas worth marking (MMAD's rule)."""
    values = np.asarray(anomaly_map, dtype=np.float64)
    peak = values.max()
    if peak <= 0:
        return np.zeros(values.shape, bool)
    values = values / peak
    flagged = values >= 2 / 3
    if flagged.mean() > 0.5:
        flagged = values > np.median(values)
    labels, count = ndimage.label(flagged)
    if count == 0:
        return flagged
    areas = np.bincount(labels.ravel())
    keep = np.flatnonzero(areas >= MIN_AREA_SHARE * values.size)
    keep = keep[keep > 0]
    return np.isin(labels, keep)


def render(rgb: np.ndarray, areas: np.ndarray, style: str) -> Image.Image:
    """Draw the suspicious areas on a copy of the query image (areas at the image's size)."""
    if style == "mask":
        return Image.fromarray((areas * 255).astype(np.uint8)).convert("RGB")
    canvas = rgb.copy()
    if style == "highlight":
        canvas[areas] = (0.6 * canvas[areas] + 0.4 * np.array(RED)).astype(np.uint8)
        return Image.fromarray(canvas)
    if style == "contour":
        edge = ndimage.binary_dilation(find_boundaries(areas, mode="inner") & areas)
        canvas[edge] = RED
        return Image.fromarray(canvas)
    image = Image.fromarray(canvas)
    labels, count = ndimage.label(areas)
    if count:
        sizes = np.bincount(labels.ravel())[1:]
        draw = ImageDraw.Draw(image)
        for index in np.argsort(-sizes)[:2]:  # the two largest areas
            rows, cols = np.nonzero(labels == index + 1)
            draw.rectangle((int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())), outline=RED, width=2)
    return image


def resize_map(anomaly_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if anomaly_map.shape == shape:
        return anomaly_map
    zoom = (shape[0] / anomaly_map.shape[0], shape[1] / anomaly_map.shape[1])
    return ndimage.zoom(anomaly_map.astype(np.float32), zoom, order=1)[: shape[0], : shape[1]]


def source_map(source: str, query: Path, templates: list[Path], masks: list[Path], key: str, shape: tuple[int, int]) -> np.ndarray:
    """The anomaly map at the image's size from: the expert, the ground truth (oracle), or a file."""
    if source == "oracle":
        from harness.adsets.masks import load_mask_union

        return load_mask_union(masks, shape).astype(np.float32)
    if source == "expert":
        from harness.models.expert import shared_detector

        return resize_map(shared_detector().score(str(query), [str(t) for t in templates]).anomaly_map, shape)
    folder = Path(source[len("maps:") :])
    for suffix in (".npy", ".png"):
        candidate = folder / Path(key).with_suffix(suffix)
        if candidate.is_file():
            loaded = np.load(candidate) if suffix == ".npy" else np.asarray(Image.open(candidate).convert("L"), dtype=np.float32)
            return resize_map(np.asarray(loaded, dtype=np.float32), shape)
    from harness.errors import DataError

    raise DataError(f"agent maps: no map for {key} in {folder} (expected {folder / Path(key).with_suffix('.npy')} or .png)")
