"""A run's answers scored again from their raw replies, for every summary (end of a run, resume, score).

A sample line stores its verdict (`correct`, `parsed`) beside the reply it came from; a person or a
program can edit the verdict and leave the reply. So a summary never counts a stored verdict: each
line's reply goes back through its task's own `score` (pure for the kinds that use this: parsing
only, no files written), against the question the question set holds under that line's id.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.models.base import GenerateResponse

# What a line records of its question: a line whose values differ from its id's question in the
# set was moved to another id (ids edited or swapped between lines), so its reply answers another question.
_QUESTION_FIELDS = ("image_id", "dataset", "category", "question")


def from_replies(task, samples: list, where: Path) -> list:
    """The samples re-scored from their replies. Only lines for questions of the task count, each
    once; a line that records another question than its id's is left out, and both are named on
    stderr (such questions count as unanswered)."""
    ordinals = {question_id: ordinal for ordinal, question_id in enumerate(task.ids)}
    kept: list = []
    strangers: list[str] = []
    mismatched: list[str] = []
    for sample in samples:
        ordinal = ordinals.pop(sample.question_id, None)  # popped: a second line for one id is not counted
        if ordinal is None:
            strangers.append(sample.question_id)
            continue
        quick = getattr(task, "unchanged", None)  # a task that can tell a line re-scores to itself, at no object's cost
        if quick is not None and quick(ordinal, sample):
            kept.append(sample)
            continue
        rescored = task.score(ordinal, sample.model, sample.request_digest, response_of(sample))
        if not same_question(sample, rescored):
            mismatched.append(sample.question_id)
            continue
        rescored.settings_digest = sample.settings_digest  # a fresh object: set in place, not copied (40,000 lines)
        kept.append(rescored)
    for found, why in ((strangers, "are not questions of the run's question set (or repeat one already counted); left out"),
                       (mismatched, "record another image, question or options than their id's (ids edited or swapped); left out, each counts as unanswered")):
        if found:
            print(f"iadbench: warning: {where}: {len(found)} lines {why}; first {found[0]!r}", file=sys.stderr)
    return kept


def of_the_set(samples: list, ids: list[str], where: Path) -> list:
    """For kinds whose scoring is not re-run here (it draws files): only lines for questions of the
    set count, each once; the others are named on stderr."""
    wanted = set(ids)
    kept = []
    strangers = []
    for sample in samples:
        if sample.question_id in wanted:
            wanted.discard(sample.question_id)
            kept.append(sample)
        else:
            strangers.append(sample.question_id)
    if strangers:
        print(f"iadbench: warning: {where}: {len(strangers)} lines are not questions of the run's question set (or repeat one already counted); left out; first {strangers[0]!r}", file=sys.stderr)
    return kept


def response_of(sample) -> GenerateResponse:
    """The backend's response as the line recorded it: the reply and what came with it."""
    logprobs = getattr(sample, "option_logprobs", None)
    return GenerateResponse(
        text=sample.reply, option_logprobs=logprobs, usage=sample.usage, latency_s=sample.latency_s, error=sample.error,
        declined=sample.parse_status == "declined", attempts=sample.attempts, cached=sample.cached,
        # a detector's own score travels in the response; one derived from log-probabilities is derived again
        anomaly_score=getattr(sample, "anomaly_score", None) if logprobs is None else None,
        reasoning=getattr(sample, "reasoning", None), consistency=getattr(sample, "consistency", None),
    )


def same_question(stored, rescored) -> bool:
    for name in _QUESTION_FIELDS:
        if getattr(stored, name, None) != getattr(rescored, name, None):
            return False
    options = getattr(stored, "options", None)  # shown in another order by a shuffling protocol: compared as texts
    return options is None or sorted(options.values()) == sorted(getattr(rescored, "options", {}).values())
