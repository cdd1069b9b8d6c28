"""Small drawing primitives on float RGB canvases (H×W×3 in [0, 1]).

Shapes are drawn from signed distances with a one-pixel soft edge, so objects and defects look
anti-aliased while their masks stay exact (a pixel belongs to a shape when its coverage > 0.5).
"""

from __future__ import annotations

import numpy as np

Image = np.ndarray  # float32, H×W×3, values in [0, 1]
Mask = np.ndarray  # bool, H×W


def coordinate_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return ys, xs


def coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Pixel coverage from a signed distance (negative inside), with a one-pixel ramp."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def rotate(ys: np.ndarray, xs: np.ndarray, cy: float, cx: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in a frame centred on (cy, cx) and rotated by `angle` radians."""
    dy, dx = ys - cy, xs - cx
    cos, sin = np.cos(angle), np.sin(angle)
    return dy * cos - dx * sin, dy * sin + dx * cos


def circle_sd(ys, xs, cy, cx, radius):
    return np.hypot(ys - cy, xs - cx) - radius


def box_sd(v, u, half_v, half_u):
    """Signed distance to an axis-aligned box in a (v, u) frame."""
    dv, du = np.abs(v) - half_v, np.abs(u) - half_u
    outside = np.hypot(np.maximum(dv, 0), np.maximum(du, 0))
    inside = np.minimum(np.maximum(dv, du), 0)
    return outside + inside


def stadium_sd(v, u, half_length, radius):
    """Signed distance to a capsule shape along the u axis."""
    du = np.maximum(np.abs(u) - half_length, 0)
    return np.hypot(v, du) - radius


def polyline_sd(ys, xs, points: np.ndarray) -> np.ndarray:
    """Distance to a polyline given as an (N, 2) array of (y, x) points."""
    best = np.full(ys.shape, np.inf, dtype=np.float32)
    for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
        dy, dx = y1 - y0, x1 - x0
        length2 = dy * dy + dx * dx or 1e-6
        t = np.clip(((ys - y0) * dy + (xs - x0) * dx) / length2, 0.0, 1.0)
        np.minimum(best, np.hypot(ys - (y0 + t * dy), xs - (x0 + t * dx)), out=best)
    return best


def blend(image: Image, alpha: np.ndarray, color) -> None:
    """Paint `color` (RGB triple or H×W×3 array) over `image` with per-pixel `alpha`, in place."""
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * np.asarray(color, dtype=np.float32)


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid, bilinearly upsampled."""
    coarse = rng.random((cells + 1, cells + 1), dtype=np.float32)
    positions = np.linspace(0, cells, size, dtype=np.float32)
    i0 = np.minimum(positions.astype(int), cells - 1)
    f = positions - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def blob_mask(rng: np.random.Generator, ys, xs, cy: float, cx: float, radius: float) -> Mask:
    """An irregular, connected blob: a disc whose radius wobbles with a few random harmonics."""
    angle = np.arctan2(ys - cy, xs - cx)
    wobble = np.ones_like(angle)
    for harmonic in (2, 3, 5):
        wobble += rng.uniform(0.05, 0.22) * np.cos(harmonic * angle + rng.uniform(0, 2 * np.pi))
    return np.hypot(ys - cy, xs - cx) <= radius * wobble


def to_uint8(image: Image) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
