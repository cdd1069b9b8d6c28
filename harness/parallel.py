"""Data-parallel runs: `iadbench eval --num-processes N` shards the questions over N processes.

Each process resumes the same run folder as shard i of N (`--shard i/N`), answers one contiguous
block of questions and writes its own shard file; no two processes write one file. Process i sees
GPU i (LOCAL_RANK), so N GPUs hold N copies of the model. When all have finished, the launcher
merges the shard files into samples.jsonl (exactly once per question, even after a kill) and
summarises as a single-process run would. A process that fails loses only its unfinished questions:
resume the run to ask them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.progress import Progress
from harness.runlog import SHARDS, RunFolder


def parse_shard(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"--shard expects INDEX/COUNT with 0 <= INDEX < COUNT, got {value!r}")
    return shard


def _shard_lines(folder: Path) -> list[str]:
    lines = []
    for path in sorted((folder / SHARDS).glob("*.jsonl")):
        lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    return lines


def run_shards(folder: RunFolder, count: int, *, total: int, already_done: int, progress: bool) -> list[int]:
    """Run `count` shard processes to completion, showing their joint progress; return the exit
    codes of those that failed."""
    processes = []
    for index in range(count):
        command = [sys.executable, "-m", "harness.cli", "eval", "--resume", str(folder.path), "--shard", f"{index}/{count}", "--quiet"]
        environment = os.environ | {"LOCAL_RANK": str(index), "IADBENCH_SHARD": f"{index}/{count}"}
        processes.append(subprocess.Popen(command, env=environment))
    tracker = Progress(total, already_done=already_done) if progress else None
    counted = 0
    try:
        while any(p.poll() is None for p in processes):
            time.sleep(0.5)
            counted = _track(folder.path, tracker, counted)
        _track(folder.path, tracker, counted)
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    finally:
        if tracker:
            tracker.finish()
    return [p.returncode for p in processes if p.returncode != 0]


def _track(path: Path, tracker: Progress | None, counted: int) -> int:
    if tracker is None:
        return counted
    lines = [line for line in _shard_lines(path) if line.endswith("}")]
    for line in lines[counted:]:
        status = json.loads(line).get("parse_status")
        tracker.update(error=status == "error", answered=status == "ok")
    return max(counted, len(lines))
