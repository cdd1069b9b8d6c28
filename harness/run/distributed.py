"""Data parallel the ecosystem's way: `torchrun` and `accelerate launch` start N copies of
`iadbench eval`, on one machine or several, and tell each its place through the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). `iadbench eval --num-processes N` starts
the same N copies itself. Every copy joins one process group (torch.distributed, the gloo backend:
CPU-only, no GPU needed for coordination) and then:

1. rank 0 creates the run folder (or opens it on --resume), folds in answers that a killed run left
   in shard files, and tells the others where the folder is;
2. every rank answers its own contiguous block of questions into its own shard file
   (shards/<rank>-of-<world>.jsonl), on GPU LOCAL_RANK for local models;
3. after all have finished, rank 0 merges the shard files into samples.jsonl (a sample already
   merged is never added twice, so a kill at any point and a resume lose and repeat nothing) and
   writes the summary, exactly as a single-process run would.

Several machines need the run folder on a filesystem they all see (--runs-dir).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from harness.errors import ConfigError

# A run can take days; the group must not give up on a rank that is still answering.
GROUP_TIMEOUT = timedelta(days=7)


def launched_rank() -> tuple[int, int] | None:
    """(rank, world size) when started as one of several processes, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))), world


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ProcessGroup:
    """The launched processes, joined over torch.distributed's gloo backend."""

    def __init__(self) -> None:
        try:
            import torch.distributed as dist
        except ImportError:
            raise ConfigError("launched as one of several processes (WORLD_SIZE is set), which needs torch for the process group: pip install torch") from None
        if not dist.is_available():
            raise ConfigError("this torch build has no torch.distributed; data-parallel runs need it")
        self._dist = dist
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT", "RANK") if name not in os.environ]
        if missing and not dist.is_initialized():
            raise ConfigError(f"WORLD_SIZE is {os.environ.get('WORLD_SIZE')} but {', '.join(missing)} not set: launch with torchrun, accelerate launch or --num-processes N, or unset WORLD_SIZE")
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=GROUP_TIMEOUT)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def broadcast(self, value: object) -> object:
        """Rank 0's `value`, on every rank."""
        box = [value]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        self._dist.barrier()

    def close(self) -> None:
        if self._dist.is_initialized():
            self._dist.destroy_process_group()
