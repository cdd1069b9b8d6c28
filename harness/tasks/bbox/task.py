"""`--task bbox`: where exactly is the defect? Each image of a question set (anomalous and normal)
is asked for the bounding boxes of all its defects, or none; the true boxes come from its mask
(harness/metrics/boxes.py), the reply is read by harness/tasks/bbox/parsing.py, and the run is
scored with mIoU, ACC@IoU, box precision/recall and image-level detection."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw

from harness.adsets.masks import load_mask_union
from harness.errors import ConfigError, DataError
from harness.metrics.boxes import Box, BoxOutcome, box_metrics, image_iou, mask_boxes
from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, ImagePart
from harness.models.images import qwen_smart_size
from harness.asking.prompting import render_parts
from harness.schema import BoxSample, DecodingSpec, ImageRecord
from harness.tasks.bbox.parsing import Convention, parse_box_reply
from harness.tasks.gpt4vad.task import class_name, safe_name

BOX_TOKENS = 512  # room for a JSON list of several boxes


@dataclass(frozen=True)
class BoxFormat:
    name: str
    description: str
    patterns: tuple[str, ...]
    convention: Convention
    prompt: str


@lru_cache(maxsize=1)
def box_formats() -> dict[str, BoxFormat]:
    raw = tomllib.loads(resources.files("harness.tasks.bbox").joinpath("box_formats.toml").read_text())
    return {
        name: BoxFormat(name, e["description"], tuple(e["patterns"]), Convention(name, None if e["scale"] == "pixels" else float(e["scale"])), e["prompt"])
        for name, e in raw.items()
    }


def pick_box_format(model: str, requested: str | None = None) -> BoxFormat:
    """`requested` if given, else the most specific pattern matching the model name."""
    formats = box_formats()
    if requested is not None:
        if requested not in formats:
            raise ConfigError(f"--box-format {requested!r}: use one of {', '.join(formats)}")
        return formats[requested]
    model_id = model.lower()
    matches = [(len(p), f) for f in formats.values() for p in f.patterns if fnmatch.fnmatchcase(model_id, p)]
    return max(matches, key=lambda m: m[0])[1]


def frame_size(box_format: BoxFormat, size: tuple[int, int]) -> tuple[float, float]:
    """The (width, height) coordinates are written in: the image as sent, or the normalised scale."""
    if box_format.convention.scale is None:
        height, width = qwen_smart_size(size[1], size[0])
        return float(width), float(height)
    return box_format.convention.scale, box_format.convention.scale


def to_frame(box: Box, size: tuple[int, int], frame: tuple[float, float]) -> list[float]:
    """Original-pixel box → the convention's frame (6 decimals: the oracle's boxes come back exact)."""
    sx, sy = frame[0] / size[0], frame[1] / size[1]
    return [round(box[0] * sx, 6), round(box[1] * sy, 6), round(box[2] * sx, 6), round(box[3] * sy, 6)]


def reference_reply(truth: list[Box], size: tuple[int, int], frame: tuple[float, float], key: str) -> str:
    """What a perfect model answers: the true boxes in the convention (for the oracle baseline)."""
    return json.dumps([{key: to_frame(b, size, frame), "label": "defect"} for b in truth])


class BoxTask:
    sample_type = BoxSample
    blocking = True  # reading masks and drawing overlays: requests are prepared in a worker thread

    def __init__(self, records: list[ImageRecord], root: Path, run_dir: Path, box_format: BoxFormat, *, image_max_side: int | None, decoding: DecodingSpec, seed: int) -> None:
        self.records, self.root, self.run_dir, self.format = records, root, run_dir, box_format
        self.image_max_side, self.decoding, self.seed = image_max_side, decoding, seed
        self._prepared: dict[int, tuple[list[Box], tuple[int, int], tuple[float, float]]] = {}

    @property
    def ids(self) -> list[str]:
        return [record.id for record in self.records]

    def truth(self, record: ImageRecord, size: tuple[int, int]) -> list[Box]:
        if not record.mask_paths:
            return []
        mask = load_mask_union([self.root / p for p in record.mask_paths], (size[1], size[0]))
        return mask_boxes(mask)

    def build_request(self, ordinal: int) -> GenerateRequest:
        record = self.records[ordinal]
        path = self.root / record.image_path
        try:
            with Image.open(path) as image:
                size = image.size
            truth = self.truth(record, size)
        except (OSError, DataError) as error:
            self._prepared[ordinal] = ([], (1, 1), (1.0, 1.0))
            return GenerateRequest(messages=[], sample_id=record.id, failure=f"UnreadableImage: {error}")
        frame = frame_size(self.format, size)
        self._prepared[ordinal] = (truth, size, frame)
        pixels = self.format.convention.scale is None
        # a pixel-coordinate format asks as Qwen's grounding pipeline shows the image: qwen-vl-utils' opening and sizing
        query = ImagePart(path=str(path), role="query", prep="qwen-native" if pixels else "cap", loading="flatten-white" if pixels else "iadbench-rgb",
                          max_side=None if pixels else self.image_max_side)
        parts = render_parts(self.format.prompt, {"query": query}, object_name=class_name(record.category), width=int(frame[0]), height=int(frame[1]), scale=f"{frame[0]:g}")
        key = "bbox_2d" if pixels else "bbox"
        templates = [str(self.root / t) for t in record.random_templates[:1]]
        return GenerateRequest(
            messages=[ChatMessage(role="user", content=parts)],
            decoding=self.decoding.model_copy(update={"max_new_tokens": max(self.decoding.max_new_tokens, BOX_TOKENS)}),
            sample_id=record.id,
            sample_seed=self.seed,
            subtask="bbox",
            reference_answer=reference_reply(truth, size, frame, key),
            source_image=str(path),
            normal_images=templates,
            box_frame=frame,
        )

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> BoxSample:
        record = self.records[ordinal]
        truth, size, frame = self._prepared.pop(ordinal, ([], (1, 1), (1.0, 1.0)))  # none if preparing it failed
        common = dict(
            question_id=record.id, ordinal=ordinal, dataset=record.dataset, category=record.category, label=record.label, model=model,
            request_digest=digest, reply=response.text, truth=truth, latency_s=response.latency_s, usage=response.usage,
            error=response.error, attempts=response.attempts, cached=response.cached,
        )
        if response.error is not None:
            return BoxSample(parse_status="error", parse_reason=response.error, image_iou=0.0 if truth else None, **common)
        parsed = parse_box_reply(response.text, self.format.convention, (int(frame[0]), int(frame[1])), size)
        overlay = self._overlay(record, truth, parsed.boxes)
        return BoxSample(
            parse_status=parsed.status,
            parse_reason="; ".join(parsed.reasons) or None,
            boxes=parsed.boxes,
            image_iou=image_iou(parsed.boxes, truth) if truth else None,
            overlay_path=overlay,
            **common,
        )

    def _overlay(self, record: ImageRecord, truth: list[Box], predicted: list[Box]) -> str | None:
        """The image (256 px) with true boxes in green and predicted ones in red, for the report's gallery."""
        try:
            with Image.open(self.root / record.image_path) as image:
                canvas = image.convert("RGB")
        except OSError:
            return None
        scale = 256 / max(canvas.size)
        canvas = canvas.resize((max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))))
        draw = ImageDraw.Draw(canvas)
        for boxes, colour, width in ((truth, (0, 200, 0), 3), (predicted, (230, 0, 0), 2)):
            for box in boxes:
                draw.rectangle([box[0] * scale, box[1] * scale, box[2] * scale - 1, box[3] * scale - 1], outline=colour, width=width)
        path = self.run_dir / "box_overlays" / f"{safe_name(record.id)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(path)
        return path.relative_to(self.run_dir).as_posix()


