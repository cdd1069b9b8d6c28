"""What a description says of a defect's count, size, shape and tone, read from its words, and which
of those claims the pixels contradict (question_gen/attributes.py measures them with margins: an
attribute near a class boundary is unknown and contradicts nothing)."""

from __future__ import annotations

import re

from question_gen.attributes import DefectAttributes, ruled_out

# word → (attribute, value); the first match of each attribute counts
_WORDS: tuple[tuple[str, str, str], ...] = (
    (r"\b(a single|one|a lone|an isolated)\b", "count", "1"),
    (r"\b(two|a pair of|both)\b", "count", "2"),
    (r"\b(several|three|multiple|many|numerous|scattered)\b", "count", "3"),
    (r"\b(small|tiny|minor|minute|slight)\b", "size", "small"),
    (r"\b(medium|moderate|medium-sized)\b", "size", "medium"),
    (r"\b(large|big|extensive|major|huge|sizeable)\b", "size", "large"),
    (r"\b(elongated|linear|long and thin|streak\w*)\b", "shape", "elongated"),
    (r"\b(round|circular|rounded)\b", "shape", "round"),
    (r"\birregular\w*\b", "shape", "irregular"),
    (r"\bdarker\b", "tone", "darker"),
    (r"\b(brighter|lighter)\b", "tone", "brighter"),
    (r"\b(different colou?r|discolou?r\w*)\b", "tone", "discoloured"),
    (r"\bsimilar in tone\b", "tone", "similar"),
)
_PATTERNS = tuple((re.compile(pattern, re.I), attribute, value) for pattern, attribute, value in _WORDS)


def claims(text: str) -> dict[str, frozenset[str]]:
    """{attribute: the values a description states of it} ("a discoloured area, brighter than its
    surroundings" states two tones, both of which may hold)."""
    found: dict[str, set[str]] = {}
    for pattern, attribute, value in _PATTERNS:
        if pattern.search(text):
            found.setdefault(attribute, set()).add(value)
    return {attribute: frozenset(values) for attribute, values in found.items()}


_LINKS = frozenset("a an the to with from than its their in of".split())


def unclaimed_words(text: str) -> frozenset[str]:
    """A description's words less its claims and the words that tie them in ("similar in tone to its
    surroundings" and "with a different colour from its surroundings" say the rest alike)."""
    for pattern, _, _ in _PATTERNS:
        text = pattern.sub(" ", text)
    return frozenset(re.findall(r"[a-z0-9]+", text.lower())) - _LINKS


def contradictions(stated: dict[str, frozenset[str]], measured: DefectAttributes) -> list[str]:
    """The claims the measurement contradicts, each as 'size small, the pixels say large (…)'."""
    wrong = []
    for value in sorted(stated.get("count", ())):
        if (int(value) == 1) != (measured.count == 1):
            # one part against "two" or "several" is sure; 2 against 3+ is not (a crack's mask may break in parts)
            wrong.append(f"count {value}, the mask has {measured.count} part(s)")
    false = ruled_out(measured)
    for attribute in ("size", "shape", "tone"):
        for value in sorted(stated.get(attribute, frozenset()) & false[attribute]):
            measure = {"size": "relative_area", "shape": "axis_ratio", "tone": "luminance_delta"}[attribute]
            wrong.append(f"{attribute} {value}, the pixels say {getattr(measured, attribute) or 'not that'} ({measure} {measured.measures.get(measure)})")
    return wrong


def agreements(stated: dict[str, frozenset[str]], measured: DefectAttributes) -> list[str]:
    """The claims the measurement confirms (the value measured clear of its boundary)."""
    confirmed = [f"count {value}" for value in sorted(stated.get("count", ())) if int(value) == min(measured.count, 3)]
    for attribute in ("size", "shape", "tone"):
        value = getattr(measured, attribute)
        if value is not None and value in stated.get(attribute, ()):
            confirmed.append(f"{attribute} {value}")
    return confirmed


def confirmed(stated: dict[str, frozenset[str]], measured: DefectAttributes) -> bool:
    """Every claim of a description is confirmed: it is as true of the pixels as can be known."""
    return bool(stated) and len(agreements(stated, measured)) == sum(len(values) for values in stated.values()) and not contradictions(stated, measured)
