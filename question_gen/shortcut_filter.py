"""Leaving out the questions a blind reader would get right, until no blind strategy wins.

Distractor choice (question_gen/options.py) draws each question's length rank at random, but a
category's vocabulary can still lean one way over a set: a tire's defect names are "Cut" and
"Contamination", so the shortest name is the key in every cut question; a defect that sits in the
middle of the object makes "The center of the image." the key of most Localization questions and
never a distractor. What one question cannot balance, the set can: per subtask, while a strategy of
question_gen/shortcuts.py is right in more than TARGET_PERCENT of the questions, the questions it
answers are left out, most-exploited first (ties by the seed), and counted in the report.

TARGET_PERCENT sits under the limit the report warns at (shortcuts.LIMIT_PERCENT), so a set that
passes here passes there once answer letters are dealt. The strategies enforced are those
the report holds each subtask to (shortcuts.held_strategies), less position and model: letters are
dealt afterwards (question_gen/balance.py) and a model's blind answers are handled by `--llm`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from question_gen import shortcuts

TARGET_PERCENT = 30.0
SHORTCUT_SKIP = f"left out so that no blind strategy is right in over {TARGET_PERCENT:.0f}% (question_gen/shortcut_filter.py)"
MIN_KEPT = 8  # a subtask smaller than this is left alone: its shares are noise, and dropping would empty it
OPTION_ONLY = frozenset(shortcuts.OPTION_STRATEGIES)


def _options(correct: str, distractors: Sequence[str]) -> tuple[dict[str, str], str]:
    letters = [chr(ord("A") + i) for i in range(1 + len(distractors))]
    return dict(zip(letters, (correct, *distractors))), "A"


def _hits(questions: list[tuple[dict[str, str], str]], strategy: str) -> np.ndarray:
    """Per question, the share of a right answer the strategy gets (1/k on a k-way tie)."""
    if strategy == "key_prior":
        return np.array(shortcuts.key_prior_shares([{"Options": o, "Answer": a} for o, a in questions]))
    pick: Callable = shortcuts.STRATEGIES[strategy]
    return np.array([pick(options, answer) for options, answer in questions])


def shortcut_free(items: list[tuple[str, str, Sequence[str]]], rng: np.random.Generator) -> set[int]:
    """Indices of the (subtask, correct, distractors) items to leave out so that, per subtask, no
    enforced strategy is right in more than TARGET_PERCENT of the kept questions."""
    dropped: set[int] = set()
    by_subtask: dict[str, list[int]] = {}
    for index, (subtask, _, _) in enumerate(items):
        by_subtask.setdefault(subtask, []).append(index)
    for subtask, members in sorted(by_subtask.items()):
        strategies = [s for s in shortcuts.held_strategies(subtask) if s in OPTION_ONLY]
        kept = list(members)
        tiebreak = {i: float(rng.random()) for i in members}
        while strategies and len(kept) > MIN_KEPT:
            questions = [_options(items[i][1], items[i][2]) for i in kept]
            table = {name: _hits(questions, name) for name in strategies}
            over = {name: hits for name, hits in table.items() if 100.0 * hits.mean() > TARGET_PERCENT}
            if not over:
                break
            score = sum(over.values())
            # the questions most exploited; a batch per round (a big set converges in few rounds)
            batch = max(1, len(kept) // 50)
            order = sorted(range(len(kept)), key=lambda j: (-score[j], tiebreak[kept[j]]))[:batch]
            if score[order[0]] <= 0:
                break
            for j in sorted(order, reverse=True):
                dropped.add(kept.pop(j))
    return dropped
