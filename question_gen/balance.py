"""Placing the right answer: options shuffled with the seed, answer positions balanced.

A model that always answers "A" must score chance, not more. So for each option count, the right
answer's positions are dealt out evenly (differing by at most one across positions) in a seeded
random order over the questions, and the distractors fill the other slots in a seeded order.
"""

from __future__ import annotations

import numpy as np

from harness.schema import OPTION_LETTERS


def balanced_positions(option_counts: list[int], rng: np.random.Generator, starts: dict[int, int] | None = None) -> list[int]:
    """For each question (by its option count) the index of its right answer. With `starts`, the deal
    of each option count continues where the previous call's left off (and updates it), so several
    groups dealt one after another are balanced each and together."""
    positions = [0] * len(option_counts)
    starts = {} if starts is None else starts
    for n_options in sorted(set(option_counts)):
        members = [i for i, n in enumerate(option_counts) if n == n_options]
        start = starts.get(n_options, 0)
        deck = (start + np.arange(len(members))) % n_options
        starts[n_options] = (start + len(members)) % n_options
        rng.shuffle(deck)
        for question_index, position in zip(members, deck):
            positions[question_index] = int(position)
    return positions


def arrange_options(correct: str, distractors: tuple[str, ...], position: int, rng: np.random.Generator) -> tuple[dict[str, str], str]:
    """Options keyed A, B, … with `correct` at `position`; returns (options, answer letter)."""
    others = list(distractors)
    rng.shuffle(others)
    ordered = others[:position] + [correct] + others[position:]
    letters = OPTION_LETTERS[: len(ordered)]
    return dict(zip(letters, ordered)), letters[position]
