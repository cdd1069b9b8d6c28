"""The GPT-4V-AD task: divide each image into numbered regions, ask for region anomaly scores,
turn the reply into a map (Text2Segmentation), and score with image- and pixel-level AD metrics.

Any backend can be evaluated this way. Each image's overlay (what the model saw) and predicted
map are saved in the run folder for inspection; the summary holds AUROC, AP, F1-max (image and
pixel) and AUPRO per category and their mean.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harness.adsets.masks import load_mask_union
from harness.storage.sources import resolve_gpt4vad_source
from harness.errors import ConfigError
from harness.adsets.images import UnreadableImage
from harness.storage.files import artifact_stem
from harness.metrics.ad import image_metrics, mean_over_categories, pixel_metrics, resize_nearest
from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, ImagePart
from harness.asking.prompting import render_parts
from harness.schema import DecodingSpec, RegionSample
from harness.tasks.gpt4vad.region_files import METHODS, official_file, read_official_masks
from harness.tasks.gpt4vad.region_parsing import parse_region_reply
from harness.tasks.gpt4vad.regions import (
    Division,
    draw_overlay,
    grid_division,
    load_square,
    masks_division,
    masks_from_list,
    region_purity,
    save_division,
    slic_division,
    text_to_segmentation,
)

MAP_LEVELS = 65535  # maps are stored as 16-bit PNGs: score × 65535
EVAL_LONG_SIDE = 512  # pixel metrics' resolution cap (see evaluation_shape)


@dataclass(frozen=True)
class RegionItem:
    id: str  # "<dataset>/<relative path>"
    dataset: str
    category: str
    label: str
    image_path: Path
    mask_paths: tuple[Path, ...]
    template_path: Path


def class_name(category: str) -> str:
    """The public code's class name: the folder name with one trailing digit removed (pcb1 → pcb,
    macaroni2 → macaroni), underscores kept (metal_nut stays metal_nut)."""
    return re.sub(r"\d$", "", category)


PROMPT_TEMPLATES = {"one-shot": "iadbench-one-shot"}  # runs recorded before the variant was renamed


def safe_name(item_id: str) -> str:
    """A per-image file stem that no other image shares (harness.storage.files.artifact_stem)."""
    return artifact_stem(item_id)


load_mask = load_mask_union  # the task's name for the shared loader


def image_shape(path: Path) -> tuple[int, int]:
    """(height, width) of an image; an unreadable one counts as 768×768 (its all-zero map)."""
    try:
        with Image.open(path) as image:
            return image.size[1], image.size[0]
    except OSError:
        return 768, 768


def region_subset(items: list[RegionItem], limit: int | None, seed: int, sampling: str | None = None) -> list[RegionItem]:
    """--limit over a GPT-4V-AD run's images: drawn per dataset, category and label (harness/data/subset.py;
    None: a new run's draw)."""
    from harness.data.subset import NEW_SAMPLING, take_limit

    sampling = sampling or NEW_SAMPLING
    return take_limit(items, limit, sampling=sampling, seed=seed, stratum=lambda item: (item.dataset, item.category, item.label), key=lambda item: item.id)


def load_region_items(source: str, seed: int) -> tuple[list[RegionItem], str]:
    """Every test image of the source, in category then path order, with a seeded normal template;
    and a digest of the item list (so a resumed run can tell its data changed)."""
    dataset, root, categories = resolve_gpt4vad_source(source, seed)
    items = []
    for category in categories:
        for image in category.test:
            key = f"{dataset}/{image.path}"
            pick = zlib.crc32(f"{seed}:{key}".encode()) % len(category.train_good)
            items.append(
                RegionItem(key, dataset, category.name, image.label, root / image.path, tuple(root / m for m in image.mask_paths), root / category.train_good[pick])
            )
    digest = hashlib.sha256("\n".join(f"{i.id}|{i.label}|{i.template_path.name}" for i in items).encode()).hexdigest()
    return items, digest


def validate_regions(regions: str) -> None:
    """Refuse a bad --regions before a run folder exists."""
    kind, _, argument = regions.partition(":")
    if kind in ("slic",) and not argument or kind == "sam":
        return
    if kind == "grid":
        if not argument.isdigit() or not 1 <= int(argument) <= 768:
            raise ConfigError(f"--regions {regions!r}: the grid size must be an integer, like grid:16")
        return
    if kind in ("masks", "official") and argument:
        folder, _, method = argument.partition(":") if kind == "official" else (argument, "", "")
        if not Path(folder).is_dir():
            raise ConfigError(f"--regions {regions!r}: {folder} is not a folder of region files")
        if method and method not in METHODS:
            raise ConfigError(f"--regions {regions!r}: the method is one of {', '.join(METHODS)}")
        return
    raise ConfigError(f"--regions {regions!r}: use slic, grid:K, sam[:MODEL], masks:DIR or official:DIR[:METHOD]")


