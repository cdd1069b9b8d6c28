"""Reading GPT-4V-AD replies: "image anomaly score: 0.9; region 1: 0.9; region 3: 0.7."

The paper's code has no parser; real replies deviate, and a parser that guesses paints the wrong
map. The rules, each liberty recorded as a reason on the sample:
- a region the reply calls normal ("Region 5 appears normal", "regions 2 and 4 are normal (0.0)")
  is not an anomaly: it gets 0, never the image score;
- "region 2, 1.0", "region 2 - 0.7", "region 2 = 70%": the score is the first number after the
  region ids that is not itself an id; "regions 1, 3 and 5: 0.8" and "regions 3-5: 0.8" name several;
- a score above 1 is rescaled only when the reply says its scale ("on a scale of 0 to 10", "out of
  10", "/10", "%", "percent", "out of 100"); otherwise it is an ambiguity: recorded and not used;
- a reply in JSON ({"image_anomaly_score": …, "regions": {"3": 0.7}} and similar) is read as such;
- region ids outside 1..n are dropped; a region named as anomalous without a score takes the image
  score; a missing image score becomes the highest region score, or 0 when the reply calls the
  whole image normal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.asking.model_json import finite_number, read_model_json

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)(\s*%|\s*percent)?"
_IMAGE_SCORE = re.compile(r"(?:image|overall)[\s_-]*(?:anomaly[\s_-]*)?score\s*(?:is|of|:|=|-|–|was)?\s*(?:about|around|approximately)?\s*" + _NUMBER)
_ID = r"\d+(?![.\d])(?:\s*(?:-|–|to)\s*\d+(?![.\d]))?"  # an id or a range of ids; never a decimal
_IDS = re.compile(r"regions?\s*(?:ids?|numbers?|no\.?)?\s*[#:]?\s*(" + _ID + r"(?:\s*(?:,|and|&|/|or)\s*(?:regions?\s*)?" + _ID + r")*)")
_SCORE_AFTER = re.compile(r"^[^\d]{0,40}?" + _NUMBER)
_NORMAL = re.compile(r"\b(?:normal|no (?:visible )?(?:anomal\w*|defects?|issues?)|not anomalous|non-anomalous|without (?:any )?anomal\w*|looks? fine|appears? fine|defect-free)\b")
_IMAGE_NORMAL = re.compile(r"\b(?:image|object|product|it)\b[^.;]{0,30}\b(?:is|looks|appears|seems)\s+(?:completely\s+|entirely\s+)?(?:normal|fine|defect-free)\b|\bno (?:visible )?anomal\w* (?:are |were )?(?:detected|found|present|visible)\b")
_SCALE_10 = re.compile(r"(?:scale|range)\s*(?:of|from)?\s*0\s*(?:to|-|–)\s*10\b(?!\d|\.\d)|out of 10\b(?!\d)|/\s*10\b(?!\d)")
_SCALE_100 = re.compile(r"(?:scale|range)\s*(?:of|from)?\s*0\s*(?:to|-|–)\s*100\b|out of 100\b|\bpercent")


@dataclass
class RegionReply:
    image_score: float | None
    region_scores: dict[int, float] = field(default_factory=dict)
    status: str = "ok"  # ok | unparsable
    reasons: list[str] = field(default_factory=list)


def _ids(listing: str) -> list[int]:
    ids = []
    for start, end in re.findall(r"(\d+)(?:\s*(?:-|–|to)\s*(\d+))?", listing):
        first, last = int(start), int(end or start)
        ids.extend(range(first, last + 1) if last >= first and last - first < 1000 else [first])
    return ids


class _Scale:
    """The reply's own scale, if it states one; scores above 1 are read on it, or not at all."""

    def __init__(self, text: str) -> None:
        self.divisor = 10.0 if _SCALE_10.search(text) else 100.0 if _SCALE_100.search(text) else None

    def read(self, value: str, unit: str | None, what: str, reasons: list[str]) -> float | None:
        number = float(value)
        if unit and unit.strip():
            return min(number / 100, 1.0)
        if self.divisor:
            scaled = number / self.divisor
            reasons.append(f"{what} {value} read on the reply's 0-{self.divisor:g} scale as {scaled:g}")
            return min(scaled, 1.0)
        if number > 1:
            reasons.append(f"{what} {value} is outside 0-1 and the reply states no scale: ambiguous, not used")
            return None
        return number


def _clauses(text: str) -> list[str]:
    """Sentences and list items: split at ';', line breaks and sentence full stops (not decimals)."""
    return [c.strip() for c in re.split(r";|\n|(?<!\d)\.(?!\d)|\.(?=\s)", text) if c.strip()]


