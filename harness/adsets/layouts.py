"""Reading AD datasets on disk into the images a question set is generated from.

The skeleton reads the MVTec AD layout (which the synthetic dataset also uses):

    <root>/<category>/train/good/*.png                  normal images (templates)
    <root>/<category>/test/good/*.png                   normal test images
    <root>/<category>/test/<defect>/NNN.png             anomalous test images
    <root>/<category>/ground_truth/<defect>/NNN_mask.png  their masks (non-zero = defect)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class SourceImage:
    path: str  # relative to the dataset root, POSIX separators
    category: str
    label: str  # "normal" | "anomaly"
    defect_folder: str | None
    mask_paths: tuple[str, ...] = ()


@dataclass
class SourceCategory:
    name: str
    train_good: list[str] = field(default_factory=list)
    test: list[SourceImage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # problems that cost nothing but deserve a look

    @property
    def defect_folders(self) -> tuple[str, ...]:
        return tuple(sorted({image.defect_folder for image in self.test if image.defect_folder}))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _find_mask(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The mask among `names` in `folder`, its suffix's case ignored (000_mask.PNG from a camera PC)."""
    if not folder.is_dir():
        return None
    wanted = {name.lower() for name in names}
    return next((p for p in sorted(folder.iterdir()) if p.name.lower() in wanted and p.is_file()), None)


def _mvtec_mask(root: Path, category_dir: Path, image: Path) -> tuple[str, ...]:
    folder = category_dir / "ground_truth" / image.parent.name
    mask = _find_mask(folder, (f"{image.stem}_mask.png",))
    if mask is None:
        raise DataError(f"{image}: anomalous image without its mask (expected {folder / (image.stem + '_mask.png')}); add the mask or remove the image")
    return (mask.relative_to(root).as_posix(),)


def _goodsad_mask(root: Path, category_dir: Path, image: Path) -> tuple[str, ...]:
    """GoodsAD names a mask like its image (`ground_truth/<defect>/<stem>.png`); `_mask` names are accepted too."""
    folder = category_dir / "ground_truth" / image.parent.name
    mask = _find_mask(folder, (f"{image.stem}.png", f"{image.stem}_mask.png"))
    if mask is not None:
        return (mask.relative_to(root).as_posix(),)
    raise DataError(f"{image}: anomalous image without its mask (expected {folder / (image.stem + '.png')}); add the mask or remove the image")


def _loco_masks(root: Path, category_dir: Path, image: Path) -> tuple[str, ...]:
    mask_dir = category_dir / "ground_truth" / image.parent.name / image.stem
    masks = _images(mask_dir) if mask_dir.is_dir() else []
    if not masks:
        raise DataError(f"{image}: anomalous image without its mask folder (expected masks in {mask_dir})")
    return tuple(m.relative_to(root).as_posix() for m in masks)


def _read_train_test_layout(root: Path, masks_of, layout: str) -> list[SourceCategory]:
    """`<category>/train/good` templates and `<category>/test/<good|defect>` images; `masks_of`
    finds an anomalous image's masks (the one thing MVTec AD and MVTec LOCO do differently)."""
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    categories = []
    for category_dir in sorted(p for p in root.iterdir() if p.is_dir() and (p / "test").is_dir()):
        category = SourceCategory(category_dir.name)
        train_good = category_dir / "train" / "good"
        if not train_good.is_dir() or not _images(train_good):
            raise DataError(
                f"{train_good}: no normal training images; every category needs train/good images to serve as templates"
            )
        category.train_good = [p.relative_to(root).as_posix() for p in _images(train_good)]
        for defect_dir in sorted(p for p in (category_dir / "test").iterdir() if p.is_dir()):
            for image in _images(defect_dir):
                relative = image.relative_to(root).as_posix()
                if defect_dir.name == "good":
                    category.test.append(SourceImage(relative, category.name, "normal", None))
                else:
                    category.test.append(SourceImage(relative, category.name, "anomaly", defect_dir.name, masks_of(root, category_dir, image)))
        if not category.test:
            raise DataError(f"{category_dir / 'test'}: category has no test images")
        category.warnings += _orphan_masks(root, category_dir, category)
        categories.append(category)
    if not categories:
        raise DataError(f"{root}: no category folders with a test/ subfolder (expected the {layout} layout)")
    return categories


