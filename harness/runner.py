"""The asyncio runner: ask every unanswered question, write each sample as it arrives.

The runner only awaits `model.generate`; backends batch or parallelise inside. Concurrency changes
the order lines land in samples.jsonl, never their content: each sample depends only on its own
question, the spec and the seed, and every table sorts by the question's ordinal.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RunFolderError
from harness.models.base import GenerateResponse, Model
from harness.progress import Progress
from harness.runlog import RunFolder
from harness.schema import ImageRecord, Question, SampleResult
from harness.tasks.mcq import PromptSettings, RequestDigester, build_request, score_response


@dataclass
class EvalPlan:
    questions: list[Question]  # in question-set order; a question's index here is its ordinal
    images: dict[str, ImageRecord]
    root: Path
    settings: PromptSettings
    seed: int


async def _ask(model: Model, request) -> GenerateResponse:
    started = time.perf_counter()
    try:
        response = await model.generate(request)
    except Exception as error:  # a backend bug must cost one sample, not the run
        return GenerateResponse(error=f"{type(error).__name__}: {error}", latency_s=time.perf_counter() - started)
    if not response.latency_s:
        response = response.model_copy(update={"latency_s": time.perf_counter() - started})
    return response


async def run_plan(plan: EvalPlan, model: Model, folder: RunFolder, *, concurrency: int, progress: bool = True) -> list[SampleResult]:
    """Answer the plan's questions not yet in the run folder; return all samples in ordinal order."""
    finished = folder.read_samples(repair=True)
    known_ids = {q.id for q in plan.questions}
    strangers = [s.question_id for s in finished if s.question_id not in known_ids]
    if strangers:
        raise RunFolderError(
            f"{folder.path}: holds answers to {len(strangers)} questions that are not in the question set "
            f"(first: {strangers[0]!r}); the data changed since this run started, so start a new run"
        )
    done_ids = {s.question_id for s in finished}
    todo = [(ordinal, q) for ordinal, q in enumerate(plan.questions) if q.id not in done_ids]
    tracker = Progress(len(plan.questions), already_done=len(finished)) if progress else None
    digester = RequestDigester()
    queue: asyncio.Queue[tuple[int, Question]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    results: list[SampleResult] = list(finished)

    with folder.sample_writer() as writer:

        async def worker() -> None:
            while True:
                try:
                    ordinal, question = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                image = plan.images[question.image_id]
                request = build_request(question, image, plan.root, plan.settings, plan.seed)
                digest = digester.digest(model.name, request)
                response = await _ask(model, request)
                sample = score_response(question, image, ordinal, model.name, digest, response)
                writer.write(sample)  # flushed before the next await: a kill loses nothing finished
                results.append(sample)
                if tracker:
                    tracker.update(error=sample.parse_status == "error", answered=sample.parse_status == "ok")

        workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(todo))))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            if tracker:
                tracker.finish()
    return sorted(results, key=lambda s: s.ordinal)
