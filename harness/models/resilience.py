"""Surviving what APIs throw: retry timing, server hints, and an adaptive concurrency limit.

The limiter is additive-increase/multiplicative-decrease (as TCP): each success raises the allowed
number of requests in flight by 1/limit (about +1 per round trip of the whole window), and a
rate-limit signal cuts it by 30% and pauses everyone until the server's retry-after. A burst of
429s from one window counts once: only a request sent after the last cut can cut again, which
is what shows the smaller window is still too large. Throughput then settles just under the
server's limit instead of oscillating between bursts of 429s and idle waits.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Mapping

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_sample_seconds: float = 600.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential back-off with 'equal jitter': half fixed, half random, so clients spread out."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """OpenAI's reset headers look like '1s', '250ms', '6m0s'."""
    parts = _DURATION.findall(text.strip())
    if not parts:
        try:
            return float(text)
        except ValueError:
            return None
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in parts)


# The whole run pauses for a server's retry-after up to this long: "retry after 10^9 s" from a
# broken or hostile server must not pause every request of the run for ever. A question whose own
# deadline comes sooner fails at once instead (RetryPolicy's max_sample_seconds: --question-timeout).
MAX_SERVER_WAIT_S = 300.0


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait as it asked (None when it gives none or nonsense). Callers
    compare it with their deadline before waiting; the shared pause caps it (AdaptiveLimiter)."""
    wait = _retry_after(headers)
    if wait is None or not math.isfinite(wait):
        return None
    return max(0.0, wait)


class PastDeadline(Exception):
    """A wait the server asked for (or the run's shared pause) would end after the question's
    deadline: the question fails now, saying so, instead of sleeping past it."""

    def __init__(self, asked_s: float | None) -> None:
        super().__init__("no free request slot before the deadline" if asked_s is None else f"the server asked to wait {asked_s:,.0f} s")
        self.asked_s = asked_s


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """retry-after-ms, retry-after (seconds or HTTP date), as written."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def quota_exhausted_for(headers: Mapping[str, str] | None) -> float | None:
    """If x-ratelimit-remaining-requests says 0, how long until its reset."""
    if not headers or headers.get("x-ratelimit-remaining-requests") != "0":
        return None
    reset = headers.get("x-ratelimit-reset-requests")
    wait = parse_duration(reset) if reset else None
    return max(0.0, wait) if wait is not None and math.isfinite(wait) else None


class AdaptiveLimiter:
    def __init__(self, limit: int, *, decrease: float = 0.7) -> None:
        self.ceiling = max(1, limit)
        self.limit = float(self.ceiling)
        self.in_flight = 0
        self.rate_limited = 0
        self._decrease = decrease
        self._last_cut = float("-inf")
        self._resume_at = 0.0
        self._asked_s = 0.0  # the wait the server asked for, before MAX_SERVER_WAIT_S capped the pause
        self._changed = asyncio.Condition()

    async def acquire(self, deadline: float = math.inf) -> float:
        """Wait for a slot; returns when it was granted (pass it to on_rate_limited). Raises
        PastDeadline, without waiting, when the shared pause ends after `deadline`."""
        async with self._changed:
            while True:
                now = time.monotonic()
                pause = self._resume_at - now
                if pause > 0 and self._resume_at > deadline:
                    raise PastDeadline(self._asked_s)
                if pause > 0:
                    await self._wait_changed(pause)
                    continue
                if self.in_flight < int(self.limit):
                    self.in_flight += 1
                    return time.monotonic()
                if now >= deadline:
                    raise PastDeadline(None)
                await self._wait_changed(deadline - now if math.isfinite(deadline) else None)  # a slot frees up, or the deadline comes

    async def _wait_changed(self, seconds: float | None) -> None:
        """Wait on the condition (its lock held) for at most `seconds`. asyncio.timeout rather than
        wait_for: wait_for runs the wait as a task of its own, and on Python 3.11 a cancellation that
        meets its timeout can be swallowed, so a stopped run could wait forever for this task."""
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            pass

    async def release(self) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def on_success(self) -> None:
        self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)

    def on_rate_limited(self, wait_s: float | None, sent_at: float) -> None:
        self.rate_limited += 1
        now = time.monotonic()
        if sent_at > self._last_cut:
            self.limit = max(1.0, self.limit * self._decrease)
            self._last_cut = now
        if wait_s and now + min(wait_s, MAX_SERVER_WAIT_S) > self._resume_at:
            self._resume_at = now + min(wait_s, MAX_SERVER_WAIT_S)
            self._asked_s = wait_s
