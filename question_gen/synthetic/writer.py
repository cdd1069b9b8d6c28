"""`iadbench synth`: write the built-in synthetic dataset in the MVTec AD layout.

    <out>/<category>/train/good/NNN.png
    <out>/<category>/test/good/NNN.png
    <out>/<category>/test/<defect>/NNN.png
    <out>/<category>/ground_truth/<defect>/NNN_mask.png     (0/255)
    <out>/synthetic.json                                     (generator, version, seed, size)

Every image has its own random stream derived from (seed, category, split, defect, index), so the
output is identical for a seed whatever order or process draws it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from question_gen.synthetic import canvas as cv
from question_gen.synthetic.defects import paint_defect
from question_gen.synthetic.scenes import make_scene
from question_gen.synthetic.version import GENERATOR_VERSION


@dataclass(frozen=True)
class SyntheticCategory:
    name: str
    defects: tuple[str, ...]


CATEGORIES: tuple[SyntheticCategory, ...] = (
    SyntheticCategory("brick", ("crack", "hole", "stain")),
    SyntheticCategory("grass", ("stain", "hole", "discoloration")),
    SyntheticCategory("gravel", ("stain", "scratch", "crack")),
    SyntheticCategory("washer", ("scratch", "crack", "missing_part")),
    SyntheticCategory("capsule", ("crack", "stain", "discoloration")),
    SyntheticCategory("screw", ("scratch", "missing_part", "stain")),
    SyntheticCategory("pcb", ("missing_part", "scratch", "stain")),
)


@dataclass(frozen=True)
class SyntheticCounts:
    train_good: int = 5
    test_good: int = 6
    per_defect: int = 3


def _rng(seed: int, *parts: str | int) -> np.random.Generator:
    # crc32 of the names keeps streams stable across Python runs (str hash is salted).
    words = [seed] + [zlib.crc32(p.encode()) if isinstance(p, str) else p for p in parts]
    return np.random.default_rng(np.random.SeedSequence(words))


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(array).save(path, compress_level=3)


def write_synthetic_dataset(
    out: Path, *, seed: int = 0, size: int = 256, counts: SyntheticCounts = SyntheticCounts()
) -> dict:
    """Write the dataset under `out` and return its metadata (also saved as synthetic.json)."""
    if size < 64:
        raise ValueError(f"--size {size} is too small to draw defects; use 64 or more")
    out.mkdir(parents=True, exist_ok=True)
    for category in CATEGORIES:
        root = out / category.name
        for split, count in (("train", counts.train_good), ("test", counts.test_good)):
            for index in range(count):
                scene = make_scene(category.name, _rng(seed, category.name, split, "good", index), size)
                _save_png(cv.to_uint8(scene.image), root / split / "good" / f"{index:03d}.png")
        for defect in category.defects:
            for index in range(counts.per_defect):
                rng = _rng(seed, category.name, "test", defect, index)
                scene = make_scene(category.name, rng, size)
                image, mask = paint_defect(defect, scene, rng, size)
                _save_png(cv.to_uint8(image), root / "test" / defect / f"{index:03d}.png")
                _save_png(mask.astype(np.uint8) * 255, root / "ground_truth" / defect / f"{index:03d}_mask.png")
    metadata = {
        "generator": "iadbench-synthetic",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "categories": {c.name: list(c.defects) for c in CATEGORIES},
    }
    (out / "synthetic.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata
