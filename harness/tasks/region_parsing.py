"""Reading GPT-4V-AD replies: "image anomaly score: 0.9; region 1: 0.9; region 3: 0.7."

Real models deviate: other separators ("Region 3 - 0.7", "region 3 = 70%"), several regions
sharing a score ("regions 1, 3 and 5: 0.8"), regions named without scores, JSON, prose around
the answer. Every liberty taken is recorded as a reason: percentages and 0-100 scales are read as
fractions, ids outside 1..n are dropped, scores outside [0, 1] are clipped, regions without a
score take the image score, a missing image score becomes the highest region score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)\s*(%?)"
_IMAGE_SCORE = re.compile(r"image[\s_-]*(?:anomaly[\s_-]*)?score\s*(?:is|of|:|=|-|–)?\s*" + _NUMBER)
_REGION_LIST = r"((?:\d+\s*(?:,|and|&|/)\s*)*\d+)"
_REGION_SCORE = re.compile(r"regions?\s*(?:id\s*)?[#:]?\s*" + _REGION_LIST + r"\s*(?:\)|:|=|-|–|has|with|gets|score|of|is|a|\s)*" + _NUMBER)
_REGION_NAMED = re.compile(r"regions?\s*(?:id\s*)?[#:]?\s*" + _REGION_LIST)


@dataclass
class RegionReply:
    image_score: float | None
    region_scores: dict[int, float] = field(default_factory=dict)
    status: str = "ok"  # ok | unparsable
    reasons: list[str] = field(default_factory=list)


def _fraction(value: str, percent: str, what: str, reasons: list[str]) -> float | None:
    number = float(value)
    if percent:
        number /= 100
    elif number > 1:
        if number <= 100:
            reasons.append(f"{what} {value} read as {value}%")
            number /= 100
        else:
            reasons.append(f"{what} {value} is out of range and ignored")
            return None
    if number > 1:
        reasons.append(f"{what} {value}{percent} clipped to 1")
        number = 1.0
    return number


def _ids(listing: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", listing)]


def _from_json(text: str, reasons: list[str]) -> RegionReply | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    lowered = {str(k).lower().replace("_", " "): v for k, v in data.items()}
    image = next((v for k, v in lowered.items() if "image" in k and "score" in k), lowered.get("anomaly score"))
    regions: dict[int, float] = {}
    listed = next((v for k, v in lowered.items() if k.startswith("region")), {})
    if isinstance(listed, dict):
        items = [(re.findall(r"\d+", str(k)), v) for k, v in listed.items()]
    elif isinstance(listed, list):
        items = [([str(e.get("region", e.get("id", "")))], e.get("score")) for e in listed if isinstance(e, dict)]
    else:
        items = []
    for ids, score in items:
        if ids and isinstance(score, (int, float)):
            value = _fraction(str(score), "", f"region {ids[0]} score", reasons)
            if value is not None:
                regions[int(ids[0])] = value
    for k, v in lowered.items():  # flat keys: {"region 3": 0.7}
        match = re.fullmatch(r"region\s*(\d+)", k)
        if match and isinstance(v, (int, float)):
            value = _fraction(str(v), "", f"region {match.group(1)} score", reasons)
            if value is not None:
                regions[int(match.group(1))] = value
    image_score = _fraction(str(image), "", "image score", reasons) if isinstance(image, (int, float)) else None
    if image_score is None and not regions:
        return None
    return RegionReply(image_score, regions, reasons=reasons)


def parse_region_reply(reply: str, region_count: int) -> RegionReply:
    reasons: list[str] = []
    text = (reply or "").strip()
    if not text:
        return RegionReply(None, status="unparsable", reasons=["empty reply"])
    parsed = _from_json(text, reasons)
    if parsed is None:
        lowered = text.lower().replace("**", "")
        image_match = _IMAGE_SCORE.search(lowered)
        image_score = _fraction(image_match.group(1), image_match.group(2), "image score", reasons) if image_match else None
        regions: dict[int, float] = {}
        rest = lowered[: image_match.start()] + lowered[image_match.end() :] if image_match else lowered
        scored_spans = []
        for match in _REGION_SCORE.finditer(rest):
            value = _fraction(match.group(2), match.group(3), f"region {match.group(1).strip()} score", reasons)
            scored_spans.append(match.span())
            if value is None:
                continue
            for region in _ids(match.group(1)):
                if region in regions and regions[region] != value:
                    reasons.append(f"region {region} scored twice; the higher score is kept")
                regions[region] = max(value, regions.get(region, 0.0))
        for match in _REGION_NAMED.finditer(rest):
            if any(start <= match.start() < end for start, end in scored_spans):
                continue
            unscored = [r for r in _ids(match.group(1)) if r not in regions]
            if unscored:
                fallback = image_score if image_score is not None else 1.0
                reasons.append(f"regions {', '.join(map(str, unscored))} named without a score; given {fallback:g}")
                for region in unscored:
                    regions[region] = fallback
        parsed = RegionReply(image_score, regions, reasons=reasons)
    outside = sorted(r for r in parsed.region_scores if not 1 <= r <= region_count)
    if outside:
        reasons.append(f"region ids {', '.join(map(str, outside))} do not exist (1..{region_count}) and are ignored")
        parsed.region_scores = {r: s for r, s in parsed.region_scores.items() if 1 <= r <= region_count}
    if parsed.image_score is None:
        if not parsed.region_scores:
            return RegionReply(None, status="unparsable", reasons=reasons + ["no image score and no region scores found"])
        parsed.image_score = max(parsed.region_scores.values())
        reasons.append("no image score given; the highest region score is used")
    parsed.reasons = reasons
    return parsed
