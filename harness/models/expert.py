"""`expert/patchknn` as a model: it answers the questions a detector can answer.

- Anomaly Detection: anomalous when the image score exceeds the threshold calibrated on the
  prompt's normal templates (PatchKnn.calibrate); the score itself is kept as `anomaly_score`.
- Defect Localization: the option whose location words (top/middle/bottom, left/center/right)
  name the part of the image with the highest mean anomaly.
- Every other subtask: declined (wrong in strict scoring, shown as "declined").
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.experts.patchknn import PatchKnn
from harness.models.base import GenerateRequest, GenerateResponse, ImagePart, ModelOptions
from harness.schema import Subtask

_ROWS = {"top": 0, "upper": 0, "middle": 1, "center": 1, "centre": 1, "bottom": 2, "lower": 2}
_COLUMNS = {"left": 0, "middle": 1, "center": 1, "centre": 1, "right": 2}


def option_area(text: str) -> tuple[set[int], set[int]] | None:
    """The 3×3 rows and columns an option's location words name, or None if it names none."""
    words = re.findall(r"[a-z]+", text.lower())
    rows = {_ROWS[w] for w in words if w in _ROWS and w not in ("middle", "center", "centre")}
    columns = {_COLUMNS[w] for w in words if w in ("left", "right")}
    centred = any(w in ("middle", "center", "centre") for w in words)
    if not rows and not columns and not centred:
        return None
    if centred:  # "center" alone is the middle cell; "top center" is the middle column; "middle left" the middle row
        if rows and not columns:
            columns = {1}
        elif columns and not rows:
            rows = {1}
        elif not rows and not columns:
            rows, columns = {1}, {1}
    return rows or {0, 1, 2}, columns or {0, 1, 2}


def area_mean(anomaly_map: np.ndarray, rows: set[int], columns: set[int]) -> float:
    height, width = anomaly_map.shape
    row_edges, col_edges = np.linspace(0, height, 4).astype(int), np.linspace(0, width, 4).astype(int)
    cells = [anomaly_map[row_edges[r] : row_edges[r + 1], col_edges[c] : col_edges[c + 1]].mean() for r in rows for c in columns]
    return float(np.mean(cells))


