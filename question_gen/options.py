"""Choosing a question's wrong options: never one that is also right, and never so that the right
option stands out by its length.

A test-taker's shortcut is to pick the longest option. So for each question a seeded draw fixes how
many distractors will be longer than the right answer (0 to n, each equally likely), and the
distractors are chosen to match where the pool allows (the shorter ones nearest in length): the right
answer is then the longest option in about 1/(n+1) of the questions, as often as any other rank, and
on average no longer than its distractors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

_STOPWORDS = {"a", "an", "the", "of", "and", "or", "with"}


def _tokens(name: str) -> frozenset[str]:
    words = re.findall(r"[a-z0-9]+", name.lower())
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words if w not in _STOPWORDS)


def same_thing(a: str, b: str) -> bool:
    """Two object names that name the same thing: equal words once plurals and articles are set
    aside, or one's words all within the other's ("Capsules" and "Pill capsule", "Bottle" and
    "Drink bottle"): offering one as a distractor of the other would make two options right."""
    ta, tb = _tokens(a), _tokens(b)
    return bool(ta and tb) and (ta <= tb or tb <= ta)


def pick_distractors(
    correct: str,
    pools: Sequence[Sequence[str]],
    count: int,
    rng: np.random.Generator,
    conflicts: Callable[[str, str], bool] = lambda a, b: a.strip().lower() == b.strip().lower(),
) -> list[str]:
    """Up to `count` distractors from `pools` in order of preference (a category's own defects before
    generic ones). Each pool is shuffled; a pool gives what the drawn number of distractors longer than
    `correct` asks for, nearest in length first, and leaves places to a later pool only for longer
    options it lacks itself."""
    longer_wanted = int(rng.integers(count + 1))
    size = len(correct)
    chosen: list[str] = []
    usable = lambda c: not any(conflicts(c, other) for other in (correct, *chosen))  # noqa: E731
    shuffled = [_shuffled(rng, pool) for pool in pools]
    for index, pool in enumerate(shuffled):
        need = count - len(chosen)
        if need <= 0:
            break
        candidates: list[str] = []
        for candidate in pool:  # none that is right too, none that repeats another
            if usable(candidate) and not any(conflicts(candidate, other) for other in candidates):
                candidates.append(candidate)
        # Longer ones in the shuffled order, shorter ones nearest in length first (a tie, which blurs
        # the length rank, last): the rank stays as drawn and the distractors are on average at
        # least as long as the right answer.
        longer = [c for c in candidates if len(c) > size]
        shorter = sorted((c for c in candidates if len(c) <= size), key=lambda c: (len(c) == size, size - len(c)))
        # what the draw still asks for on each side, and what later pools could give of it
        want_longer = max(0, longer_wanted - sum(len(c) > size for c in chosen))
        want_shorter = max(0, count - longer_wanted - sum(len(c) <= size for c in chosen))
        later = [c for pool_after in shuffled[index + 1 :] for c in pool_after if usable(c)]
        take_longer, take_shorter = min(want_longer, need, len(longer)), min(want_shorter, len(shorter))
        take_shorter = min(take_shorter, need - take_longer)
        reserved = min(want_longer - take_longer, sum(len(c) > size for c in later)) + min(want_shorter - take_shorter, sum(len(c) <= size for c in later))
        picked = longer[:take_longer] + shorter[:take_shorter]
        spare = longer[take_longer:] + shorter[take_shorter:]  # this pool's others, for places later pools cannot fill
        picked += spare[: max(0, need - reserved - len(picked))]
        chosen += picked
    for pool in shuffled:  # places left for later pools that could not fill them
        for candidate in pool:
            if len(chosen) < count and usable(candidate):
                chosen.append(candidate)
    return chosen


def usable_pool(correct: str, pools: Sequence[Sequence[str]], conflicts: Callable[[str, str], bool] = lambda a, b: a.strip().lower() == b.strip().lower()) -> tuple[str, ...]:
    """Every option `pick_distractors` could have chosen, in order of preference, once each: what the
    set-level filter (question_gen/shortcut_filter.py) may choose from instead."""
    out: list[str] = []
    for pool in pools:
        for candidate in pool:
            if not conflicts(candidate, correct) and not any(conflicts(candidate, other) for other in out):
                out.append(candidate)
    return tuple(out)


def _shuffled(rng: np.random.Generator, items: Sequence[str]) -> list[str]:
    items = list(items)
    rng.shuffle(items)
    return items
