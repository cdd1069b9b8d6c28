"""Taking blind shortcuts out of a set: distractors chosen again, and only where none serves, the
question left out.

Distractor choice (question_gen/options.py) draws each question's length rank at random, but a
category's vocabulary can still lean one way over a set: a tire's defect names are "Cut" and
"Contamination", so the shortest name is the key in every cut question; a defect that sits in the
middle of the object makes "The center of the image." the key of most Localization questions and
never a distractor. What one question cannot balance, the set can. Per subtask, while a strategy of
question_gen/shortcuts.py is right in more than TARGET_PERCENT of the questions, the question it
exploits most (ties by the seed) gets other distractors from its pool (every option as true as
those drawn: Draft.pool), the first of up to RESAMPLES seeded draws on which no strategy over the
target does better than chance (a tie among all options is chance); a question with no such draw is
left out, and counted in the report. Distractors are drawn again in a subtask of any size, but a
subtask of MIN_KEPT questions or fewer loses questions only while a strategy is past what chance
cannot reach (its shares are noisy), down to MIN_LEFT questions: 18 Localization questions of real
photographs once kept "pick the shortest" at 44%, as their shares were never held to the target.

TARGET_PERCENT sits under the limit the report warns at (shortcuts.LIMIT_PERCENT), so a set that
passes here passes there once answer letters are dealt. The strategies are those the report holds
each subtask to (shortcuts.held_strategies), less position and model: letters are dealt afterwards
(question_gen/balance.py), and a model's blind answers are handled by `--llm` itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from question_gen import shortcuts

TARGET_PERCENT = 30.0
SHORTCUT_SKIP = f"left out: no distractors leave every blind strategy right in at most {TARGET_PERCENT:.0f}% (question_gen/shortcut_filter.py)"
# below this many questions a share is held only to what chance cannot reach (NOISE_SIGMAS standard
# deviations over chance): a tenth question keyed by the shortest option is noise, a key prior of 95% is not
MIN_KEPT = shortcuts.MIN_QUESTIONS
NOISE_SIGMAS = 2.33
MIN_LEFT = 4
RESAMPLES = 40
BATCH_SHARE = 50  # questions changed per recount: a fiftieth of the subtask
OPTION_ONLY = frozenset(shortcuts.OPTION_STRATEGIES)


@dataclass
class Item:
    """One question as the filter sees it: its subtask, key, distractors and the pool they may be
    drawn from instead."""

    subtask: str
    correct: str
    distractors: tuple[str, ...]
    pool: tuple[str, ...] = ()


def _question(correct: str, distractors: Sequence[str]) -> dict:
    letters = [chr(ord("A") + i) for i in range(1 + len(distractors))]
    return {"Options": dict(zip(letters, (correct, *distractors))), "Answer": "A"}


def _hits(questions: list[dict], strategy: str) -> np.ndarray:
    """Per question, the share of a right answer the strategy gets (1/k on a k-way tie)."""
    if strategy == "key_prior":
        return np.array(shortcuts.key_prior_shares(questions))
    pick = shortcuts.STRATEGIES[strategy]
    return np.array([pick(q["Options"], q["Answer"]) for q in questions])


def _answered(question: dict, strategies: Sequence[str], others: tuple[Counter, Counter]) -> float:
    """How much of the question the strategies answer, the key prior read from the other questions'
    wording counts."""
    total = 0.0
    for name in strategies:
        if name == "key_prior":
            total += shortcuts.key_prior_share(question, *others, counted=False)
        else:
            total += shortcuts.STRATEGIES[name](question["Options"], question["Answer"])
    return total


def _redraw(item: Item, strategies: Sequence[str], others: tuple[Counter, Counter], rng: np.random.Generator) -> tuple[str, ...] | None:
    """Distractors from the item's pool on which none of the strategies does better than chance (a
    tie among all options is chance, as a blind reader would meet it), or None."""
    need = len(item.distractors)
    if len(item.pool) < need:
        return None
    passing = []
    for _ in range(RESAMPLES):
        chosen = tuple(item.pool[i] for i in sorted(rng.choice(len(item.pool), need, replace=False)))
        question = _question(item.correct, chosen)
        if _answered(question, strategies, others) <= len(strategies) / len(question["Options"]) and all(
                _answered(question, (name,), others) <= 1.0 / len(question["Options"]) for name in strategies):
            if "key_prior" not in strategies:
                return chosen
            passing.append(chosen)
    if not passing:
        return None
    # against a key prior, the draw that offers the wordings most often keyed elsewhere as distractors
    # ("The center of the image." keyed in most Localization questions is balanced only by being offered
    # wrong in others): first such draw among those that pass
    keyed, offered = others
    rate = lambda text: keyed[shortcuts.norm(text)] / offered[shortcuts.norm(text)] if offered[shortcuts.norm(text)] else 0.0  # noqa: E731
    return max(passing, key=lambda chosen: sum(rate(t) for t in chosen))


def _count(counts: tuple[Counter, Counter], question: dict, sign: int) -> None:
    """Add (sign +1) or take out (-1) one question's wordings in the set's counts."""
    keyed, offered = counts
    for letter, text in question["Options"].items():
        offered[shortcuts.norm(text)] += sign
        keyed[shortcuts.norm(text)] += sign * (letter == question["Answer"])


def _limit(questions: list[dict]) -> float:
    """TARGET_PERCENT, or for a small subtask the most chance reaches (percent)."""
    if len(questions) > MIN_KEPT:
        return TARGET_PERCENT
    chance = float(np.mean([1.0 / len(q["Options"]) for q in questions]))
    return max(TARGET_PERCENT, 100.0 * (chance + NOISE_SIGMAS * (chance * (1 - chance) / len(questions)) ** 0.5))


def shortcut_free(items: list[Item], rng_for: Callable[[str], np.random.Generator]) -> set[int]:
    """Change the items' distractors in place, and return the indices of those to leave out, so that
    per subtask no held strategy is right in more than TARGET_PERCENT of the kept questions. Each
    subtask draws from its own stream (`rng_for(subtask)`): questions a knowledge file adds to one
    subtask change nothing in another."""
    dropped: set[int] = set()
    by_subtask: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_subtask.setdefault(item.subtask, []).append(index)
    for subtask, members in sorted(by_subtask.items()):
        strategies = [s for s in shortcuts.held_strategies(subtask) if s in OPTION_ONLY]
        rng = rng_for(subtask)
        kept = list(members)
        tiebreak = {i: float(rng.random()) for i in members}
        tried: set[int] = set()  # questions whose distractors were drawn again: never twice
        while strategies and len(kept) > MIN_LEFT:
            questions = [_question(items[i].correct, items[i].distractors) for i in kept]
            # distractors are drawn again while a strategy is past the target, whatever the subtask's
            # size; a question is left out only while one is past what chance cannot reach (_limit)
            shares = {name: 100.0 * _hits(questions, name).mean() for name in strategies}
            over = [name for name in strategies if shares[name] > TARGET_PERCENT]
            if not over:
                break
            beyond_chance = any(shares[name] > _limit(questions) for name in over)
            score = sum(_hits(questions, name) for name in over)
            # a key prior is also lowered by offering the often-keyed wordings wrong in questions it
            # does not answer: those come after the exploited ones
            hits_only = "key_prior" not in over
            order = sorted((j for j in range(len(kept)) if (score[j] > 0 or not hits_only) and (beyond_chance or kept[j] not in tried)),
                           key=lambda j: (kept[j] in tried, score[j] == 0, -score[j], tiebreak[kept[j]]))
            if not order:
                break
            # the most exploited first, a batch per round (a big set converges in few recounts)
            counts = shortcuts.wording_counts(questions)
            leave: list[int] = []
            for j in order[: max(1, len(kept) // BATCH_SHARE)]:
                index = kept[j]
                _count(counts, questions[j], -1)  # the others' counts, for the key prior
                redrawn = None if index in tried else _redraw(items[index], over, counts, rng)
                tried.add(index)
                if redrawn is not None:
                    items[index].distractors = redrawn
                    questions[j] = _question(items[index].correct, redrawn)
                elif beyond_chance:
                    leave.append(j)
                _count(counts, questions[j], +1)
            for j in sorted(leave, reverse=True):
                dropped.add(kept.pop(j))
    return dropped
