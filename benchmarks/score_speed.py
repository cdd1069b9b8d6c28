"""Scoring speed at MMAD scale (goal: a 40,000-question answers file scored in under 2 s).

Writes a synthetic MMAD answers file (40,000 records over 4 datasets, some unparsable answers),
then times `iadbench score FILE --mmad-compat` in-process (JSON load + official-rules scoring +
CSV) and, as the baseline in the same run, the naive reference rendering of the protocol in
tests/mmad_reference.py (remove-while-iterating, as the official script does).
Run: python benchmarks/score_speed.py [--questions 40000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.metrics.accuracy import mmad_compat_table  # noqa: E402
from tests.mmad_reference import reference_mmad_scores  # noqa: E402

GOAL_SECONDS = 2.0
TYPES = ["Anomaly Detection", "Defect Classification", "Defect Localization", "Defect Description", "Defect Analysis", "Object Classification", "Object Structure", "Object Details"]


def make_answers(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    answers = []
    for i in range(n):
        dataset = ("DS-MVTec", "MVTec-LOCO", "VisA", "GoodsAD")[i % 4]
        answers.append({
            "image": f"{dataset}/cat{i % 9}/test/{'good' if i % 3 == 0 else 'bad'}/{i:05d}.png",
            "question": {"type": "text", "text": f"Question 1: q{i} \nA. Yes.\nB. No.\n"},
            "question_type": TYPES[i % len(TYPES)],
            "correct_answer": rng.choice("ABCD"),
            "gpt_answer": rng.choice("ABCD") if rng.random() > 0.01 else "I cannot tell",
        })
    return answers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=40_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "answers.json"
        path.write_text(json.dumps(make_answers(args.questions), indent=4))
        megabytes = path.stat().st_size / 1e6
        started = time.perf_counter()
        table = mmad_compat_table(json.loads(path.read_text()))
        table.write_csv(Path(work) / "answers_accuracy.csv")
        ours = time.perf_counter() - started
        started = time.perf_counter()
        reference = reference_mmad_scores(json.loads(path.read_text()))
        naive = time.perf_counter() - started
    assert all(table.values[d]["Average"] == reference[d]["Average"] for d in reference), "scorers disagree"
    print(f"answers file: {args.questions} questions ({megabytes:.1f} MB json)")
    print(f"iadbench score --mmad-compat: {ours:.3f} s (load + score + CSV)")
    print(f"naive reference scorer: {naive:.3f} s")
    print(f"ratio naive / iadbench: {naive / ours:.2f}x")
    print(f"ratio goal ({GOAL_SECONDS:.0f} s) / iadbench: {GOAL_SECONDS / ours:.1f}x")


if __name__ == "__main__":
    main()
