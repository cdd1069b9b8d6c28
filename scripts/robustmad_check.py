"""Check iadbench's RobustMAD parser and scorer against the published results of a RobustMAD
checkout (git clone https://github.com/en-research/RobustMAD): every published reply re-parsed
by the family's parser must give the published answer, and the accuracy CSV written from the
published answers must equal the published CSV byte for byte.

    python scripts/robustmad_check.py /path/to/RobustMAD

Prints one line per answer file and exits 1 on any difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from harness.tasks.robustmad.data import CATEGORIES
from harness.tasks.robustmad.kind import family_for
from harness.tasks.robustmad.scoring import PARSERS, accuracy_csv

# The model each results folder holds (its script's MODEL_NAME), for the family's parser.
MODELS = {"gemini3flash": "gemini-3-flash-preview", "gpt_5_nano": "gpt-5-nano"}


def check(answers: Path) -> tuple[int, int, bool | None]:
    """(replies, replies parsed as published, CSV byte-identical or None when none was published)."""
    entries = json.loads(answers.read_text(encoding="utf-8"))
    folder = answers.parent.name.removesuffix("_s0")
    parse = PARSERS[family_for(MODELS.get(folder, folder.replace("_", "-"))).parser]
    same = sum(parse(entry["raw_response"]) == entry["mslm_answer"] for entry in entries)
    samples = [SimpleNamespace(robustness_category=CATEGORIES[e["robustness_category"]], difficulty=e["difficulty"], question=e["question"],
                               pair="-".join(e["image_path"].split("/")[i] for i in (1, 3)), correct=e["mslm_answer"] == e["answer"]) for e in entries]
    published = answers.parent / answers.name.replace("MCQ_", "accuracy_").replace(".json", ".csv")
    identical = published.read_text(encoding="utf-8") == accuracy_csv(samples) if published.is_file() else None
    return len(entries), same, identical


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "results").is_dir():
        print("usage: python scripts/robustmad_check.py ROBUSTMAD_CHECKOUT (a folder holding results/)", file=sys.stderr)
        return 2
    total = same_total = files = identical_total = 0
    for answers in sorted(Path(argv[0]).glob("results/*/MCQ_*.json")):
        replies, same, identical = check(answers)
        total, same_total = total + replies, same_total + same
        files += identical is not None
        identical_total += bool(identical)
        print(f"{answers.parent.name}/{answers.name}: {same:,}/{replies:,} replies parsed as published; CSV {'identical' if identical else 'DIFFERS' if identical is False else 'not published'}")
    print(f"all: {same_total:,}/{total:,} replies parsed as published; {identical_total}/{files} accuracy CSVs byte-identical")
    return 0 if same_total == total and identical_total == files else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