def divide(regions: str, item: RegionItem, rgb: np.ndarray) -> Division:
    kind, _, argument = regions.partition(":")
    if kind == "slic":
        return slic_division(rgb)
    if kind == "grid":
        try:
            return grid_division(int(argument or 16))
        except ValueError:
            raise ConfigError(f"--regions {regions!r}: the grid size must be an integer, like grid:16") from None
    if kind == "masks" and argument:
        relative = item.id.split("/", 1)[1]
        for suffix in (".npz", ".png"):
            candidate = Path(argument) / Path(relative).with_suffix(suffix)
            if candidate.is_file():
                return masks_division(candidate)
        raise ConfigError(f"--regions {regions!r}: no region file for {relative} (expected {Path(argument) / Path(relative).with_suffix('.npz')} or .png)")
    if kind == "sam":
        from harness.tasks.gpt4vad.sam_regions import DEFAULT_SAM, sam_masks

        return masks_from_list(sam_masks(rgb, argument or DEFAULT_SAM, _sam_device()))
    if kind == "official" and argument:
        folder, _, method = argument.partition(":")
        path = official_file(Path(folder), item.id.split("/", 1)[1], method or None)
        return masks_from_list(read_official_masks(path))
    raise ConfigError(f"--regions {regions!r}: use slic, grid:K, sam[:MODEL], masks:DIR or official:DIR[:METHOD]")


def _sam_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def reference_reply(division: Division, item: RegionItem) -> str:
    """What an ideal responder says: image score 1 for a defect, and each region touching the ground
    truth scored by the share of its pixels inside it (the ceiling of any region answer)."""
    if item.label == "normal" or not item.mask_paths:
        return "image anomaly score: 0.0."
    mask = load_mask(item.mask_paths, image_shape(item.image_path))
    purity = region_purity(division, mask)
    return "image anomaly score: 1.0" + "".join(f"; region {r}: {share:.6f}" for r, share in purity.items()) + "."


class Gpt4vadTask:
    sample_type = RegionSample

    def __init__(self, items: list[RegionItem], run_dir: Path, *, regions: str, prompt: str, image_max_side: int | None, decoding: DecodingSpec, seed: int) -> None:
        self.items, self.run_dir, self.regions, self.prompt = items, run_dir, regions, prompt
        self.image_max_side, self.decoding, self.seed = image_max_side, decoding, seed
        self._divisions: dict[int, Division] = {}  # between build_request and score of one item

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def _paths(self, item: RegionItem) -> tuple[Path, Path, Path]:
        name = safe_name(item.id)
        return self.run_dir / "overlays" / f"{name}.png", self.run_dir / "maps" / f"{name}.png", self.run_dir / "regions" / name

    # Region division takes ~0.5 s of CPU: the runner prepares requests in a worker thread.
    blocking = True

    def build_request(self, ordinal: int) -> GenerateRequest:
        item = self.items[ordinal]
        overlay_path, _, regions_stem = self._paths(item)
        try:
            rgb = load_square(item.image_path)
        except UnreadableImage as error:  # costs this image (an error sample, counted), not the run
            self._divisions[ordinal] = Division(np.zeros((0, 768, 768), bool))
            return GenerateRequest(messages=[], sample_id=item.id, failure=f"UnreadableImage: {error}")
        division = divide(self.regions, item, rgb)
        self._divisions[ordinal] = division
        overlay_path.parent.mkdir(parents=True, exist_ok=True)
        draw_overlay(rgb, division).save(overlay_path)  # redrawn on resume: identical, deterministic
        regions_path = save_division(division, regions_stem)
        images = {
            "query": ImagePart(path=str(overlay_path), role="query", max_side=self.image_max_side),
            "template": ImagePart(path=str(item.template_path), role="template", max_side=self.image_max_side),
        }
        template = PROMPT_TEMPLATES.get(self.prompt, self.prompt)
        parts = render_parts(f"gpt4vad/{template}.j2", images, exact=True, class_name=class_name(item.category))
        return GenerateRequest(
            messages=[ChatMessage(role="user", content=parts)],
            decoding=self.decoding,
            sample_id=item.id,
            sample_seed=self.seed,
            subtask="gpt4vad",
            reference_answer=reference_reply(division, item),
            source_image=str(item.image_path),
            normal_images=[str(item.template_path)],
            regions_file=str(regions_path),
        )

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> RegionSample:
        item = self.items[ordinal]
        division = self._divisions.pop(ordinal, None) or Division(np.zeros((0, 768, 768), bool))  # none if preparing it failed
        overlay_path, map_path, _ = self._paths(item)
        common = dict(
            question_id=item.id, ordinal=ordinal, dataset=item.dataset, category=item.category, label=item.label, model=model,
            request_digest=digest, regions=division.count, reply=response.text, overlay_path=overlay_path.relative_to(self.run_dir).as_posix(),
            latency_s=response.latency_s, usage=response.usage, error=response.error, attempts=response.attempts, cached=response.cached,
        )
        if response.error is not None:
            return RegionSample(parse_status="error", parse_reason=response.error, **common)
        parsed = parse_region_reply(response.text, division.count)
        if parsed.status != "ok":
            return RegionSample(parse_status="unparsable", parse_reason="; ".join(parsed.reasons), **common)
        anomaly_map = text_to_segmentation(division, parsed.region_scores, image_shape(item.image_path))
        map_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(np.clip(anomaly_map, 0, 1) * MAP_LEVELS).astype(np.uint16)).save(map_path)
        return RegionSample(
            parse_status="ok",
            parse_reason="; ".join(parsed.reasons) or None,
            image_score=parsed.image_score,
            map_max=float(anomaly_map.max()),
            region_scores=parsed.region_scores,
            map_path=map_path.relative_to(self.run_dir).as_posix(),
            **common,
        )


