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


def run_shards(folder: RunFolder, count: int, *, total: int, already_done: int, progress: bool) -> list[int]:
    """Run `count` shard processes to completion, showing their joint progress; return the exit
    codes of those that failed."""
    processes = []
    for index in range(count):
        command = [sys.executable, "-m", "harness.cli", "eval", "--resume", str(folder.path), "--shard", f"{index}/{count}", "--quiet"]
        environment = os.environ | {"LOCAL_RANK": str(index)}
        processes.append(subprocess.Popen(command, env=environment))
    tracker = Progress(total, already_done=already_done) if progress else None
    watcher = _ShardWatcher(folder.path / SHARDS)
    try:
        while any(p.poll() is None for p in processes):
            time.sleep(0.5)
            watcher.report(tracker)
        watcher.report(tracker)
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    finally:
        if tracker:
            tracker.finish()
    return [p.returncode for p in processes if p.returncode != 0]


class _ShardWatcher:
    """Feeds the progress line from the shard files, reading only what each file gained since the
    last look (a whole-file reread every half second would grow with the run)."""

    def __init__(self, shard_dir: Path) -> None:
        self.shard_dir = shard_dir
        self.offsets: dict[Path, int] = {}

    def report(self, tracker: Progress | None) -> None:
        if tracker is None or not self.shard_dir.is_dir():
            return
        for path in sorted(self.shard_dir.glob("*.jsonl")):
            with path.open("rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                added = handle.read()
            complete = added[: added.rfind(b"\n") + 1]  # a line still being written waits for the next look
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            for line in complete.splitlines():
                status = json.loads(line).get("parse_status")
                tracker.update(error=status == "error", answered=status == "ok")
