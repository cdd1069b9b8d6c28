"""How far runs agree with people (human/<name> runs): between each two people who answered the
same questions (the spread of the human ceiling itself), and between each person and each model.

Over the questions both runs answered with a letter: percent agreement (the same letter chosen)
and Cohen's kappa over the letters chosen (agreement beyond what each run's own letter
frequencies would give by chance; 1 is full agreement, 0 chance level).
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Sequence

from harness.models.registry import provider_of
from harness.report.rundata import RunData, run_key

# People × models grows fast; a report shows this many pairs at most, people's pairs first.
MAX_PAIRS = 60


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when undefined (no items, or both
    always gave one and the same answer, so chance agreement is already 1)."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(a == b for a, b in zip(first, second)) / n
    counts_first, counts_second = Counter(first), Counter(second)
    expected = sum(counts_first[k] * counts_second[k] for k in counts_first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def is_person(run: RunData) -> bool:
    provider = provider_of(run.spec.model)
    return provider is not None and provider.person


def pair_agreement(first: RunData, second: RunData) -> dict | None:
    """Agreement over the questions both runs answered with a letter, or None when they share
    none (other data: the same question id in another set is another question)."""
    if first.spec.data_digest != second.spec.data_digest:
        return None
    theirs = {question: letter for question, letter in zip(second.ids, second.chosen) if letter is not None}
    shared = [(letter, theirs[question]) for question, letter in zip(first.ids, first.chosen) if letter is not None and question in theirs]
    if not shared:
        return None
    mine, other = zip(*shared)
    same = sum(a == b for a, b in shared)
    return {"questions": len(shared), "agreement": 100.0 * same / len(shared), "kappa": cohen_kappa(mine, other)}


def agreement_section(runs: list[RunData], keys: dict[str, str]) -> dict | None:
    """The report's agreement table, when it holds a person's run and another run over the same
    questions; None otherwise."""
    people = [run for run in runs if is_person(run)]
    if not people:
        return None
    models = [run for run in runs if not is_person(run)]
    candidates = [(a, b, "people") for a, b in combinations(people, 2)] + [(person, model, "person and model") for person in people for model in models]
    rows = []
    for first, second, between in candidates:
        figures = pair_agreement(first, second)
        if figures is not None:
            rows.append(figures | {"first": first.label, "second": second.label, "first_key": keys[run_key(first)], "second_key": keys[run_key(second)], "between": between})
    if not rows:
        return None
    among_people = [row for row in rows if row["between"] == "people"]
    kappas = [row["kappa"] for row in among_people if row["kappa"] is not None]
    return {
        "rows": rows[:MAX_PAIRS],
        "left_out": max(0, len(rows) - MAX_PAIRS),
        "people": len(people),
        "mean_people_agreement": sum(row["agreement"] for row in among_people) / len(among_people) if among_people else None,
        "mean_people_kappa": sum(kappas) / len(kappas) if kappas else None,
    }