def load_map(run_dir: Path, sample: RegionSample, item: RegionItem) -> np.ndarray:
    """A sample's predicted map; an unanswered image counts as an all-zero map (strict scoring)."""
    if sample.map_path is None:
        return np.zeros(image_shape(item.image_path), np.float32)
    from harness.storage.runfiles import inside_folder

    with Image.open(inside_folder(run_dir, sample.map_path, what="sample's map_path")) as stored:
        return np.asarray(stored, dtype=np.float32) / MAP_LEVELS


def evaluation_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Pixel metrics are computed at most EVAL_LONG_SIDE px on the long side (aspect kept): the
    metrics keep ~19 bytes per evaluated pixel for a whole category, so a 4000×3000 camera image
    must not cost 12 M of them. Smaller images are evaluated as they are."""
    height, width = shape
    scale = min(1.0, EVAL_LONG_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))




def _maps_and_masks(run_dir: Path, by_id: dict[str, RegionSample], members: list[RegionItem]):
    """Maps and masks one image at a time, at the evaluation size: a category's maps are never all
    in memory at full resolution. Maps are piecewise constant, so nearest-neighbour keeps their values."""
    for item in members:
        anomaly_map = load_map(run_dir, by_id[item.id], item)
        shape = evaluation_shape(anomaly_map.shape)
        mask = load_mask(item.mask_paths, anomaly_map.shape) if item.mask_paths else np.zeros(anomaly_map.shape, bool)
        yield resize_nearest(anomaly_map, shape), resize_nearest(mask, shape)


def region_metrics(samples: list[RegionSample], items: list[RegionItem], run_dir: Path, definitions: str = "exact") -> dict:
    """Per category: image AUROC/AP/F1-max from the stated score and from the map maximum, pixel
    AUROC/AP/F1-max/AUPRO from the maps; then the mean. Unanswered images score 0 (strict).
    definitions "ader": ADer's evaluator instead (harness/metrics/ader.py), its mean named mAD."""
    by_id = {s.question_id: s for s in samples}
    per_category: dict[str, dict[str, float]] = {}
    for category in sorted({f"{i.dataset}/{i.category}" for i in items}):
        members = [i for i in items if f"{i.dataset}/{i.category}" == category and i.id in by_id]
        if not members:
            continue
        if definitions.startswith("ader"):
            per_category[category] = _ader_category(run_dir, by_id, members, adeval=definitions == "ader-adeval")
            continue
        labels = [i.label == "anomaly" for i in members]
        stated = [by_id[i.id].image_score or 0.0 for i in members]
        from_map = [by_id[i.id].map_max or 0.0 for i in members]
        metrics = {f"image_{k}": v for k, v in image_metrics(labels, stated).items()}
        metrics |= {f"image_map_max_{k}": v for k, v in image_metrics(labels, from_map).items()}
        metrics |= {f"pixel_{k}": v for k, v in pixel_metrics(_maps_and_masks(run_dir, by_id, members)).items()}
        per_category[category] = metrics
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, notes = mean_over_categories(per_category, "mad" if definitions.startswith("ader") else "mean7")
    return {"per_category": per_category, "mean": mean, "notes": notes, "definitions": definitions}


def _ader_category(run_dir: Path, by_id: dict[str, RegionSample], members: list[RegionItem], adeval: bool = False) -> dict[str, float]:
    """ADer's metrics at its 256×256 resolution (a category's maps held at that size: 256 KB each)."""
    from harness.metrics.ader import ader_category_metrics, at_ader_resolution

    pairs = [(at_ader_resolution(m), at_ader_resolution(k)) for m, k in _maps_and_masks(run_dir, by_id, members)]
    maps, masks = np.stack([m for m, _ in pairs]), np.stack([k for _, k in pairs])
    return ader_category_metrics(maps, masks, pooling=None, adeval=True) if adeval else ader_category_metrics(maps, masks)
