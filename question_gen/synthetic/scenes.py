"""Normal scenes of each synthetic category: a rendered image, the object's extent and its parts.

Textures come from real photographs that scikit-image ships (no download); objects are procedural
and built from named layers, so a "missing part" defect can remove a real part and show what lies
beneath it. Pose and lighting vary per image so normal images are not copies of each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image as PILImage

from question_gen.synthetic import canvas as cv


@dataclass
class Scene:
    image: cv.Image
    object_mask: cv.Mask
    # Named parts that a "missing part" defect may remove: part name → (region, image without it).
    removable: dict[str, tuple[cv.Mask, cv.Image]] = field(default_factory=dict)
    surface: str = "matte"  # how defects render: "metal" shows scratches bright, "matte" dark


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)().astype(np.float32) / 255.0


TEXTURE_TINTS: dict[str, tuple[str, tuple[float, float, float]]] = {
    # category → (scikit-image photograph, RGB tint)
    "brick": ("brick", (0.92, 0.62, 0.50)),
    "grass": ("grass", (0.55, 0.85, 0.45)),
    "gravel": ("gravel", (0.85, 0.82, 0.74)),
}


def texture_scene(category: str, rng: np.random.Generator, size: int) -> Scene:
    photo_name, tint = TEXTURE_TINTS[category]
    photo = _photo(photo_name)
    crop = int(photo.shape[0] * rng.uniform(0.55, 0.7))
    y0 = int(rng.integers(0, photo.shape[0] - crop + 1))
    x0 = int(rng.integers(0, photo.shape[1] - crop + 1))
    patch = PILImage.fromarray((photo[y0 : y0 + crop, x0 : x0 + crop] * 255).astype(np.uint8))
    gray = np.asarray(patch.resize((size, size), PILImage.BICUBIC), dtype=np.float32) / 255.0
    gray = np.rot90(gray, k=int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        gray = gray[:, ::-1]
    gain = rng.uniform(0.9, 1.1)
    image = np.ascontiguousarray(gray[..., None] * np.asarray(tint, dtype=np.float32) * gain)
    return Scene(image=image, object_mask=np.ones((size, size), dtype=bool), surface="matte")


def _background(rng: np.random.Generator, size: int, base: float) -> cv.Image:
    """A conveyor-like grey background with a lighting gradient and fine noise."""
    ys, xs = cv.coordinate_grid(size)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = ((ys * np.sin(direction) + xs * np.cos(direction)) / size - 0.5) * rng.uniform(0.05, 0.15)
    level = base + gradient + rng.normal(0, 0.012, (size, size)).astype(np.float32)
    return np.repeat(level[..., None], 3, axis=2).astype(np.float32)


def _pose(rng: np.random.Generator, size: int) -> tuple[float, float, float, float]:
    """Centre (y, x), rotation and scale of an object: the normal variation between images."""
    cy = size / 2 + rng.uniform(-0.04, 0.04) * size
    cx = size / 2 + rng.uniform(-0.04, 0.04) * size
    return cy, cx, rng.uniform(0, 2 * np.pi), rng.uniform(0.95, 1.05)


def _lighting(rng: np.random.Generator) -> Callable[[cv.Image], cv.Image]:
    """Draw one global gain/offset; apply it to an image and to all its part-removed variants."""
    gain, offset = rng.uniform(0.9, 1.08), rng.uniform(-0.03, 0.03)
    return lambda image: np.clip(image * gain + offset, 0, 1).astype(np.float32)


def washer_scene(rng: np.random.Generator, size: int) -> Scene:
    ys, xs = cv.coordinate_grid(size)
    cy, cx, angle, scale = _pose(rng, size)
    outer, inner = 0.33 * size * scale, 0.14 * size * scale
    distance = np.hypot(ys - cy, xs - cx)
    ring = cv.coverage(np.maximum(distance - outer, inner - distance))
    theta = np.arctan2(ys - cy, xs - cx) + angle
    # Brushed metal: angular streaks and a radial highlight.
    metal = 0.62 + 0.06 * np.sin(theta * 9) + 0.08 * np.cos((distance - inner) / (outer - inner) * np.pi)
    metal_rgb = np.stack([metal, metal, metal * 1.03], axis=-1)
    background = _background(rng, size, 0.22)
    image = background.copy()
    cv.blend(image, ring, metal_rgb)
    object_mask = ring > 0.5
    # A missing wedge of the ring: the background shows through.
    wedge_angle = rng.uniform(-np.pi, np.pi)
    wedge = object_mask & (np.abs(np.angle(np.exp(1j * (np.arctan2(ys - cy, xs - cx) - wedge_angle)))) < 0.35)
    light = _lighting(rng)
    return Scene(image=light(image), object_mask=object_mask, removable={"wedge": (wedge, light(background))}, surface="metal")


def capsule_scene(rng: np.random.Generator, size: int) -> Scene:
    ys, xs = cv.coordinate_grid(size)
    cy, cx, angle, scale = _pose(rng, size)
    v, u = cv.rotate(ys, xs, cy, cx, angle)
    half_length, radius = 0.2 * size * scale, 0.11 * size * scale
    body = cv.coverage(cv.stadium_sd(v, u, half_length, radius))
    shading = 1.0 - 0.35 * np.clip(np.abs(v) / radius, 0, 1) ** 2
    cap = np.where(u[..., None] < 0, np.float32([0.78, 0.16, 0.14]), np.float32([0.93, 0.91, 0.86]))
    image = _background(rng, size, 0.3)
    cv.blend(image, body, cap * shading[..., None])
    # Printed band where the two halves meet.
    seam = cv.coverage(np.abs(u) - 1.2) * body
    cv.blend(image, seam, (0.35, 0.1, 0.1))
    return Scene(image=_lighting(rng)(image), object_mask=body > 0.5, surface="matte")


def screw_scene(rng: np.random.Generator, size: int) -> Scene:
    ys, xs = cv.coordinate_grid(size)
    cy, cx, angle, scale = _pose(rng, size)
    v, u = cv.rotate(ys, xs, cy, cx, angle)
    head_center_u = -0.26 * size * scale
    shank_half, shank_radius = 0.22 * size * scale, 0.045 * size * scale
    head = cv.coverage(np.hypot(v, u - head_center_u) - 0.085 * size * scale)
    shank = cv.coverage(cv.box_sd(v, u - 0.02 * size * scale, shank_radius, shank_half))
    threads = 0.5 + 0.5 * np.sin(u / (0.012 * size) * np.pi * 2)
    background = _background(rng, size, 0.75)  # screws sit on a light tray
    metal = 0.45 + 0.12 * np.cos(v / shank_radius * np.pi / 2)
    image = background.copy()
    cv.blend(image, shank, np.stack([metal - 0.12 * threads] * 3, axis=-1))
    cv.blend(image, head, np.stack([0.5 + 0.1 * np.cos(np.hypot(v, u - head_center_u) / 6)] * 3, axis=-1))
    slot = cv.coverage(cv.box_sd(v, u - head_center_u, 0.07 * size * scale, 0.012 * size * scale)) * head
    cv.blend(image, slot, (0.2, 0.2, 0.2))
    object_mask = (head > 0.5) | (shank > 0.5)
    tip = (shank > 0.5) & (u > 0.02 * size * scale + shank_half * 0.55)
    light = _lighting(rng)
    return Scene(image=light(image), object_mask=object_mask, removable={"tip": (tip, light(background))}, surface="metal")


def pcb_scene(rng: np.random.Generator, size: int) -> Scene:
    ys, xs = cv.coordinate_grid(size)
    cy, cx, _, scale = _pose(rng, size)
    angle = rng.uniform(-0.08, 0.08)  # boards are fixtured: only a small rotation
    v, u = cv.rotate(ys, xs, cy, cx, angle)
    board = cv.coverage(cv.box_sd(v, u, 0.3 * size * scale, 0.4 * size * scale))
    image = _background(rng, size, 0.15)
    cv.blend(image, board, (0.1, 0.42, 0.2))
    for offset in (-0.2, -0.05, 0.1, 0.24):  # copper traces
        trace = cv.coverage(np.abs(v - offset * size * scale) - 1.0) * (np.abs(u) < 0.36 * size * scale) * board
        cv.blend(image, trace, (0.72, 0.55, 0.25))
    bare_board = image.copy()  # chips are drawn last and never overlap: this is what lies beneath each
    chips: dict[str, cv.Mask] = {}
    for index, (chip_u, chip_v) in enumerate(((-0.22, -0.12), (0.0, 0.13), (0.22, -0.12))):
        chip = cv.coverage(
            cv.box_sd(v - chip_v * size * scale, u - chip_u * size * scale, 0.06 * size * scale, 0.08 * size * scale)
        )
        cv.blend(image, chip, (0.08, 0.08, 0.09))
        chips[f"chip{index + 1}"] = chip > 0.5
    light = _lighting(rng)
    removable = {name: (region, light(np.where(region[..., None], bare_board, image))) for name, region in chips.items()}
    return Scene(image=light(image), object_mask=board > 0.5, removable=removable, surface="matte")


SceneMaker = Callable[[np.random.Generator, int], Scene]

OBJECT_SCENES: dict[str, SceneMaker] = {
    "washer": washer_scene,
    "capsule": capsule_scene,
    "screw": screw_scene,
    "pcb": pcb_scene,
}


def make_scene(category: str, rng: np.random.Generator, size: int) -> Scene:
    if category in TEXTURE_TINTS:
        return texture_scene(category, rng, size)
    return OBJECT_SCENES[category](rng, size)
