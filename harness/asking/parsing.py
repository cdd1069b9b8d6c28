"""Turning a model's reply into the option letter it chose.

`parse_choice` is strict: it returns a letter only when the reply clearly names one, and otherwise
a reason (unparsable, ambiguous, invalid) that the scorer counts as wrong and shows. It never
guesses. `parse_mmad_compat` is the official MMAD scripts' rule: the last standalone A–E.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.schema import ParseStatus


@dataclass(frozen=True)
class ParsedChoice:
    letter: str | None
    status: ParseStatus
    reason: str | None = None


_MARKUP = re.compile(r"[*`_#]+")
# A reply that is only a letter: "B", "B.", "(B)", "[B]", "b)".
_BARE = re.compile(r"^[\(\[]?([A-Ea-e])[\)\]]?[.:)]?$")
# A reply that starts with a letter as a list marker: "B. Yes.", "(B) No", "B: ...", "B\nbecause ...".
_LEADING = re.compile(r"^[\(\[]?([A-E])(?:[\)\]][.:]?|[.:)])(?:\s|$)|^([A-E])\s*\n")
# A final-answer cue followed by a letter: "Answer: B", "The correct answer is (B)", "option C".
_CUE = re.compile(
    r"(?i:final answer|correct answer|correct option|correct choice|the answer|answer|option|choice)"
    r"\s*(?i:is|would be|should be|=)?\s*[:\-]?\s*[\(\[]?([A-E])(?![A-Za-z])"
)
# A letter standing alone as an option reference: "(B)", "B.", "B)" or "B" at the end of the reply.
# A bare capital followed by a word ("A scratch …") is the English article, not an answer.
_STANDALONE = re.compile(r"(?<![A-Za-z])(?:[\(\[]([A-E])[\)\]]|([A-E])(?:[.:)](?=\s|$)|\s*$))")
_WORDS = re.compile(r"[a-z0-9]+")


def _normalise(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _letter_from_text(reply: str, options: dict[str, str]) -> ParsedChoice | None:
    """Match the option texts: an exact reply, a reply opening with one option, or naming just one."""
    said = _normalise(reply)
    texts = {letter: _normalise(text) for letter, text in options.items() if _normalise(text)}
    exact = [letter for letter, text in texts.items() if said == text]
    if len(exact) == 1:
        return ParsedChoice(exact[0], "ok")
    opening = [letter for letter, text in texts.items() if said.startswith(text + " ")]
    if len(opening) == 1:
        return ParsedChoice(opening[0], "ok")
    padded = f" {said} "
    named = [letter for letter, text in texts.items() if f" {text} " in padded]
    if len(named) == 1:
        return ParsedChoice(named[0], "ok")
    if len(named) > 1:
        return ParsedChoice(None, "ambiguous", f"reply names the texts of options {', '.join(named)}")
    return None


def _checked(letter: str, options: dict[str, str]) -> ParsedChoice:
    letter = letter.upper()
    if letter not in options:
        return ParsedChoice(None, "invalid", f"letter {letter} is not among the options {', '.join(options)}")
    return ParsedChoice(letter, "ok")


def parse_choice(reply: str, options: dict[str, str]) -> ParsedChoice:
    """The letter a reply chose among `options`, or why none can be read from it."""
    text = _MARKUP.sub("", reply or "").strip()
    if not text:
        return ParsedChoice(None, "unparsable", "empty reply")
    if bare := _BARE.match(text):
        return _checked(bare.group(1), options)
    cues = _CUE.findall(text)
    if cues:
        return _checked(cues[-1], options)
    if leading := _LEADING.match(text):
        letter = leading.group(1) or leading.group(2)
        others = {a or b for a, b in _STANDALONE.findall(text[leading.end() :])} - {letter}
        if others:
            return ParsedChoice(None, "ambiguous", f"opens with {letter} but also names {', '.join(sorted(others))}")
        rest = _normalise(text[leading.end() :])
        contradicting = [k for k, v in options.items() if k != letter and _normalise(v) and rest == _normalise(v)]
        if contradicting:
            return ParsedChoice(None, "ambiguous", f"letter {letter} but the text of option {contradicting[0]}")
        return _checked(letter, options)
    letters = {a or b for a, b in _STANDALONE.findall(text)}
    if len(letters) == 1:
        return _checked(letters.pop(), options)
    if len(letters) > 1:
        return ParsedChoice(None, "ambiguous", f"mentions {', '.join(sorted(letters))} with no final-answer cue")
    by_text = _letter_from_text(text, options)
    if by_text is not None:
        return by_text
    return ParsedChoice(None, "unparsable", "no option letter or option text found")


_MMAD_LETTER = re.compile(r"\b([A-E])\b")


def parse_mmad_compat(reply: str) -> str | None:
    """The official MMAD scripts' parser: the last standalone capital A–E, if any."""
    found = _MMAD_LETTER.findall(reply or "")
    return found[-1] if found else None
