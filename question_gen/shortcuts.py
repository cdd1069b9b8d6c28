"""Answer-free shortcuts: how far a reader who never sees the image gets on a question set.

Pure functions over MMAD-format records (`{image key: {"conversation": [question, …]}}`), so the
same figures come out of `generate --report` for a new set and out of `audit` for any set, MMAD's
own included. Per subtask, each blind strategy's share of right answers:

- shortest / longest: pick the option with the fewest / most characters;
- most_specific / least_specific: pick the option naming the most / fewest things (distinct
  content words: "a small round dark dent near the rim" against "a dent");
- most_agreeing: pick the option whose content words agree most with the other options' (a key
  written by varying one attribute of each distractor shares the most words with them all);
- key_prior: pick the option whose wording is most often the key elsewhere in the set (counted
  over the other questions of the subtask: a wording offered only as the key, as "The center of the
  image." was, gives itself away);
- position: always answer one letter; the best letter's share (the figure a position-biased
  model would reach);
- model: a model's answer given the question text alone, where one was asked (`--llm`, `--judge`).

A tie among k options counts 1/k when the key is among them: the expected score of a picker who
breaks ties at random, so a strategy that carries no signal scores chance, not more.
Anomaly Detection is measured by position only, against 50%: its options are the fixed Yes/No pair
whatever their number (VisA's pcb4 questions carry 4), so length or wording says nothing there.
A strategy above LIMIT_PERCENT (with at least MIN_QUESTIONS questions) is a warning.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

from harness.schema import Subtask

LIMIT_PERCENT = 35.0  # chance is 25% with 4 options; a blind strategy past this is a shortcut
DETECTION_LIMIT_PERCENT = 60.0  # Yes/No: chance 50%
MIN_QUESTIONS = 20  # fewer and a share moves too much by chance to warn about
OPTION_STRATEGIES = ("shortest", "longest", "most_specific", "least_specific", "most_agreeing", "key_prior")
_DETECTION = Subtask.ANOMALY_DETECTION.value
_STOPWORDS = frozenset("a an the of and or with in on at to is are it its their this that these by for from as be".split())

# key_prior needs a reader who has learned the set's keys; it is held to the limit only where every
# image's options come from one small shared vocabulary (the 9 grid-cell wordings; the built-in
# causes and consequences of Defect Analysis, a few dozen sentences): elsewhere a wording's being
# the key is what the images show (a set of one object always keys its name).
KEY_PRIOR_HELD = frozenset({Subtask.DEFECT_LOCALIZATION.value, Subtask.DEFECT_ANALYSIS.value})

Question = Mapping  # one MMAD question: Question, Options {letter: text}, Answer, type


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS)


def _pick_share(scores: Mapping[str, float], answer: str, best: Callable[[Iterable[float]], float]) -> float:
    """1/k when the answer is among the k options with the best score, else 0."""
    top = best(scores.values())
    tied = [letter for letter, score in scores.items() if score == top]
    return 1.0 / len(tied) if answer in tied else 0.0


def shortest(options: Mapping[str, str], answer: str) -> float:
    return _pick_share({k: len(v) for k, v in options.items()}, answer, min)


def longest(options: Mapping[str, str], answer: str) -> float:
    return _pick_share({k: len(v) for k, v in options.items()}, answer, max)


def most_specific(options: Mapping[str, str], answer: str) -> float:
    return _pick_share({k: len(_words(v)) for k, v in options.items()}, answer, max)


def least_specific(options: Mapping[str, str], answer: str) -> float:
    return _pick_share({k: len(_words(v)) for k, v in options.items()}, answer, min)


def agreement(options: Mapping[str, str]) -> dict[str, float]:
    """Per option, the mean share of its content words (Jaccard) it holds in common with each other
    option."""
    words = {k: _words(v) for k, v in options.items()}
    out = {}
    for letter, mine in words.items():
        others = [w for k, w in words.items() if k != letter]
        out[letter] = sum(len(mine & w) / max(len(mine | w), 1) for w in others) / max(len(others), 1)
    return out


def most_agreeing(options: Mapping[str, str], answer: str) -> float:
    return _pick_share({k: round(v, 9) for k, v in agreement(options).items()}, answer, max)


STRATEGIES: dict[str, Callable[[Mapping[str, str], str], float]] = {"shortest": shortest, "longest": longest, "most_specific": most_specific,
                                                                         "least_specific": least_specific, "most_agreeing": most_agreeing}


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def wording_counts(questions: Iterable[Question]) -> tuple[Counter, Counter]:
    """(how often each wording is the key, how often it is offered) over the questions."""
    keyed, offered = Counter(), Counter()
    for question in questions:
        for letter, text in question["Options"].items():
            offered[norm(text)] += 1
            keyed[norm(text)] += letter == question["Answer"]
    return keyed, offered


def key_prior_share(question: Question, keyed: Counter, offered: Counter, counted: bool = True) -> float:
    """The key_prior pick's share on one question, from wording counts over the set (`counted`: the
    question itself is in them, and is taken out: leave-one-out)."""
    scores = {}
    for letter, text in question["Options"].items():
        own = counted and letter == question["Answer"]
        seen = offered[norm(text)] - counted
        scores[letter] = round((keyed[norm(text)] - own) / seen, 9) if seen else 1.0 / len(question["Options"])
    return _pick_share(scores, question["Answer"], max)


def key_prior_shares(questions: list[Question]) -> list[float]:
    """Per question, the key_prior pick's share: each option scored by how often its wording is
    the key among the other questions it appears in (leave-one-out)."""
    keyed, offered = wording_counts(questions)
    return [key_prior_share(question, keyed, offered) for question in questions]


def questions_of(mmad: Mapping) -> Iterable[tuple[str, int, Question]]:
    """(image key, index, question) of every well-formed multiple-choice question."""
    for key, record in mmad.items():
        conversation = record.get("conversation", []) if isinstance(record, Mapping) else []
        for index, question in enumerate(conversation if isinstance(conversation, list) else []):
            if isinstance(question, Mapping) and isinstance(question.get("Options"), Mapping) and question.get("Answer") in question["Options"] and len(question["Options"]) >= 2:
                yield key, index, question


def held_strategies(subtask: str) -> tuple[str, ...]:
    """The strategies a subtask is held to the limit on."""
    if subtask == _DETECTION:
        return ("position", "model")
    return tuple(s for s in (*OPTION_STRATEGIES, "position", "model") if s != "key_prior" or subtask in KEY_PRIOR_HELD)


def _provenance_answer(question: Question) -> str | None:
    """The letter of the option a model chose without the image, where the set records it
    (`generate --llm` keeps it as provenance.blind_answer, the option's text)."""
    provenance = question.get("provenance")
    text = provenance.get("blind_answer") if isinstance(provenance, Mapping) else None
    return next((letter for letter, option in question["Options"].items() if option == text), None) if text else None


def shortcut_figures(mmad: Mapping, model_answers: Mapping[tuple[str, int], str] | None = None) -> dict[str, dict]:
    """Per subtask: questions, chance (percent), each strategy's percent right, the best letter of
    the position strategy, and the worst held strategy. `model_answers` maps (image key, question
    index) to the letter a model chose from the text alone; without it, the set's own record of
    one (provenance.blind_answer) is used where present."""
    rows: dict[str, dict] = defaultdict(lambda: {"questions": 0, "chance": 0.0, "sums": Counter(), "letters": Counter(), "model": [0, 0.0], "all": []})
    for key, index, question in questions_of(mmad):
        subtask, options, answer = str(question.get("type", "")), question["Options"], question["Answer"]
        row = rows[subtask]
        row["questions"] += 1
        detection = subtask == _DETECTION
        row["chance"] += 0.5 if detection else 1.0 / len(options)
        row["letters"][answer] += 1
        row["all"].append(question)
        if not detection:
            for name, strategy in STRATEGIES.items():
                row["sums"][name] += strategy(options, answer)
        model = model_answers.get((key, index)) if model_answers is not None else _provenance_answer(question)
        if model is not None:
            row["model"][0] += 1
            row["model"][1] += model == answer
    figures: dict[str, dict] = {}
    for subtask in sorted(rows):
        row = rows[subtask]
        n = row["questions"]
        if subtask != _DETECTION:
            row["sums"]["key_prior"] = sum(key_prior_shares(row["all"]))
        letter, hits = max(sorted(row["letters"].items()), key=lambda item: item[1])
        strategies = {name: 100.0 * row["sums"][name] / n for name in OPTION_STRATEGIES} if subtask != _DETECTION else {}
        strategies["position"] = 100.0 * hits / n
        if row["model"][0]:
            strategies["model"] = 100.0 * row["model"][1] / row["model"][0]
        held = [s for s in held_strategies(subtask) if s in strategies]
        worst = max(held, key=strategies.__getitem__)
        figures[subtask] = {"questions": n, "chance_percent": 100.0 * row["chance"] / n, "percent": strategies, "position_letter": letter,
                            "worst": worst, "held": held, "limit_percent": DETECTION_LIMIT_PERCENT if subtask == _DETECTION else LIMIT_PERCENT}
    return figures


def shortcut_warnings(figures: Mapping[str, dict], skip: tuple[str, ...] = ()) -> list[str]:
    """One line per (subtask, held strategy, less those in `skip`) past its limit, on a subtask with
    enough questions."""
    out = []
    for subtask, row in figures.items():
        if row["questions"] < MIN_QUESTIONS:
            continue
        for name, percent in row["percent"].items():
            if name in row["held"] and name not in skip and percent > row["limit_percent"]:
                out.append(f"shortcut: in {subtask}, picking the {name.replace('_', '-')} option" + (f" ({row['position_letter']})" if name == "position" else "")
                           + f" is right in {percent:.0f}% of {row['questions']} questions (chance {row['chance_percent']:.0f}%, limit {row['limit_percent']:.0f}%)")
    return out


def describe_shortcuts(figures: Mapping[str, dict]) -> list[str]:
    """The figures as console lines, one per subtask."""
    return [f"blind shortcuts, {subtask} ({row['questions']} q, chance {row['chance_percent']:.0f}%): "
            + ", ".join(f"{name.replace('_', '-')} {percent:.0f}%" for name, percent in row["percent"].items())
            for subtask, row in figures.items()]