def box_run_metrics(samples: list[BoxSample]) -> dict:
    """Per category and overall (pooled over images), from the samples' stored boxes."""
    outcomes: dict[str, list[BoxOutcome]] = {}
    for sample in samples:
        outcome = BoxOutcome(tuple(map(tuple, sample.truth)), tuple(map(tuple, sample.boxes)), sample.parse_status == "ok")
        outcomes.setdefault(f"{sample.dataset}/{sample.category}", []).append(outcome)
    per_category = {name: box_metrics(items) for name, items in sorted(outcomes.items())}
    return {"per_category": per_category, "overall": box_metrics([o for items in outcomes.values() for o in items])}


def limited_images(spec, question_set) -> list[ImageRecord]:
    """--limit counts images here: drawn per dataset and category (harness/data/subset.py)."""
    from harness.data.subset import take_limit

    return take_limit(list(question_set.images.values()), spec.limit, sampling=spec.limit_sampling, seed=spec.seed,
                      stratum=lambda record: (record.dataset, record.category), key=lambda record: record.id)


def build_box_task(spec, folder, question_set) -> tuple[BoxTask, list[ImageRecord]]:
    records = limited_images(spec, question_set)
    box_format = pick_box_format(spec.model, spec.box_format)
    return BoxTask(records, question_set.root, folder.path, box_format, image_max_side=spec.image_max_side, decoding=spec.decoding, seed=spec.seed), records
