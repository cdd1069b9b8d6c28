"""`--limit N`: which N questions (or images) a smaller run asks.

The first N of a file are one or two categories of one dataset (MMAD's file is sorted by path), so a
small run would estimate nothing about the whole. A stratified subset takes every stratum (dataset,
category, subtask) in proportion to its size, each stratum's members in an order drawn from the
run's seed (a hash of seed and id, so it is the same in every process and on every resume), and
keeps the chosen items in the file's order. Old run folders recorded "first": they resume as they
began.

Two stratified draws: "stratified" (runs of 2026-12-05 and 06) stood each stratum's r-th member at
(r + 0.5) / size, so a limit smaller than the strata's number took the largest strata only: 20 of
the synthetic set's 501 questions were all Detection and Object questions, never a defect question.
"stratified-v2" (new runs) starts each stratum at its own offset drawn from the seed, so each stratum
gets the floor or the ceiling of its share, the ceiling as often as its fraction says: a small
limit still reaches every subtask in proportion. Each run resumes with the draw it recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

SAMPLINGS = ("first", "stratified", "stratified-v2")
NEW_SAMPLING = "stratified-v2"  # what a new run records


def _draw(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{key}".encode("utf-8", "surrogatepass")).digest()


def take_limit(items: Sequence[T], limit: int | None, *, sampling: str, seed: int, stratum: Callable[[T], Hashable], key: Callable[[T], str]) -> list[T]:
    """`limit` of `items`: the first ones, or a stratified sample (see the module's note)."""
    if limit is None or limit >= len(items):
        return list(items)
    if sampling == "first":
        return list(items[:limit])
    strata: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        strata.setdefault(stratum(item), []).append(index)
    ranked: list[tuple[float, str, int]] = []
    for name, members in strata.items():
        members.sort(key=lambda index: _draw(seed, key(items[index])))
        size = len(members)
        # the r-th of a stratum stands at (r + start) / size: taking the lowest N across strata takes
        # each stratum in proportion; v2's start is the stratum's own, drawn from the seed
        start = 0.5 if sampling == "stratified" else int.from_bytes(_draw(seed, f"stratum\0{name!r}")[:8], "big") / 2**64
        ranked += [((rank + start) / size, repr(name), index) for rank, index in enumerate(members)]
    chosen = sorted(index for _, _, index in sorted(ranked)[:limit])
    return [items[index] for index in chosen]


def subset_note(count: int, available: int, sampling: str, seed: int, what: str = "questions") -> str:
    """How a run's subset was drawn, in words (reports and tables say it beside the figures)."""
    if count >= available:
        return f"all {available}" + (f" {what}" if what else "")
    if sampling == "first":
        return f"first {count} of {available}" + (f" {what}" if what else "")
    return f"{count} of {available}" + (f" {what}" if what else "") + f", stratified (seed {seed})"
