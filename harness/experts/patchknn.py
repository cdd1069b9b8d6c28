"""patchknn: a training-free anomaly detector that needs no download.

Every image becomes a grid of patch descriptors built from the image itself: CIE Lab colour,
gradient magnitude, and local mean and contrast of lightness at two scales, averaged over 8×8
patches at stride 4 (a 64×64 grid at the working size of 256 px). A query patch's anomaly is
its distance to the nearest patch of the normal templates, in units of the templates' own
feature spread, so colour and texture count alike. Matching against all template patches
(not the patch at the same position) makes the map tolerant to pose changes, as in PatchCore.
The distance grid is upsampled to the image and smoothed (Gaussian, sigma 4 px).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2lab

WORKING_SIDE = 256
PATCH, STRIDE = 8, 4
SMOOTHING_SIGMA = 4.0
# With one template there is no second normal view to calibrate on (its mirror or rotation has the
# same patch features), so detection falls back to this many standard deviations of the template's
# features: the level normal images of the built-in synthetic set stay under (their maxima are 2-4).
SINGLE_TEMPLATE_THRESHOLD = 3.0
LEAVE_ONE_OUT_MARGIN = 1.1


def load_rgb(path: str, side: int = WORKING_SIDE) -> np.ndarray:
    from harness.adsets.images import open_rgb

    return np.asarray(open_rgb(path).resize((side, side), Image.BILINEAR), dtype=np.float32) / 255.0


def pixel_features(rgb: np.ndarray) -> np.ndarray:
    """H×W×C features: Lab (3), gradient magnitude, local mean and std of L at 3 and 9 px."""
    lab = rgb2lab(rgb).astype(np.float32)
    lightness = lab[..., 0]
    gradient = np.hypot(ndimage.sobel(lightness, 0), ndimage.sobel(lightness, 1))
    channels = [lab[..., 0], lab[..., 1], lab[..., 2], gradient]
    for size in (3, 9):
        mean = ndimage.uniform_filter(lightness, size)
        variance = np.maximum(ndimage.uniform_filter(lightness**2, size) - mean**2, 0)
        channels += [mean, np.sqrt(variance)]
    return np.stack(channels, axis=-1)


def patch_descriptors(rgb: np.ndarray) -> np.ndarray:
    """(rows, cols, C) grid of patch averages of the pixel features."""
    features = pixel_features(rgb)
    summed = np.pad(features, ((1, 0), (1, 0), (0, 0))).cumsum(0).cumsum(1)
    starts = np.arange(0, rgb.shape[0] - PATCH + 1, STRIDE)
    top, left = np.meshgrid(starts, starts, indexing="ij")
    bottom, right = top + PATCH, left + PATCH
    total = summed[bottom, right] - summed[top, right] - summed[bottom, left] + summed[top, left]
    return total / (PATCH * PATCH)


def nearest_distances(queries: np.ndarray, memory: np.ndarray, block: int = 2048) -> np.ndarray:
    """Euclidean distance of each query row to its nearest memory row (blockwise matrix products)."""
    memory_norms = (memory**2).sum(1)
    result = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), block):
        chunk = queries[start : start + block]
        squared = (chunk**2).sum(1)[:, None] + memory_norms[None, :] - 2.0 * chunk @ memory.T
        result[start : start + block] = np.sqrt(np.maximum(squared.min(1), 0))
    return result


@dataclass(frozen=True)
class ExpertResult:
    anomaly_map: np.ndarray  # WORKING_SIDE² float32, larger = more anomalous
    image_score: float


class PatchKnn:
    """Fits on normal templates, scores queries. Memoises descriptors: MMAD asks ~5 questions an
    image and reuses templates across images."""

    def __init__(self, cache_size: int = 256) -> None:
        self._descriptors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # the expert and the agent strategy score in worker threads

    def descriptors(self, path: str) -> np.ndarray:
        with self._lock:
            found = self._descriptors.get(path)
        if found is None:
            found = patch_descriptors(load_rgb(path))
        with self._lock:
            self._descriptors[path] = found
            self._descriptors.move_to_end(path)
            while len(self._descriptors) > self._cache_size:  # least recently used first
                self._descriptors.popitem(last=False)
        return found

    def _memory(self, templates: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        grids = [self.descriptors(t) for t in templates]
        bank = np.concatenate([grid.reshape(-1, grid.shape[-1]) for grid in grids])
        mean, spread = bank.mean(0), bank.std(0) + 1e-3
        return (bank - mean) / spread, mean, spread

    def score(self, query: str, templates: list[str]) -> ExpertResult:
        if not templates:
            raise ValueError("patchknn needs at least one normal template image (use --shots 1 or more)")
        memory, mean, spread = self._memory(templates)
        grid = self.descriptors(query)
        distances = nearest_distances(((grid - mean) / spread).reshape(-1, grid.shape[-1]), memory).reshape(grid.shape[:2])
        return ExpertResult(self._to_map(distances), float(distances.max()))

    def calibrate(self, templates: list[str]) -> float:
        """The detection threshold. With two or more templates: leave one out (each template scored
        against the others) and take the highest, times a 10% margin. With one: SINGLE_TEMPLATE_THRESHOLD."""
        if len(templates) >= 2:
            return LEAVE_ONE_OUT_MARGIN * max(self.score(t, [o for o in templates if o != t]).image_score for t in templates)
        return SINGLE_TEMPLATE_THRESHOLD

    @staticmethod
    def _to_map(distances: np.ndarray) -> np.ndarray:
        scale = WORKING_SIDE / distances.shape[0]
        upsampled = ndimage.zoom(distances, scale, order=1)
        padded = np.zeros((WORKING_SIDE, WORKING_SIDE), dtype=np.float32)
        padded[: upsampled.shape[0], : upsampled.shape[1]] = upsampled[:WORKING_SIDE, :WORKING_SIDE]
        if upsampled.shape[0] < WORKING_SIDE:  # the grid stops a patch short of the edge: extend it
            padded[upsampled.shape[0] :, :] = padded[upsampled.shape[0] - 1, :]
            padded[:, upsampled.shape[1] :] = padded[:, upsampled.shape[1] - 1 : upsampled.shape[1]]
        return ndimage.gaussian_filter(padded, SMOOTHING_SIGMA)
