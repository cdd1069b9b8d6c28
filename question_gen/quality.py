"""How trustworthy a generated question set is: the checks a reviewer would run before using it.

- questions per subtask and category;
- right-answer position balance: the share of right answers at each letter against uniform, per
  option count (a model that always says "A" must not score above chance);
- option length bias: how often the longest option is the right one against 1/n, over questions
  whose options vary (a fixed Yes/No pair measures the label balance instead), and per subtask the
  right option's mean length against its distractors' (figures only: the warning is the blind
  shortcuts', per subtask);
- blind shortcuts per subtask (question_gen/shortcuts.py): shortest, longest, most-agreeing option,
  the key's wording prior, a fixed letter, and a model's text-only answer where one was asked;
- blind-answerability (LLM-verified sets): questions answered right without the image;
- discards by reason.
A strong bias or a blind shortcut past its limit gets a warning in the report and on the console.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from question_gen.shortcuts import describe_shortcuts, shortcut_figures, shortcut_warnings

POSITION_WARNING_POINTS = 10.0  # percentage points away from uniform
MIN_QUESTIONS_FOR_WARNING = 20


def _questions(mmad: dict) -> list[tuple[str, dict]]:
    return [(key.split("/")[1] if key.count("/") >= 1 else "", q) for key, record in mmad.items() for q in record["conversation"]]


def position_balance(mmad: dict) -> dict[int, dict]:
    """Per option count: right answers per letter, each letter's share and the largest deviation
    from uniform in percentage points."""
    by_count: dict[int, Counter] = defaultdict(Counter)
    for _, question in _questions(mmad):
        by_count[len(question["Options"])][question["Answer"]] += 1
    result = {}
    for count, answers in sorted(by_count.items()):
        total = sum(answers.values())
        letters = [chr(ord("A") + i) for i in range(count)]
        shares = {letter: 100.0 * answers[letter] / total for letter in letters}
        result[count] = {"questions": total, "share_percent": shares, "max_deviation_points": max(abs(s - 100.0 / count) for s in shares.values())}
    return result


def _fixed_option_subtasks(mmad: dict) -> set[str]:
    """Subtasks whose questions all offer the same options (MMAD's Yes/No detection question): there,
    "the longest option" is one fixed answer, so its hit rate is the label balance, reported apart."""
    option_sets: dict[str, set] = defaultdict(set)
    for _, question in _questions(mmad):
        option_sets[question.get("type", "")].add(frozenset(question["Options"].values()))
    return {subtask for subtask, sets in option_sets.items() if len(sets) == 1}


def length_bias(mmad: dict) -> dict:
    """How often the (strictly) longest option is the right one, against the 1/n a blind picker gets,
    over questions whose options vary; and per subtask, the mean length of the right option against
    its distractors'."""
    fixed = _fixed_option_subtasks(mmad)
    hits = eligible = 0
    expected = 0.0
    lengths: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    longest: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # per subtask: questions with one longest option, and how often it is right
    for _, question in _questions(mmad):
        options, subtask = question["Options"], question.get("type", "")
        right = question["Answer"]
        if len(options) >= 2:
            row = lengths[subtask]
            row[0] += 1
            row[1] += len(options[right])
            row[2] += sum(len(t) for letter, t in options.items() if letter != right) / (len(options) - 1)
        if subtask in fixed:
            continue
        ranked = sorted((len(text), letter) for letter, text in options.items())
        if len(ranked) < 2 or ranked[-1][0] == ranked[-2][0]:
            continue  # no single longest option
        eligible += 1
        hits += ranked[-1][1] == right
        longest[subtask][0] += 1
        longest[subtask][1] += ranked[-1][1] == right
        expected += 1.0 / len(options)
    per_subtask = {k: {"questions": int(n), "right_mean_chars": r / n, "distractor_mean_chars": d / n} for k, (n, r, d) in sorted(lengths.items())}
    for subtask, (n, right_longest) in longest.items():
        per_subtask[subtask]["longest_is_right_percent"] = 100.0 * right_longest / n
    if not eligible:
        return {"questions": 0, "fixed_option_subtasks": sorted(fixed), "mean_length_by_subtask": per_subtask}
    return {"questions": eligible, "longest_is_right_percent": 100.0 * hits / eligible, "expected_percent": 100.0 * expected / eligible,
            "fixed_option_subtasks": sorted(fixed), "mean_length_by_subtask": per_subtask}


def quality_report(mmad: dict, skipped: dict[str, int], blind: dict | None = None) -> dict:
    per_subtask = Counter(q["type"] for _, q in _questions(mmad))
    per_category = Counter(category for category, _ in _questions(mmad))
    positions = position_balance(mmad)
    lengths = length_bias(mmad)
    warnings = []
    for count, row in positions.items():
        if row["questions"] >= MIN_QUESTIONS_FOR_WARNING and row["max_deviation_points"] > POSITION_WARNING_POINTS:
            warnings.append(f"position bias: among {row['questions']} questions with {count} options the right answer's letter shares are "
                            + ", ".join(f"{k} {v:.0f}%" for k, v in row["share_percent"].items()) + f" (uniform: {100 / count:.0f}%)")
    shortcuts = shortcut_figures(mmad)
    # the longest option is one of the blind strategies, per subtask; a fixed letter is warned of above
    warnings += shortcut_warnings(shortcuts, skip=("position",))
    report = {
        "questions": sum(per_subtask.values()),
        "questions_by_subtask": dict(per_subtask),
        "questions_by_category": dict(sorted(per_category.items())),
        "answer_position_balance": positions,
        "option_length_bias": lengths,
        "shortcuts": shortcuts,
        "discards_by_reason": dict(skipped),
        "warnings": warnings,
    }
    if blind is not None:
        report["blind_answerability"] = blind
    return report


def describe(quality: dict) -> str:
    """The quality report as console text."""
    lines = [f"questions: {quality['questions']}  by subtask: " + ", ".join(f"{k} {v}" for k, v in quality["questions_by_subtask"].items())]
    for count, row in quality["answer_position_balance"].items():
        lines.append(f"right-answer letters, {count} options ({row['questions']} questions): " + ", ".join(f"{k} {v:.0f}%" for k, v in row["share_percent"].items()))
    lengths = quality["option_length_bias"]
    if lengths.get("questions"):
        lines.append(f"longest option is right: {lengths['longest_is_right_percent']:.0f}% (blind guess {lengths['expected_percent']:.0f}%) over {lengths['questions']} questions"
                     + (f" (fixed options left out: {', '.join(lengths['fixed_option_subtasks'])})" if lengths.get("fixed_option_subtasks") else ""))
    longer = [f"{k} {v['right_mean_chars']:.1f} vs {v['distractor_mean_chars']:.1f}" for k, v in lengths.get("mean_length_by_subtask", {}).items()
              if v["right_mean_chars"] > v["distractor_mean_chars"] and k not in lengths.get("fixed_option_subtasks", [])]
    if longer:
        lines.append("right option longer than its distractors on average (chars): " + ", ".join(longer))
    lines += describe_shortcuts(quality.get("shortcuts", {}))
    if "blind_answerability" in quality:
        blind = quality["blind_answerability"]
        lines.append(f"blind-answerable (right without the image): {blind['blind_answerable']} of {blind['checked']} checked ({blind['rate_percent']:.0f}%), dropped")
    if quality["discards_by_reason"]:
        lines.append("discarded: " + ", ".join(f"{k} {v}" for k, v in quality["discards_by_reason"].items()))
    lines += [f"WARNING: {w}" for w in quality["warnings"]]
    return "\n".join(lines)
