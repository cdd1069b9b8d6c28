"""The asyncio runner: ask every unanswered question, write each sample as it arrives.

The runner only awaits `model.generate`; backends batch, retry or parallelise inside. Concurrency
changes the order lines land in samples.jsonl, never their content: each sample depends only on its
own question, the spec and the seed, and every table sorts by the question's ordinal.
"""

from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from harness.storage.cache import ResponseCache
from harness.errors import FatalBackendError, IadbenchError, RunFolderError
from harness.models.admission import admit
from harness.models.base import MAX_REPLY_CHARS, GenerateRequest, GenerateResponse, Model, cut_reply
from harness.models.pricing import cost_usd
from harness.run.progress import Progress
from harness.run.runlog import RunFolder, shard_block
from harness.tasks.mcq.task import RequestDigester


class Task(Protocol):
    """What the runner needs of a task (MCQ, GPT-4V-AD): items in a fixed order, and for each a
    request and a scored sample. A sample has question_id, ordinal, parse_status, usage, cached."""

    sample_type: type[BaseModel]

    @property
    def ids(self) -> list[str]: ...

    def build_request(self, ordinal: int) -> GenerateRequest: ...

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> BaseModel: ...


class EarlyStop:
    """Stops a run whose first answers all failed the same way (no such model, no server listening,
    a broken setup): asking the rest would fail the same, slowly. "First" means at least 8, and at
    least twice the requests in flight: failures often come back faster than answers, so the first
    few completions of a healthy run with some failures can all be failures. Everything written
    stays; the run resumes once the cause is fixed."""

    AFTER = 8

    def __init__(self, concurrency: int = 1) -> None:
        self.after = max(self.AFTER, 2 * concurrency)
        self.kinds: list[str] = []
        self.example = ""
        self.succeeded = False

    def see(self, sample) -> None:
        if self.succeeded or sample.parse_status != "error":
            self.succeeded = True
            return
        self.kinds.append(_error_kind(sample.error or ""))
        self.example = self.example or (sample.error or "")
        if len(self.kinds) >= self.after and len(set(self.kinds)) == 1:
            raise FatalBackendError(f"the first {len(self.kinds)} requests all failed ({self.example[:240]}); fix the cause, then continue")


# OS errors that say the machine, not one question's input, is at fault.
_WHOLE_RUN_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE, errno.ENOMEM})


def _error_kind(error: str) -> str:
    return error.split(":", 1)[0].split(" ")[0] or "Error"


async def _ask_shared(model: Model, request: GenerateRequest, digest: str, calls: dict[str, asyncio.Future], cache: ResponseCache | None) -> GenerateResponse:
    """One call for every question that shares it (an official two-call protocol): the first
    asker makes it, the others wait for its response and count it as not paid again."""
    call = calls.get(digest)
    if call is not None:
        response = await asyncio.shield(call)
        return response.model_copy(update={"cached": True})
    call = calls[digest] = asyncio.ensure_future(_ask(model, request))
    response = await asyncio.shield(call)
    if cache:
        cache.put(digest, response)
    return response


@dataclass
class RunOutcome:
    samples: list  # the task's sample records, in ordinal order
    stopped_reason: str | None = None
    notes: list[str] = field(default_factory=list)


class CostBudget:
    """Stops handing out questions once paid tokens reach --max-cost (answers in flight still land)."""

    def __init__(self, model: str, limit_usd: float | None, finished: list) -> None:
        self.model, self.limit = model, limit_usd
        self.spent = sum(self.cost(s.usage, s.cached) for s in finished)

    def cost(self, usage, cached: bool) -> float:
        return 0.0 if cached else (cost_usd(self.model, usage) or 0.0)

    def add(self, sample) -> None:
        self.spent += self.cost(sample.usage, sample.cached)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.spent >= self.limit


async def _ask(model: Model, request) -> GenerateResponse:
    """The model's response to one request, as the run may keep it: every response enters the run
    here (or from the cache, admitted again), so secrets, surrogates and nonsense counts are dealt
    with once, before the cache, the samples or a log see them."""
    return admit(await _call(model, request))


async def _call(model: Model, request) -> GenerateResponse:
    if request.failure is not None:  # nothing to send: the sample records why
        return GenerateResponse(error=request.failure)
    started = time.perf_counter()
    try:
        response = await model.generate(request)
    except FatalBackendError:
        raise  # nothing can be answered: stop, keeping every finished sample
    except Exception as error:  # a backend bug must cost one sample, not the run
        return GenerateResponse(error=f"{type(error).__name__}: {error}", latency_s=time.perf_counter() - started)
    updates: dict = {}
    if not response.latency_s:
        updates["latency_s"] = time.perf_counter() - started
    if len(response.text) > MAX_REPLY_CHARS:  # parsed, cached and stored the same way, once
        updates["text"] = cut_reply(response.text)
        updates["notes"] = [*response.notes, f"replies longer than {MAX_REPLY_CHARS:,} characters are kept as their first and last {MAX_REPLY_CHARS // 2:,}"]
    return response.model_copy(update=updates) if updates else response


