"""Defect painters: each draws one kind of defect on a normal scene and returns its exact mask.

The mask is the set of pixels the defect changed (clipped to the object), so localization and
description questions derived from it are true by construction.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from question_gen.synthetic import canvas as cv
from question_gen.synthetic.scenes import Scene

MIN_DEFECT_PIXELS = 12


def _centre_inside(scene: Scene, rng: np.random.Generator, margin: float) -> tuple[float, float]:
    """A random point of the object at least `margin` px from its edge (and the image border)."""
    padded = np.pad(scene.object_mask, 1)
    depth = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    ys, xs = np.nonzero(depth >= margin)
    if len(ys) == 0:
        ys, xs = np.nonzero(depth >= depth.max())
    pick = int(rng.integers(len(ys)))
    return float(ys[pick]), float(xs[pick])


def _curve(rng: np.random.Generator, cy: float, cx: float, length: float) -> np.ndarray:
    """A gently bent line (quadratic Bézier) of about `length` px centred on (cy, cx)."""
    angle = rng.uniform(0, np.pi)
    half = np.array([np.sin(angle), np.cos(angle)]) * length / 2
    bend = np.array([np.cos(angle), -np.sin(angle)]) * rng.uniform(-0.25, 0.25) * length
    start, end, control = np.array([cy, cx]) - half, np.array([cy, cx]) + half, np.array([cy, cx]) + bend
    t = np.linspace(0, 1, 12)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def scratch(scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    ys, xs = cv.coordinate_grid(size)
    length = rng.uniform(0.15, 0.3) * size
    cy, cx = _centre_inside(scene, rng, length / 3)
    width = rng.uniform(1.0, 1.8)
    alpha = cv.coverage(cv.polyline_sd(ys, xs, _curve(rng, cy, cx, length)) - width / 2) * scene.object_mask
    image = scene.image.copy()
    tone = 0.95 if scene.surface == "metal" else 0.12
    cv.blend(image, alpha * 0.85, (tone, tone, tone))
    return image, alpha > 0.3


def crack(scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    ys, xs = cv.coordinate_grid(size)
    steps = int(rng.integers(6, 10))
    step = rng.uniform(0.025, 0.04) * size
    cy, cx = _centre_inside(scene, rng, steps * step / 3)
    heading = rng.uniform(0, 2 * np.pi)
    points = [(cy, cx)]
    for _ in range(steps):  # a jagged random walk that keeps its general direction
        heading += rng.uniform(-0.7, 0.7)
        points.append((points[-1][0] + step * np.sin(heading), points[-1][1] + step * np.cos(heading)))
    width = rng.uniform(1.2, 2.2)
    alpha = cv.coverage(cv.polyline_sd(ys, xs, np.asarray(points)) - width / 2) * scene.object_mask
    image = scene.image.copy()
    cv.blend(image, alpha, (0.05, 0.04, 0.04))
    return image, alpha > 0.3


def hole(scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    ys, xs = cv.coordinate_grid(size)
    radius = rng.uniform(0.025, 0.05) * size
    cy, cx = _centre_inside(scene, rng, radius * 1.5)
    distance = cv.circle_sd(ys, xs, cy, cx, radius)
    image = scene.image.copy()
    cv.blend(image, cv.coverage(distance - 1.5) * scene.object_mask * 0.5, (0.85, 0.85, 0.85))  # bright rim
    inner = cv.coverage(distance) * scene.object_mask
    cv.blend(image, inner, (0.03, 0.03, 0.03))
    return image, (distance <= 1.5) & scene.object_mask


def stain(scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    ys, xs = cv.coordinate_grid(size)
    radius = rng.uniform(0.04, 0.08) * size
    cy, cx = _centre_inside(scene, rng, radius)
    mask = cv.blob_mask(rng, ys, xs, cy, cx, radius) & scene.object_mask
    image = scene.image.copy()
    soft = ndimage.gaussian_filter(mask.astype(np.float32), 1.0)
    cv.blend(image, soft * rng.uniform(0.6, 0.8), (0.33, 0.22, 0.1))
    return image, mask


def discoloration(scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    ys, xs = cv.coordinate_grid(size)
    radius = rng.uniform(0.06, 0.11) * size
    cy, cx = _centre_inside(scene, rng, radius)
    mask = cv.blob_mask(rng, ys, xs, cy, cx, radius) & scene.object_mask
    image = scene.image.copy()
    tinted = np.clip(image * np.float32([1.15, 0.95, 0.35]) + np.float32([0.08, 0.05, 0.0]), 0, 1)
    soft = ndimage.gaussian_filter(mask.astype(np.float32), 1.0)[..., None]
    image = image * (1 - soft) + tinted * soft
    return image.astype(np.float32), mask


def missing_part(scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    if not scene.removable:
        raise ValueError("this category has no removable part; 'missing_part' cannot be drawn on it")
    names = sorted(scene.removable)
    region, without = scene.removable[names[int(rng.integers(len(names)))]]
    return np.where(region[..., None], without, scene.image).astype(np.float32), region.copy()


Painter = Callable[[Scene, np.random.Generator, int], tuple[cv.Image, cv.Mask]]

PAINTERS: dict[str, Painter] = {
    "scratch": scratch,
    "crack": crack,
    "hole": hole,
    "stain": stain,
    "discoloration": discoloration,
    "missing_part": missing_part,
}


def paint_defect(kind: str, scene: Scene, rng: np.random.Generator, size: int) -> tuple[cv.Image, cv.Mask]:
    """Paint a defect, retrying a few positions if the first one barely touched the object."""
    for _ in range(8):
        image, mask = PAINTERS[kind](scene, rng, size)
        if mask.sum() >= MIN_DEFECT_PIXELS:
            return image, mask
    raise RuntimeError(f"could not draw a visible {kind!r} defect; the object is too small at size {size}")
