"""How often the audit agrees with a person: `iadbench audit SET --hand FILE`.

A hand-audit file says, for the questions a person judged beside their images, whether each is
flawed or ok and why. It is JSON (the review page exports it, `iadbench review`):

    {"format": "iadbench-hand-audit/1",
     "set": "path/to/mmad.json",                       (optional, for the reader)
     "questions": {
        "DS-MVTec/bottle/image/broken_large/016.png#2": {"mark": "flawed", "reason": "the break is on the rim, not the center"},
        "DS-MVTec/bottle/image/good/001.png#0": {"mark": "ok"}}}

Question ids are the audit's (the record's key, '#', the question's index). For each check, and for
the audit as a whole (any check flagging), among the hand-judged questions: true flags (the check
flagged a question the person found flawed), false flags (flagged one found ok) and misses (a flawed
question the check did not flag), with the share of flaws found and of ok questions flagged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DataError
from question_gen.audit.checks import FLAGGED

FORMAT = "iadbench-hand-audit/1"
MARKS = ("flawed", "ok")
WHOLE = "audit (any check)"


@dataclass(frozen=True)
class Agreement:
    check: str
    true_flags: int
    false_flags: int
    misses: int
    flawed: int  # hand-judged flawed questions (of the subtasks the check reads)
    fine: int  # hand-judged ok questions (likewise)

    def row(self) -> dict:
        return {"check": self.check, "true_flags": self.true_flags, "false_flags": self.false_flags, "misses": self.misses,
                "found": round(self.true_flags / self.flawed, 3) if self.flawed else None,
                "false_flag_rate": round(self.false_flags / self.fine, 3) if self.fine else None}


def read_hand_audit(path: Path) -> dict[str, dict]:
    """{question id: {"mark": "flawed"|"ok", "reason": str}}; a malformed file is refused naming what to fix."""
    from harness.storage.files import read_json_file

    data = read_json_file(path, what="hand-audit file")
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, dict):
        raise DataError(f"{path}: not a hand-audit file: expected {{\"format\": \"{FORMAT}\", \"questions\": {{id: {{\"mark\": \"flawed\" or \"ok\", \"reason\": ...}}}}}}")
    marks = {}
    for qid, entry in questions.items():
        mark = entry.get("mark") if isinstance(entry, dict) else None
        if mark not in MARKS:
            raise DataError(f"{path}: question {qid!r}: mark {mark!r} is not one of {', '.join(MARKS)}")
        marks[str(qid)] = {"mark": mark, "reason": str(entry.get("reason", ""))}
    return marks


def agreement(rows: list[dict], hand: dict[str, dict]) -> list[Agreement]:
    """Per check (and for the whole audit), its flags against the hand audit's marks. A check is
    counted on the hand-judged questions of the subtasks it reads (those it gave any finding in):
    a location check does not "miss" a flawed description."""
    judged = [row for row in rows if row["id"] in hand]
    subtasks: dict[str, set[str]] = {}
    for row in rows:
        for finding in row["findings"]:
            subtasks.setdefault(finding["check"], set()).add(row["subtask"])
    tables = [(name, [row for row in judged if row["subtask"] in read]) for name, read in sorted(subtasks.items())]
    table = [_agreement(name, population, lambda row, name=name: any(f["check"] == name and f["verdict"] in FLAGGED for f in row["findings"]), hand)
             for name, population in tables if population]
    return [*table, _agreement(WHOLE, judged, lambda row: row["verdict"] in FLAGGED, hand)]


def _agreement(name: str, population: list[dict], flagged, hand: dict[str, dict]) -> Agreement:
    counts: Counter = Counter()
    for row in population:
        is_flawed = hand[row["id"]]["mark"] == "flawed"
        counts["flawed" if is_flawed else "fine"] += 1
        _count(counts, flagged(row), is_flawed)
    return Agreement(name, counts["true"], counts["false"], counts["miss"], counts["flawed"], counts["fine"])


def _count(counter: Counter, flagged: bool, flawed: bool) -> None:
    if flagged:
        counter["true" if flawed else "false"] += 1
    elif flawed:
        counter["miss"] += 1


def agreement_lines(table: list[Agreement], unknown: int) -> list[str]:
    """The table as `audit` prints it."""
    if not table:
        return []
    whole = table[-1]
    lines = [f"agreement with the hand audit ({whole.flawed} flawed, {whole.fine} ok questions judged by hand"
             + (f"; {unknown} ids of the file are not in the set" if unknown else "") + "; each check on the subtasks it reads):",
             f"  {'check':<26} {'true flags':>10} {'false flags':>11} {'misses':>7} {'found':>6} {'false-flag rate':>16}"]
    for entry in table:
        row = entry.row()
        found = f"{row['found']:.0%}" if row["found"] is not None else "-"
        rate = f"{row['false_flag_rate']:.1%}" if row["false_flag_rate"] is not None else "-"
        lines.append(f"  {entry.check:<26} {entry.true_flags:>10} {entry.false_flags:>11} {entry.misses:>7} {found:>6} {rate:>16}")
    return lines