def _orphan_masks(root: Path, category_dir: Path, category: SourceCategory) -> list[str]:
    """Masks under ground_truth/ that no test image uses: usually a renamed or deleted image."""
    used = {path for image in category.test for path in image.mask_paths}
    ground_truth = category_dir / "ground_truth"
    if not ground_truth.is_dir():
        return []
    orphans = [p for p in sorted(ground_truth.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.relative_to(root).as_posix() not in used]
    return [f"{p}: mask without an image (no test image uses it)" for p in orphans]


def read_mvtec_layout(root: Path) -> list[SourceCategory]:
    """Categories of an MVTec-AD-layout folder, with a clear error for anything incomplete."""
    return _read_train_test_layout(root, _mvtec_mask, "MVTec AD")


def read_visa_layout(root: Path) -> list[SourceCategory]:
    """VisA: `split_csv/1cls.csv` with columns object,split,label,image,mask (CRLF line ends;
    labels normal/anomaly; empty mask for normal images; masks hold defect-class ids, read as > 0);
    each anomaly's defect kind from `<category>/image_anno.csv` where present."""
    import csv

    from harness.storage.paths import resolve_in_data_root

    table = root / "split_csv" / "1cls.csv"
    if not table.is_file():
        raise DataError(f"{table}: not found; a VisA folder holds split_csv/1cls.csv")
    categories: dict[str, SourceCategory] = {}
    annotations: dict[str, dict[str, str]] = {}
    with table.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                name, split, label, image = row["object"], row["split"], row["label"], row["image"]
            except KeyError as missing:
                raise DataError(f"{table}: line {line} lacks column {missing}; expected object,split,label,image,mask") from None
            what = f"{table} line {line}"
            if not resolve_in_data_root(root, image, what=what).is_file():
                raise DataError(f"{what}: image {image} does not exist")
            category = categories.setdefault(name, SourceCategory(name))
            if split == "train":
                if label == "normal":
                    category.train_good.append(image)
                continue
            if label == "normal":
                category.test.append(SourceImage(image, name, "normal", None))
                continue
            mask = (row.get("mask") or "").strip()
            if not mask or not resolve_in_data_root(root, mask, what=what).is_file():
                raise DataError(f"{what}: anomalous image {image} without its mask; add the mask or drop the row")
            labels = annotations.get(name)
            if labels is None:
                labels = annotations[name] = _visa_defect_labels(root, name)
            category.test.append(SourceImage(image, name, "anomaly", labels.get(image, "anomaly"), (mask,)))
    for category in categories.values():
        if not category.train_good:
            raise DataError(f"{table}: category {category.name} has no normal training images for templates")
    return [categories[name] for name in sorted(categories)]


def _visa_defect_labels(root: Path, category: str) -> dict[str, str]:
    """VisA's own `<category>/image_anno.csv` (columns image,label,mask) names each anomaly's defects,
    comma-separated ("weird candle wick, chunk of wax missing"): one label is the image's defect
    kind, several make it `combined` (as MVTec AD calls such images). Without the file the kind is
    "anomaly", for which no defect-kind question is asked."""
    import csv

    table = root / category / "image_anno.csv"
    if not table.is_file():
        return {}
    labels = {}
    with table.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            image, label = (row.get("image") or "").strip(), (row.get("label") or "").strip()
            parts = [p.strip() for p in label.split(",") if p.strip()]
            if image and parts and parts != ["normal"]:
                labels[image] = parts[0] if len(parts) == 1 else "combined"
    return labels


def read_loco_layout(root: Path) -> list[SourceCategory]:
    """MVTec LOCO: like MVTec AD, but each anomalous image's ground truth is a folder of masks
    (`ground_truth/<type>/NNN/000.png, 001.png, …`), read as their union; the defect kind is the
    anomaly type folder (logical_anomalies, structural_anomalies)."""
    return _read_train_test_layout(root, _loco_masks, "MVTec LOCO")


def read_goodsad_layout(root: Path) -> list[SourceCategory]:
    """GoodsAD: the MVTec AD layout (train/good, test/<good|defect>) with masks named like their images."""
    return _read_train_test_layout(root, _goodsad_mask, "GoodsAD")


DS_MVTEC_MASK_FOLDERS = ("mask", "rgb_mask", "rbg_mask")  # "rbg_mask" is a spelling found in the wild


def read_ds_mvtec_layout(root: Path) -> list[SourceCategory]:
    """DS-MVTec (MMAD's defect-segmented MVTec AD): `<category>/image/<good|defect>/*.png` with masks
    in `<category>/mask/<defect>/` (or `rgb_mask/`, `rbg_mask/`: coloured masks, non-black = defect),
    named like the image or with `_mask`. Templates come from `<category>/train/good` where present
    (MMAD pairs DS-MVTec with MVTec AD's training images); otherwise the first half of image/good
    (sorted by name) serves as templates and the rest as normal test images."""
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    categories = []
    for category_dir in sorted(p for p in root.iterdir() if p.is_dir() and (p / "image").is_dir()):
        category = SourceCategory(category_dir.name)
        mask_root = next((category_dir / name for name in DS_MVTEC_MASK_FOLDERS if (category_dir / name).is_dir()), None)
        good = _images(category_dir / "image" / "good") if (category_dir / "image" / "good").is_dir() else []
        train_good = category_dir / "train" / "good"
        if train_good.is_dir() and _images(train_good):
            templates, normal_tests = _images(train_good), good
        else:
            templates, normal_tests = good[: len(good) // 2], good[len(good) // 2 :]
        if not templates:
            raise DataError(f"{category_dir}: no normal images to use as templates (need train/good or at least 2 images in image/good)")
        category.train_good = [p.relative_to(root).as_posix() for p in templates]
        category.test = [SourceImage(p.relative_to(root).as_posix(), category.name, "normal", None) for p in normal_tests]
        for defect_dir in sorted(p for p in (category_dir / "image").iterdir() if p.is_dir() and p.name != "good"):
            for image in _images(defect_dir):
                candidates = [mask_root / defect_dir.name / f"{image.stem}{suffix}" for suffix in (".png", "_mask.png")] if mask_root else []
                mask = next((c for c in candidates if c.is_file()), None)
                if mask is None:
                    raise DataError(f"{image}: anomalous image without its mask (expected {category_dir}/mask/{defect_dir.name}/{image.stem}.png)")
                category.test.append(SourceImage(image.relative_to(root).as_posix(), category.name, "anomaly", defect_dir.name, (mask.relative_to(root).as_posix(),)))
        if not category.test:
            raise DataError(f"{category_dir / 'image'}: category has no test images")
        categories.append(category)
    if not categories:
        raise DataError(f"{root}: no category folders with an image/ subfolder (expected the DS-MVTec layout)")
    return categories


FOLDER_COLUMNS = ("image", "category", "split", "label", "defect", "mask")


def read_labelled_folder(root: Path) -> list[SourceCategory]:
    """Your own images: `<root>/labels.csv` with columns image,category,split,label,defect,mask.

    image: path relative to the folder; category: any name (one object type); split: train (normal
    images used as templates) or test; label: normal or anomaly; defect: the defect kind of an
    anomalous image (e.g. scratch); mask: path of its mask (non-zero = defect), required for
    anomalies. Paths must stay inside the folder.
    """
    import csv

    from harness.storage.paths import resolve_in_data_root

    table = root / "labels.csv"
    if not table.is_file():
        raise DataError(f"{table}: not found; a labelled folder holds labels.csv with columns {','.join(FOLDER_COLUMNS)}")
    categories: dict[str, SourceCategory] = {}
    try:
        text = table.read_bytes().decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of a column name
    except UnicodeDecodeError as error:
        raise DataError(f"{table}: not UTF-8 ({error.reason} at byte {error.start}); save it as UTF-8 (CSV UTF-8 in a spreadsheet)") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    seen: dict[str, int] = {}
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    missing = [c for c in FOLDER_COLUMNS if c not in [f.strip() for f in reader.fieldnames or []]]
    if missing:
        raise DataError(f"{table}: missing columns {', '.join(missing)}; expected {','.join(FOLDER_COLUMNS)}")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    for line, row in enumerate(reader, start=2):
        what = f"{table} line {line}"
        if any(row.get(c) is None for c in FOLDER_COLUMNS):
            raise DataError(f"{what}: the row has fewer fields than the header ({len([v for v in row.values() if v is not None])} of {len(FOLDER_COLUMNS)})")
        image, split, label = row["image"].strip().replace("\\", "/"), row["split"].strip(), row["label"].strip()
        if image in seen:
            raise DataError(f"{what}: image {image} is listed twice (also on line {seen[image]}); keep one row per image")
        seen[image] = line
        if split not in ("train", "test") or label not in ("normal", "anomaly"):
            raise DataError(f"{what}: split must be train or test and label normal or anomaly (got {split!r}, {label!r})")
        if not resolve_in_data_root(root, image, what=what).is_file():
            raise DataError(f"{what}: image {image} does not exist")
        category = categories.setdefault(row["category"].strip() or "default", SourceCategory(row["category"].strip() or "default"))
        if split == "train":
            if label != "normal":
                raise DataError(f"{what}: training images are templates and must be normal")
            category.train_good.append(image)
        elif label == "normal":
            category.test.append(SourceImage(image, category.name, "normal", None))
        else:
            mask = row["mask"].strip().replace("\\", "/")
            if not mask or not resolve_in_data_root(root, mask, what=what).is_file():
                raise DataError(f"{what}: anomalous image {image} needs its mask file (column mask)")
            category.test.append(SourceImage(image, category.name, "anomaly", row["defect"].strip() or "defect", (mask,)))
    for category in categories.values():
        if not category.train_good:
            raise DataError(f"{table}: category {category.name} has no train images to use as templates")
        if not category.test:
            raise DataError(f"{table}: category {category.name} has no test images")
    return [categories[name] for name in sorted(categories)]


READERS = {
    "mvtec": read_mvtec_layout,
    "visa": read_visa_layout,
    "loco": read_loco_layout,
    "goodsad": read_goodsad_layout,
    "dsmvtec": read_ds_mvtec_layout,
    "folder": read_labelled_folder,
}