async def run_plan(
    task: Task,
    model: Model,
    folder: RunFolder,
    *,
    concurrency: int,
    progress: bool = True,
    cache: ResponseCache | None = None,
    max_cost_usd: float | None = None,
    shard: tuple[int, int] | None = None,
) -> RunOutcome:
    """Answer the plan's questions not yet in the run folder; return all samples in ordinal order.

    With `shard` (index, count) only that shard's block of questions is asked, and its answers go
    to the shard's own file (another process may be answering the next block)."""
    ids = task.ids
    finished = folder.read_samples(repair=shard is None, sample_type=task.sample_type)
    writes_to = folder
    if shard is not None:
        writes_to = folder.shard(*shard)
        merged = {s.question_id for s in finished}
        finished += [s for s in writes_to.read_samples(repair=True, sample_type=task.sample_type) if s.question_id not in merged]
        block = shard_block(len(ids), shard)
        finished = [s for s in finished if s.ordinal in block]
    known_ids = set(ids)
    strangers = [s.question_id for s in finished if s.question_id not in known_ids]
    if strangers:
        raise RunFolderError(
            f"{folder.path}: holds answers to {len(strangers)} questions that are not in the question set "
            f"(first: {strangers[0]!r}); the data changed since this run started, so start a new run"
        )
    done_ids = {s.question_id for s in finished}
    asked = shard_block(len(ids), shard) if shard is not None else range(len(ids))
    todo = [ordinal for ordinal in asked if ids[ordinal] not in done_ids]
    tracker = Progress(len(asked), already_done=len(finished)) if progress else None
    # a backend that shows its progress to someone (a person's answer page) learns the plan's size
    getattr(model, "attach_plan", lambda total, done: None)(len(asked), len(finished))
    digester = RequestDigester()
    budget = CostBudget(model.name, max_cost_usd, finished)
    cache = cache if model.cacheable else None
    queue: asyncio.Queue[int] = asyncio.Queue()
    for ordinal in todo:
        queue.put_nowait(ordinal)
    results: list = list(finished)
    notes: list[str] = []
    shared_calls: dict[str, asyncio.Future] = {}
    early_stop = EarlyStop(concurrency)

    async def answer(ordinal: int) -> tuple[str, GenerateResponse]:
        if getattr(task, "blocking", False):  # CPU-heavy preparation must not stall other requests
            request = await asyncio.to_thread(task.build_request, ordinal)
        else:
            request = task.build_request(ordinal)
        digest = digester.digest(model.cache_identity, request)
        response = cache.get(digest) if cache else None
        if response is not None:
            return digest, admit(response).model_copy(update={"cached": True})
        if request.shared_call:
            return digest, await _ask_shared(model, request, digest, shared_calls, cache)
        response = await _ask(model, request)
        if cache:
            cache.put(digest, response)
        return digest, response

    with writes_to.sample_writer() as writer:

        async def worker() -> None:
            while not budget.exhausted:
                try:
                    ordinal = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    digest, response = await answer(ordinal)
                    notes.extend(n for n in response.notes if n not in notes)
                    sample = task.score(ordinal, model.name, digest, response)
                except IadbenchError:
                    raise  # bad input, a backend that answers nothing, a run folder that takes nothing: stop, keeping what is written
                except OSError as error:
                    if error.errno in _WHOLE_RUN_ERRNOS:
                        raise  # a full or read-only disk fails every question alike: stop, keeping what is written
                    # one input that cannot be read (an image of mode 000, a folder where a file was) costs its question
                    sample = task.score(ordinal, model.name, "", admit(GenerateResponse(error=f"UnreadableInput: {error.filename or 'an input'}: {error.strerror or error}")))
                except Exception as error:  # a bug preparing or scoring one question costs that sample, not the run
                    sample = task.score(ordinal, model.name, "", admit(GenerateResponse(error=f"InternalError: {type(error).__name__}: {error}")))
                writer.write(sample)  # flushed before the next await: a kill loses nothing finished
                results.append(sample)
                budget.add(sample)
                if tracker:
                    tracker.update(error=sample.parse_status == "error", answered=sample.parse_status == "ok", declined=sample.parse_status == "declined")
                early_stop.see(sample)

        workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(todo))))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            if tracker:
                tracker.finish()
    stopped = None
    if len(results) < len(asked) and budget.exhausted:
        stopped = f"cost limit reached: ${budget.spent:.4f} of ${max_cost_usd:.4f}"
    return RunOutcome(sorted(results, key=lambda s: s.ordinal), stopped, notes)
