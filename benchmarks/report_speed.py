"""Report build time and size for 20 MMAD-size runs (goal: under 30 s, HTML under 20 MB).

Set-up (not timed): a 40,000-question MMAD-format set made of the synthetic images (hard links
under new names, so every key is a distinct image), two real `random` runs on it with different
seeds, copied to 20 run folders under other model names. Timed: `iadbench report` on all 20, for
HTML (with bootstrap intervals, 190 paired tests, charts and a failure gallery) and Markdown.
Run: python benchmarks/report_speed.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from harness.cli import main as iadbench
from harness.storage.sources import synthetic_question_set

GOAL_SECONDS, GOAL_MEGABYTES = 30.0, 20.0


def mmad_size_set(work: Path, copies: int) -> Path:
    source = synthetic_question_set(0)
    records = json.loads((source / "mmad.json").read_text())
    out = work / "set"
    shutil.copytree(source / "Synthetic", out / "Synthetic", copy_function=os.link)
    big = {}
    for copy in range(copies):
        for key, record in records.items():
            new_key = key.replace(".png", f"_{copy:03d}.png")
            if copy:
                os.link(source / key, out / new_key)
                big[new_key] = record
            else:
                big[key] = record
    (out / "mmad.json").write_text(json.dumps(big))
    return out / "mmad.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--copies", type=int, default=72, help="copies of the 562-question synthetic set (72 → 40,464 questions)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="iadbench-reportbench-") as work_dir:
        work = Path(work_dir)
        data = mmad_size_set(work, args.copies)
        runs = work / "runs"
        for seed in (1, 2):
            iadbench(["eval", "--model", "random", "--data", f"mmad:{data}", "--seed", str(seed), "--runs-dir", str(runs), "--run-id", f"seed{seed}", "--quiet"])
        folders = []
        for index in range(args.runs):
            target = runs / f"model{index:02d}"
            shutil.copytree(runs / f"seed{1 + index % 2}", target)
            spec = json.loads((target / "spec.json").read_text())
            spec.update(run_id=target.name, model=f"vendor/model-{index:02d}")
            (target / "spec.json").write_text(json.dumps(spec))
            folders.append(str(target))
        samples = sum(1 for _ in open(Path(folders[0]) / "samples.jsonl"))
        started = time.perf_counter()
        iadbench(["report", *folders, "--out", str(work / "report.html")])
        html_seconds = time.perf_counter() - started
        megabytes = (work / "report.html").stat().st_size / 1e6
        started = time.perf_counter()
        iadbench(["report", *folders, "--out", str(work / "report.md")])
        md_seconds = time.perf_counter() - started
    print(f"runs: {args.runs} x {samples:,} samples")
    print(f"HTML report: {html_seconds:.1f} s, {megabytes:.1f} MB")
    print(f"ratio goal ({GOAL_SECONDS:.0f} s) / build time: {GOAL_SECONDS / html_seconds:.1f}x; size {megabytes / GOAL_MEGABYTES:.2f} of the {GOAL_MEGABYTES:.0f} MB limit")
    print(f"Markdown report: {md_seconds:.1f} s")


if __name__ == "__main__":
    main()
