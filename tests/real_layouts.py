"""Fixture trees that use the real datasets' category and defect folder names (VisA: its
image_anno.csv labels), one small image per folder, for generation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MVTEC_AD = {
    "bottle": ["broken_large", "broken_small", "contamination"],
    "cable": ["bent_wire", "cable_swap", "combined", "cut_inner_insulation", "cut_outer_insulation", "missing_cable", "missing_wire", "poke_insulation"],
    "capsule": ["crack", "faulty_imprint", "poke", "scratch", "squeeze"],
    "carpet": ["color", "cut", "hole", "metal_contamination", "thread"],
    "grid": ["bent", "broken", "glue", "metal_contamination", "thread"],
    "hazelnut": ["crack", "cut", "hole", "print"],
    "leather": ["color", "cut", "fold", "glue", "poke"],
    "metal_nut": ["bent", "color", "flip", "scratch"],
    "pill": ["color", "combined", "contamination", "crack", "faulty_imprint", "pill_type", "scratch"],
    "screw": ["manipulated_front", "scratch_head", "scratch_neck", "thread_side", "thread_top"],
    "tile": ["crack", "glue_strip", "gray_stroke", "oil", "rough"],
    "toothbrush": ["defective"],
    "transistor": ["bent_lead", "cut_lead", "damaged_case", "misplaced"],
    "wood": ["color", "combined", "hole", "liquid", "scratch"],
    "zipper": ["broken_teeth", "combined", "fabric_border", "fabric_interior", "rough", "split_teeth", "squeezed_teeth"],
}
MVTEC_LOCO = {name: ["logical_anomalies", "structural_anomalies"] for name in ("breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors")}
GOODSAD = {
    "cigarette_box": ["opened", "surface_damage"],
    "drink_bottle": ["cap_half_open", "cap_open", "surface_damage"],
    "drink_can": ["deformation", "straw_missing", "surface_damage"],
    "food_bottle": ["deformation", "opened", "surface_damage"],
    "food_box": ["deformation", "opened", "surface_damage"],
    "food_package": ["broken", "surface_anomaly"],
}
# VisA's image_anno.csv labels per category (one image each, and one image with two labels)
VISA = {
    "candle": ["chunk of wax missing", "foreign particals on candle", "different colour spot", "damaged corner of packaging", "weird candle wick", "other", "extra wax in candle", "wax melded out of the candle"],
    "capsules": ["bubble", "discolor", "scratch", "leak", "misshape"],
    "cashew": ["burnt", "corner or edge breakage", "different colour spot", "middle breakage", "small holes", "same colour spot", "small scratches", "stuck together"],
    "chewinggum": ["chunk of gum missing", "scratches", "small cracks", "corner missing", "similar colour spot"],
    "fryum": ["burnt", "similar colour spot", "corner or edge breakage", "middle breakage", "small scratches", "different colour spot", "fryum stuck together", "other"],
    "macaroni1": ["chip around edge and corner", "small scratches", "small cracks", "different colour spot", "middle breakage", "similar colour spot"],
    "macaroni2": ["breakage down the middle", "small scratches", "color spot similar to the object", "different color spot", "small chip around edge", "small cracks", "other"],
    "pcb1": ["bent", "melt", "scratch", "missing"],
    "pcb2": ["bent", "melt", "scratch", "missing"],
    "pcb3": ["bent", "melt", "scratch", "missing"],
    "pcb4": ["burnt", "scratch", "dirt", "damage", "extra", "missing", "wrong place"],
    "pipe_fryum": ["burnt", "corner and edge breakage", "different colour spot", "middle breakage", "small scratches", "small cracks", "similar colour spot", "stuck together"],
}
SIZE = 32


def _image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((SIZE, SIZE, 3)) * 60 + 100).astype(np.uint8)).save(path)


def _mask(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    top = 2 + seed % 3 * 9
    mask[top : top + 8, top : top + 8] = 255
    Image.fromarray(mask).save(path)


def write_train_test_tree(root: Path, categories: dict[str, list[str]], *, loco: bool = False, mask_name: str = "{stem}_mask.png") -> None:
    """MVTec AD / LOCO / GoodsAD layout: train/good, test/good, test/<defect>, ground_truth/<defect>."""
    for c, (category, defects) in enumerate(categories.items()):
        for i in range(2):
            _image(root / f"{category}/train/good/{i:03d}.png", 100 * c + i)
        _image(root / f"{category}/test/good/000.png", 100 * c + 5)
        for d, defect in enumerate(defects):
            _image(root / f"{category}/test/{defect}/000.png", 100 * c + 10 + d)
            if loco:
                _mask(root / f"{category}/ground_truth/{defect}/000/000.png", d)
            else:
                _mask(root / f"{category}/ground_truth/{defect}/{mask_name.format(stem='000')}", d)


def write_ds_mvtec_tree(root: Path, categories: dict[str, list[str]]) -> None:
    for c, (category, defects) in enumerate(categories.items()):
        for i in range(3):
            _image(root / f"{category}/image/good/{i:03d}.png", 100 * c + i)
        for d, defect in enumerate(defects):
            _image(root / f"{category}/image/{defect}/000.png", 100 * c + 10 + d)
            _mask(root / f"{category}/mask/{defect}/000.png", d)


def write_visa_tree(root: Path, categories: dict[str, list[str]]) -> None:
    """split_csv/1cls.csv and each category's image_anno.csv; the last image of each category has
    two labels (VisA writes them comma-separated, quoted)."""
    rows = ["object,split,label,image,mask"]
    for c, (category, labels) in enumerate(categories.items()):
        for i in range(2):
            path = f"{category}/Data/Images/Normal/{i:03d}.JPG"
            _image(root / path, 100 * c + i)
            rows.append(f"{category},train,normal,{path},")
        normal = f"{category}/Data/Images/Normal/100.JPG"
        _image(root / normal, 100 * c + 5)
        rows.append(f"{category},test,normal,{normal},")
        annotations = ["image,label,mask"]
        for d, label in enumerate([*labels, f"{labels[0]}, {labels[1]}"]):
            image, mask = f"{category}/Data/Images/Anomaly/{d:03d}.JPG", f"{category}/Data/Masks/Anomaly/{d:03d}.png"
            _image(root / image, 100 * c + 10 + d)
            _mask(root / mask, d)
            rows.append(f"{category},test,anomaly,{image},{mask}")
            annotations.append(f'{image},"{label}",{mask}' if "," in label else f"{image},{label},{mask}")
        (root / category / "image_anno.csv").write_text("\r\n".join(annotations) + "\r\n")
    (root / "split_csv").mkdir(parents=True)
    (root / "split_csv/1cls.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
