"""`iadbench eval --num-processes N`: the one-command way to a data-parallel run on one machine.

It starts N copies of `iadbench eval --resume RUN` with the environment torchrun would give them
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so they take exactly the path of a
torchrun or accelerate launch run (harness/run/distributed.py): rank 0 folds in leftovers, each rank
answers its block into its own shard file on GPU LOCAL_RANK, rank 0 merges and summarises. This
process only shows their joint progress and returns rank 0's exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.run.distributed import free_port
from harness.run.progress import Progress
from harness.run.runlog import SHARDS, RunFolder


def launch_ranks(folder: RunFolder, count: int, *, total: int, base_url: str | None, progress: bool) -> int:
    """Run `count` ranks over the run folder to completion; rank 0's exit code (or the first
    failure's, with what to do)."""
    command = [sys.executable, "-m", "harness.cli", "eval", "--resume", str(folder.path)] + (["--base-url", base_url] if base_url else [])
    port = free_port()
    processes = []
    for rank in range(count):
        environment = os.environ | {
            "RANK": str(rank), "WORLD_SIZE": str(count), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(count),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        }
        processes.append(subprocess.Popen([*command, "--quiet"], env=environment))  # this process shows their joint progress
    from harness.tasks.registry import task_kind

    done = len(folder.read_samples(repair=False, sample_type=task_kind(folder.spec().task).sample_type))
    tracker = Progress(total, already_done=done) if progress else None
    watcher = _ShardWatcher(folder.path / SHARDS)
    try:
        while any(p.poll() is None for p in processes):
            time.sleep(0.5)
            watcher.report(tracker)
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    finally:
        if tracker:
            tracker.finish()
    codes = [p.returncode for p in processes]
    failed = [code for code in codes[1:] if code != 0]
    if failed and codes[0] == 0:
        print(f"iadbench: error: {len(failed)} of {count} processes failed (exit codes {failed}); continue with: iadbench eval --resume {folder.path} --num-processes {count}", file=sys.stderr)
        return failed[0]
    return codes[0]


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