def _from_text(text: str, scale: _Scale, reasons: list[str]) -> RegionReply:
    image_match = _IMAGE_SCORE.search(text)
    image_score = scale.read(image_match.group(1), image_match.group(2), "image score", reasons) if image_match else None
    rest = text[: image_match.start()] + " ; " + text[image_match.end() :] if image_match else text
    regions: dict[int, float] = {}
    unscored: list[int] = []
    for clause in _clauses(rest):
        matches = list(_IDS.finditer(clause))
        for index, match in enumerate(matches):
            ids = _ids(match.group(1))
            tail = clause[match.end() : matches[index + 1].start() if index + 1 < len(matches) else len(clause)]
            called_normal = bool(_NORMAL.search(tail))
            number = _SCORE_AFTER.match(tail)
            value = scale.read(number.group(1), number.group(2), f"region {match.group(1).strip()} score", reasons) if number else None
            if called_normal and (value is None or value > 0):
                reasons.append(f"regions {', '.join(map(str, ids))} called normal: not anomalies" + (f" (their stated {value:g} ignored)" if value else ""))
                value = 0.0
            if value is None:
                if not number:
                    unscored += [i for i in ids if i not in regions]
                continue
            for region in ids:
                if region in regions and regions[region] != value:
                    reasons.append(f"region {region} scored twice; the higher score is kept")
                regions[region] = max(value, regions.get(region, 0.0))
    missing = [r for r in dict.fromkeys(unscored) if r not in regions]
    if missing:
        fallback = image_score if image_score is not None else 1.0
        reasons.append(f"regions {', '.join(map(str, missing))} named as anomalous without a score; given {fallback:g}")
        regions.update({r: fallback for r in missing})
    return RegionReply(image_score, regions, reasons=reasons)


def _from_json(text: str, scale: _Scale, reasons: list[str]) -> RegionReply | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    data, problem = read_model_json(text[start : end + 1])
    if problem or not isinstance(data, dict):
        return None
    lowered = {str(k).lower().replace("_", " "): v for k, v in data.items()}
    image = next((v for k, v in lowered.items() if ("image" in k or "overall" in k) and "score" in k), lowered.get("anomaly score"))
    listed = next((v for k, v in lowered.items() if k.startswith("region")), {})
    if isinstance(listed, dict):
        items = [(re.findall(r"\d+", str(k)), v) for k, v in listed.items()]
    elif isinstance(listed, list):
        entries = [{str(k).lower().replace("_", " "): v for k, v in e.items()} for e in listed if isinstance(e, dict)]
        items = [([str(e.get("region", e.get("id", "")))], e.get("score", e.get("anomaly score"))) for e in entries]
    else:
        items = []
    items += [(re.findall(r"\d+", k), v) for k, v in lowered.items() if re.fullmatch(r"region\s*\d+", k)]  # flat {"region 3": 0.7}
    regions: dict[int, float] = {}
    for ids, score in items:
        if ids and finite_number(score) is not None:
            value = scale.read(str(score), None, f"region {ids[0]} score", reasons)
            if value is not None:
                regions[int(ids[0])] = value
    image_score = scale.read(str(image), None, "image score", reasons) if finite_number(image) is not None else None
    if image_score is None and not regions:
        return None
    return RegionReply(image_score, regions, reasons=reasons)


def parse_region_reply(reply: str, region_count: int) -> RegionReply:
    reasons: list[str] = []
    text = re.sub(r"[*`_]{2,}|`", "", (reply or "").strip()).lower()
    if not text:
        return RegionReply(None, status="unparsable", reasons=["empty reply"])
    scale = _Scale(text)
    try:
        parsed = _from_json(text, scale, reasons) or _from_text(text, scale, reasons)
    except (ValueError, OverflowError, RecursionError):  # a region id of 5,000 digits: no number Python converts
        return RegionReply(None, status="unparsable", reasons=reasons + ["a number too long to read"])
    outside = sorted(r for r in parsed.region_scores if not 1 <= r <= region_count)
    if outside:
        reasons.append(f"region ids {', '.join(map(str, outside))} do not exist (1..{region_count}) and are ignored")
        parsed.region_scores = {r: s for r, s in parsed.region_scores.items() if 1 <= r <= region_count}
    if parsed.image_score is None:
        anomalous = [s for s in parsed.region_scores.values() if s > 0]
        if anomalous:
            parsed.image_score = max(anomalous)
            reasons.append("no image score given; the highest region score is used")
        elif _IMAGE_NORMAL.search(text) or parsed.region_scores:
            parsed.image_score = 0.0
            reasons.append("no image score given; the reply calls the image normal: 0")
        else:
            return RegionReply(None, status="unparsable", reasons=reasons + ["no image score and no region scores found"])
    parsed.reasons = reasons
    return parsed