class PatchKnnExpert:
    default_concurrency = 2  # CPU-bound: one worker thread a core
    cacheable = False

    def __init__(self, name: str) -> None:
        self.name = self.cache_identity = name
        self.detector = PatchKnn()
        self._thresholds: dict[tuple[str, ...], float] = {}

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        return await asyncio.to_thread(self._answer, request)

    def _regions_reply(self, request: GenerateRequest) -> GenerateResponse:
        """GPT-4V-AD: every region gets the mean of the anomaly map over it, in units of twice the
        detection threshold (clipped to 1), in the task's own reply format. The expert is thus
        scored at region granularity, like any model in this task."""
        from scipy import ndimage

        from harness.tasks.gpt4vad.regions import SIDE, load_division

        if not request.source_image or not request.normal_images or not request.regions_file:
            return GenerateResponse(error="patchknn in gpt4vad needs the source image, a normal image and the regions file")
        result = self.detector.score(request.source_image, request.normal_images)
        scale = 2 * self._threshold(request.normal_images)
        square = ndimage.zoom(result.anomaly_map, SIDE / result.anomaly_map.shape[0], order=1)
        division = load_division(Path(request.regions_file))
        parts = [f"image anomaly score: {min(result.image_score / scale, 1.0):.4f}"]
        for number, mask in enumerate(division.masks, start=1):
            parts.append(f"region {number}: {min(float(square[mask].mean()) / scale, 1.0):.4f}")
        return GenerateResponse(text="; ".join(parts) + ".", anomaly_score=result.image_score)

    def _boxes_reply(self, request: GenerateRequest) -> GenerateResponse:
        """Box localisation: the connected areas of the anomaly map above the calibrated threshold
        (upsampled to the image), as boxes in the request's coordinate frame; none below it."""
        import json

        from PIL import Image
        from scipy import ndimage

        from harness.metrics.boxes import mask_boxes

        if not request.source_image or not request.normal_images or request.box_frame is None:
            return GenerateResponse(error="patchknn in bbox needs the image and a normal template (records with random_templates)")
        result = self.detector.score(request.source_image, request.normal_images)
        threshold = self._threshold(request.normal_images)
        with Image.open(request.source_image) as image:
            width, height = image.size
        if result.image_score <= threshold:
            return GenerateResponse(text="[]", anomaly_score=result.image_score)
        anomaly_map = ndimage.zoom(result.anomaly_map, (height / result.anomaly_map.shape[0], width / result.anomaly_map.shape[1]), order=1)
        boxes = mask_boxes(anomaly_map > threshold)
        sx, sy = request.box_frame[0] / width, request.box_frame[1] / height
        text = json.dumps([{"bbox": [round(b[0] * sx, 2), round(b[1] * sy, 2), round(b[2] * sx, 2), round(b[3] * sy, 2)]} for b in boxes])
        return GenerateResponse(text=text, anomaly_score=result.image_score)

    def _threshold(self, templates: list[str]) -> float:
        key = tuple(templates)
        if key not in self._thresholds:
            self._thresholds[key] = self.detector.calibrate(templates)
        return self._thresholds[key]

    def _answer(self, request: GenerateRequest) -> GenerateResponse:
        # the request says what shape of answer it wants: scored regions, or boxes in a frame
        if request.regions_file is not None:
            return self._regions_reply(request)
        if request.box_frame is not None:
            return self._boxes_reply(request)
        images = [p for m in request.messages for p in m.content if isinstance(p, ImagePart)]
        query = next((p.path for p in images if p.role == "query"), None)
        templates = [p.path for p in images if p.role == "template"]
        if query is None or not templates:
            return GenerateResponse(error="patchknn needs the query image and at least one normal template (--shots 1 or more)")
        options = _options_from_prompt(request)
        if request.subtask == Subtask.ANOMALY_DETECTION.value:
            result = self.detector.score(query, templates)
            anomalous = result.image_score > self._threshold(templates)
            wanted = "yes" if anomalous else "no"
            letter = next((k for k, v in options.items() if v.strip().lower().startswith(wanted)), None)
            if letter is None:
                return GenerateResponse(declined=True, anomaly_score=result.image_score)
            return GenerateResponse(text=letter, anomaly_score=result.image_score)
        if request.subtask == Subtask.DEFECT_LOCALIZATION.value:
            areas = {k: option_area(v) for k, v in options.items()}
            if not any(areas.values()):
                return GenerateResponse(declined=True)
            anomaly_map = self.detector.score(query, templates).anomaly_map
            best = max((k for k, a in areas.items() if a), key=lambda k: area_mean(anomaly_map, *areas[k]))
            return GenerateResponse(text=best)
        return GenerateResponse(declined=True)

    async def aclose(self) -> None:
        return None


_OPTION_LINE = re.compile(r"^([A-E])\. (.*)$", re.M)


def _options_from_prompt(request: GenerateRequest) -> dict[str, str]:
    """The option texts as the prompt lists them ("A. Yes."), restricted to the request's letters."""
    text = "\n".join(p.text for m in request.messages for p in m.content if not isinstance(p, ImagePart))
    found = dict(_OPTION_LINE.findall(text))
    return {k: v for k, v in found.items() if k in (request.option_letters or found)}


def create_expert(name: str, *, seed: int, options: ModelOptions) -> PatchKnnExpert:
    kind = name.split("/", 1)[1]
    if kind != "patchknn":
        raise ConfigError(f"unknown expert {kind!r}; available: patchknn")
    return PatchKnnExpert(name)


_SHARED = None


def shared_detector() -> PatchKnn:
    """One detector (and descriptor cache) for the agent strategy across a run."""
    global _SHARED
    if _SHARED is None:
        _SHARED = PatchKnn()
    return _SHARED
