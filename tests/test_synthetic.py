"""The synthetic dataset: MVTec layout, exact masks, variety, determinism."""

import hashlib
import json

import numpy as np
from PIL import Image
from scipy import ndimage

from question_gen.synthetic.writer import CATEGORIES, SyntheticCounts, write_synthetic_dataset

SMALL = SyntheticCounts(train_good=2, test_good=2, per_defect=2)


def _digest_tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


def test_layout_categories_and_defect_kinds(tmp_path):
    metadata = write_synthetic_dataset(tmp_path, seed=0, size=96, counts=SMALL)
    assert len(metadata["categories"]) >= 6
    kinds = {d for defects in metadata["categories"].values() for d in defects}
    assert len(kinds) >= 5
    for category in CATEGORIES:
        root = tmp_path / category.name
        assert len(list((root / "train/good").glob("*.png"))) == 2
        assert len(list((root / "test/good").glob("*.png"))) == 2
        for defect in category.defects:
            assert sorted(p.name for p in (root / "test" / defect).glob("*.png")) == ["000.png", "001.png"]
            assert sorted(p.name for p in (root / "ground_truth" / defect).glob("*.png")) == ["000_mask.png", "001_mask.png"]
    assert json.loads((tmp_path / "synthetic.json").read_text())["seed"] == 0


def test_masks_are_binary_and_mark_what_changed(tmp_path):
    write_synthetic_dataset(tmp_path, seed=3, size=128, counts=SMALL)
    for mask_path in tmp_path.rglob("*_mask.png"):
        mask = np.asarray(Image.open(mask_path))
        assert set(np.unique(mask)) <= {0, 255}
        assert (mask > 0).sum() >= 12, mask_path
        assert (mask > 0).mean() < 0.25, f"{mask_path}: a defect should be a small part of the image"


def test_defect_changes_pixels_inside_its_mask(tmp_path):
    """A defect image differs from a re-render of the same normal scene inside the mask only."""
    from question_gen.synthetic.defects import paint_defect
    from question_gen.synthetic.scenes import make_scene

    for category in ("washer", "pcb", "brick"):
        for kind in ("scratch", "stain", "missing_part") if category != "brick" else ("crack", "hole"):
            if kind == "missing_part" and category == "brick":
                continue
            rng = np.random.default_rng(7)
            scene = make_scene(category, rng, 128)
            image, mask = paint_defect(kind, scene, rng, 128)
            changed = np.abs(image - scene.image).max(axis=-1) > 0.02
            grown = ndimage.binary_dilation(mask, iterations=3)  # soft edges may touch a neighbour pixel
            assert changed[mask].mean() > 0.5, f"{category}/{kind}: most mask pixels must change"
            assert not (changed & ~grown).any(), f"{category}/{kind}: pixels changed outside the mask"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    write_synthetic_dataset(tmp_path / "a", seed=5, size=96, counts=SMALL)
    write_synthetic_dataset(tmp_path / "b", seed=5, size=96, counts=SMALL)
    write_synthetic_dataset(tmp_path / "c", seed=6, size=96, counts=SMALL)
    assert _digest_tree(tmp_path / "a") == _digest_tree(tmp_path / "b")
    assert _digest_tree(tmp_path / "a") != _digest_tree(tmp_path / "c")


def test_normal_images_vary(tmp_path):
    write_synthetic_dataset(tmp_path, seed=0, size=96, counts=SMALL)
    for category in CATEGORIES:
        first, second = (np.asarray(Image.open(p), dtype=float) for p in sorted((tmp_path / category.name / "train/good").glob("*.png")))
        assert np.abs(first - second).mean() > 2.0, f"{category.name}: normal images should differ in pose or lighting"
