"""What each sentence of a knowledge text says: how a defect looks, where it sits, what causes it,
or what it does to the product (question_gen/data/sentence_roles.toml holds the cues).

A knowledge text mixes all four in any order, so "the first later sentence that mentions an effect"
once keyed a location sentence as a defect's impact. Each sentence is scored against every role's
cues and takes the best; the generator keys Defect Description only with an appearance sentence and
Defect Analysis only with a consequence (or cause) sentence.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal

Role = Literal["appearance", "location", "cause", "consequence", "other"]
ROLES: tuple[Role, ...] = ("appearance", "location", "cause", "consequence", "other")


@lru_cache(maxsize=1)
def _table() -> dict[str, list[tuple[float, re.Pattern]]]:
    table = tomllib.loads(resources.files("question_gen.data").joinpath("sentence_roles.toml").read_text())
    return {name: [(float(weight), re.compile(pattern, re.I)) for weight, pattern in entry["cues"]] for name, entry in table.items()}


def _cues() -> dict[str, list[tuple[float, re.Pattern]]]:
    return {role: _table()[role] for role in ROLES}


def specific(sentence: str) -> bool:
    """Whether a sentence names something one can see (sentence_roles.toml [specific])."""
    return any(pattern.search(sentence) for _, pattern in _table()["specific"])


# Where a sentence's main clause ends and a side remark begins: a comma, then a participle or "which".
_TAIL = re.compile(r",\s+(?=(indicating|suggesting|suggestive|affecting|leading|resulting|compromising|making|causing|posing|creating|impacting|disrupting|which|potentially|often)\b)", re.I)
TAIL_WEIGHT = 0.4


def role_scores(sentence: str) -> dict[str, float]:
    """Every role's score for one sentence: the weights of the cues its main clause matches, plus
    TAIL_WEIGHT times those of what trails it."""
    split = _TAIL.search(sentence)
    head, tail = (sentence[: split.start()], sentence[split.end() :]) if split else (sentence, "")
    def score(text: str, cues) -> float:
        return sum(weight for weight, pattern in cues if pattern.search(text)) if text else 0.0
    return {role: score(head, cues) + TAIL_WEIGHT * score(tail, cues) for role, cues in _cues().items()}


def sentence_role(sentence: str) -> Role:
    """The role with the highest score; appearance when no cue matches or on a tie with it."""
    scores = role_scores(sentence)
    best = max(scores.values())
    if best <= 0:
        return "appearance"
    return next(role for role in ROLES if scores[role] == best)  # type: ignore[return-value]
