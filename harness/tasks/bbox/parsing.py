"""Reading boxes out of a model's reply (`--task bbox`): tolerant, and every liberty recorded.

Accepted, in this order: JSON (a list of objects with `bbox_2d`, `bbox`, `box` or x1/y1/x2/y2 keys,
a list of 4-number lists, one object, inside code fences or prose); else bracketed or parenthesised
groups of four numbers ("[12, 30, 88, 140]", "(12, 30), (88, 140)"); else "x1,y1,x2,y2" runs of four
numbers. A reply that says there is no defect ("no defect", "none", "[]") is an empty, readable
answer; a refusal ("I cannot", "sorry") or a reply with neither boxes nor a no-defect statement is
unreadable. Coordinates are read in the request's convention (harness/tasks/bbox/box_formats.toml) and
brought to the original image's pixels; swapped corners are put in order, boxes are clipped to the
image and empty ones dropped, each noted. In a 0-1000 convention, a reply whose numbers are all
within 0..1 is read as 0..1 (noted).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from harness.asking.model_json import read_model_json
from harness.metrics.boxes import Box

_NUMBER = r"-?\d+(?:\.\d+)?"
_GROUP = re.compile(rf"[\[\(]\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*[\]\)]")
_PAIRS = re.compile(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*(?:,|to|-|and)?\s*\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)")
_RUN = re.compile(rf"(?<![\d.])({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})(?![\d.])")
_NO_DEFECT = re.compile(r"\b(no (visible )?(defects?|anomal(y|ies)|damage)|(is|are|looks|appears) (normal|defect-free|flawless)|none found|defect-free|nothing (abnormal|wrong))\b|^\s*(none|no|\[\s*\])\s*\.?\s*$", re.I)
_REFUSAL = re.compile(r"\b(i can(no|')t|i am unable|i'm unable|unable to (help|assist|determine)|sorry)\b", re.I)
_KEYS = ("bbox_2d", "bbox", "box", "bounding_box", "coordinates")


@dataclass(frozen=True)
class Convention:
    """How coordinates are written: pixels of the image as sent, or normalised to 0..`scale`."""

    name: str
    scale: float | None  # None: pixels of the image as sent

    def to_pixels(self, box: tuple[float, ...], sent: tuple[int, int], original: tuple[int, int], unit_scale: bool) -> tuple[float, ...]:
        """A box in this convention → original-image pixels (sizes are width, height)."""
        if self.scale is None:
            sx, sy = original[0] / sent[0], original[1] / sent[1]
        else:
            scale = 1.0 if unit_scale else self.scale
            sx, sy = original[0] / scale, original[1] / scale
        return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


@dataclass
class ParsedBoxes:
    status: str  # "ok" | "unparsable"
    boxes: list[Box] = field(default_factory=list)
    said_no_defect: bool = False
    reasons: list[str] = field(default_factory=list)


def _json_candidates(text: str):
    """JSON values in the reply: fenced blocks first, then the widest [...] or {...} spans."""
    for block in re.findall(r"```(?:json)?\s*(.*?)```", text, re.S):
        yield block
    for opener, closer in (("[", "]"), ("{", "}")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            yield text[start : end + 1]


def _from_json(value) -> list[tuple[float, ...]] | None:
    if isinstance(value, dict):
        for key in _KEYS:
            if key in value:
                return _from_json([value[key]])
        if all(k in value for k in ("x1", "y1", "x2", "y2")):
            return [tuple(float(value[k]) for k in ("x1", "y1", "x2", "y2"))]
        for key in ("boxes", "defects", "objects", "results"):
            if isinstance(value.get(key), list):
                return _from_json(value[key])
        return None
    if isinstance(value, list):
        if len(value) == 4 and all(isinstance(v, (int, float)) for v in value):
            return [tuple(float(v) for v in value)]
        boxes = []
        for entry in value:
            found = _from_json(entry)
            if found is None:
                return None
            boxes += found
        return boxes
    return None


def _raw_boxes(text: str) -> tuple[list[tuple[float, ...]] | None, str | None]:
    for candidate in _json_candidates(text):
        value, problem = read_model_json(candidate)
        if problem:
            continue
        try:
            boxes = _from_json(value)
        except (RecursionError, OverflowError):  # lists nested thousands deep, a 400-digit coordinate
            continue
        if boxes is not None:
            return boxes, None
    for pattern, how in ((_GROUP, "bracketed numbers"), (_PAIRS, "corner pairs"), (_RUN, "comma-separated numbers")):
        found = [tuple(float(v) for v in m) for m in pattern.findall(text)]
        if found:
            return found, f"read as {how}, not JSON"
    return None, None


def parse_box_reply(text: str, convention: Convention, sent: tuple[int, int], original: tuple[int, int]) -> ParsedBoxes:
    """Boxes in original pixels from a reply; `sent` and `original` are (width, height)."""
    text = text or ""
    raw, note = _raw_boxes(text)
    if raw is None:
        if _NO_DEFECT.search(text):
            return ParsedBoxes("ok", [], True)
        reason = "refusal" if _REFUSAL.search(text) else "no boxes and no statement that there is no defect"
        return ParsedBoxes("unparsable", reasons=[reason])
    result = ParsedBoxes("ok", said_no_defect=not raw)
    if note:
        result.reasons.append(note)
    unit = convention.scale is not None and convention.scale > 1 and raw and all(0 <= v <= 1 for b in raw for v in b)
    if unit:
        result.reasons.append(f"coordinates within 0..1 read as 0..1, not 0..{convention.scale:g}")
    width, height = original
    for box in raw:
        if not all(math.isfinite(v) for v in box):  # NaN or Infinity written as a coordinate says nowhere
            result.reasons.append("box with a non-finite coordinate dropped")
            continue
        x1, y1, x2, y2 = convention.to_pixels(box, sent, original, unit)
        if x1 > x2 or y1 > y2:
            x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
            result.reasons.append("corners swapped")
        clipped = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
        if clipped != (x1, y1, x2, y2):
            result.reasons.append("box clipped to the image")
        if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
            result.reasons.append("empty box dropped")
            continue
        result.boxes.append(clipped)
    result.reasons = list(dict.fromkeys(result.reasons))
    return result
