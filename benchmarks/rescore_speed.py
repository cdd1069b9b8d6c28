"""Re-scoring a run at MMAD scale, and the start-up of a small eval (goals: `iadbench score RUN` on
40,000 answers under 2 s; a 20-question eval under 0.5 s of CPU).

Builds an MMAD-sized question file from the synthetic set (8,100 images linked under their own
names, 5 questions each: about 34,000 questions and 70,000 image, mask and template paths), answers it
with the random baseline, then times in the same run, each in a fresh process:
- `iadbench score RUN` with the question file read from the cache of checked question files
  (harness/data/question_cache.py), against the baseline that parses the file and resolves and checks
  every path again (IADBENCH_NO_QUESTION_CACHE=1);
- `iadbench eval --model random --limit 20`, CPU seconds, both ways.
Run: python benchmarks/rescore_speed.py [--images 8100]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCORE_GOAL_S, EVAL_GOAL_CPU_S = 2.0, 0.5


def build(source: Path, out: Path, images: int) -> int:
    """`images` records cycling over the synthetic set's, each image (and mask) hard-linked under its own name."""
    mmad = json.loads((source / "mmad.json").read_text())
    keys = list(mmad)
    big = {}
    for i in range(images):
        key = keys[i % len(keys)]
        record = json.loads(json.dumps(mmad[key]))
        head, name = key.rsplit("/", 1)
        new_key = f"{head}/{i:05d}_{name}"
        _link(source / key, out / new_key)
        if record["mask_path"]:
            mask_head, mask_name = record["mask_path"].rsplit("/", 1)
            record["mask_path"] = f"{mask_head}/{i:05d}_{mask_name}"
            dataset, category = key.split("/")[:2]
            _link(source / dataset / category / mask_head / mask_name, out / dataset / category / record["mask_path"])
        for template in record["random_templates"] + record["similar_templates"]:
            _link(source / template, out / template)
        record["conversation"] = record["conversation"][:5]
        big[new_key] = record
    (out / "mmad.json").write_text(json.dumps(big))
    return sum(len(r["conversation"]) for r in big.values())


def _link(source: Path, target: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one iadbench command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", *command], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=8100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work_path = Path(work)
        env = os.environ | {"IADBENCH_CACHE": str(work_path / "cache")}
        cached, uncached = env, env | {"IADBENCH_NO_QUESTION_CACHE": "1"}
        subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "random", "--limit", "1", "--quiet", "--runs-dir", str(work_path / "warm")], env=env, check=True, capture_output=True)
        source = next((work_path / "cache").glob("synthetic-v*"))
        questions = build(source, work_path / "set", args.images)
        run = ["eval", "--model", "random", "--data", f"mmad:{work_path / 'set/mmad.json'}", "--run-id", "big", "--runs-dir", str(work_path / "runs"), "--quiet", "--no-cache"]
        eval_wall, _ = timed(run, cached)
        score = ["score", str(work_path / "runs/big")]
        fast = min(timed(score, cached)[0] for _ in range(3))
        slow = min(timed(score, uncached)[0] for _ in range(3))
        small = ["eval", "--model", "random", "--limit", "20", "--quiet", "--runs-dir", str(work_path / "small")]
        timed(small, cached)
        small_fast = min(timed(small, cached)[1] for _ in range(3))
        small_slow = min(timed(small, uncached)[1] for _ in range(3))
    print(f"question file: {questions:,} questions over {args.images:,} images; eval --model random on it: {eval_wall:.1f} s")
    print(f"iadbench score RUN: {fast:.2f} s (checked question file from the cache) against {slow:.2f} s parsing and checking every path: {slow / fast:.2f}x")
    print(f"  goal {SCORE_GOAL_S:.0f} s / score: {SCORE_GOAL_S / fast:.2f}x")
    print(f"iadbench eval --limit 20: {small_fast:.2f} s CPU against {small_slow:.2f} s: {small_slow / small_fast:.2f}x; goal {EVAL_GOAL_CPU_S} s CPU / eval: {EVAL_GOAL_CPU_S / small_fast:.2f}x")


if __name__ == "__main__":
    main()
