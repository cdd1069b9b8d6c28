"""API evaluation throughput against the OpenAI-compatible test server (goal: >= 85% of C/L).

The server runs in its own process with a fixed latency L per request; the iadbench runner asks N
MMAD-style 1-shot questions (template + query image, ~5 questions an image) with C requests in
flight. Printed: questions/s, the ideal C/L and their ratio; the ratio against a sequential
one-request-at-a-time loop (the official MMAD scripts' way) measured in the same run; and the
client's CPU time per request (image encoding excluded: it is cached per run and pre-warmed here).

Run: python benchmarks/api_throughput.py [--questions 2000] [--concurrency 64] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from harness.data.mmad import load_mmad
from harness.models.base import ImagePart, ModelOptions
from harness.models.openai import OpenAIChatModel
from harness.run.runlog import RunFolder
from harness.run.runner import run_plan
from harness.schema import RunSpec
from harness.tasks.mcq.task import McqTask, PromptSettings, build_request
from question_gen.generate import generate_question_set
from question_gen.synthetic.writer import SyntheticCounts, write_synthetic_dataset


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.testing.fake_openai", "--port", str(port), "--latency", str(latency), "--no-inspect-images"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/control/stats", timeout=1)
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the test server did not start")


def make_question_set(work: Path, questions: int):
    # 7 categories x (12 normal + 3 defect kinds x 15) = 399 images, ~2,400 questions.
    write_synthetic_dataset(work / "src", seed=0, size=256, counts=SyntheticCounts(train_good=5, test_good=12, per_defect=15))
    generate_question_set(work / "src", work / "set", dataset_name="Synthetic", knowledge_key="synthetic", seed=0)
    question_set = load_mmad(work / "set" / "mmad.json")
    question_set.questions = question_set.questions[:questions]
    return question_set


def timed_run(question_set, base_url: str, concurrency: int, work: Path, name: str) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, requests) for one run of the real runner."""
    model = OpenAIChatModel("openai/bench-vlm", seed=0, options=ModelOptions(base_url=base_url, max_connections=concurrency, request_timeout_s=30))
    settings = PromptSettings(shots=1, image_max_side=512)
    plan = McqTask(question_set.questions, question_set.images, question_set.root, settings, seed=0)
    for question in question_set.questions:  # pre-warm the per-run image cache: encoding is excluded
        request = build_request(question, question_set.images[question.image_id], question_set.root, settings, 0)
        for part in request.messages[0].content:
            if isinstance(part, ImagePart):
                model._images.data_url(part)
    spec = RunSpec(run_id=name, created_at="now", suite="bench", data="bench", model=model.name)
    folder = RunFolder.create(work / "runs", spec)

    clock: dict[str, float] = {}

    async def go():
        try:
            # One request first: the client's one-time set-up (TLS context, HTTP session) is not
            # a per-request cost. Its answer is not recorded.
            await model.generate(build_request(question_set.questions[0], question_set.images[question_set.questions[0].image_id], question_set.root, settings, 0))
            clock["cpu"], clock["wall"] = time.process_time(), time.perf_counter()
            return await run_plan(plan, model, folder, concurrency=concurrency, progress=False)
        finally:
            await model.aclose()

    gc.collect()
    gc.freeze()  # as run_evaluation does before a run
    outcome = asyncio.run(go())
    wall, cpu = time.perf_counter() - clock["wall"], time.process_time() - clock["cpu"]
    failed = sum(1 for s in outcome.samples if s.error)
    if failed:
        raise RuntimeError(f"{failed} requests failed in the benchmark run {name}")
    return wall, cpu, len(outcome.samples)


def bare_sdk_run(question_set, base_url: str, concurrency: int) -> tuple[float, float, int]:
    """The floor: the same request bodies through the same openai client and HTTP transport, with
    nothing of iadbench around them (no prompts, digests, parsing, samples, retries)."""
    from harness.models.openai import _http_client, _http_library

    import importlib
    import json

    import openai

    model = OpenAIChatModel("openai/bench-vlm", seed=0, options=ModelOptions(base_url=base_url))
    settings = PromptSettings(shots=1, image_max_side=512)
    bodies = [model._arguments(build_request(q, question_set.images[q.image_id], question_set.root, settings, 0)) for q in question_set.questions]
    http = importlib.import_module(_http_library(openai))
    clock: dict[str, float] = {}

    async def go() -> None:
        client = openai.AsyncOpenAI(api_key="sk-benchmark", base_url=base_url, max_retries=0, http_client=_http_client(openai, http, concurrency))
        await client.post("/chat/completions", cast_to=http.Response, body=bodies[0])  # set-up, as above
        queue: asyncio.Queue = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

        async def worker() -> None:
            while not queue.empty():
                response = await client.post("/chat/completions", cast_to=http.Response, body=queue.get_nowait())
                json.loads(response.content)

        clock["cpu"], clock["wall"] = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await client.close()

    asyncio.run(go())
    return time.perf_counter() - clock["wall"], time.process_time() - clock["cpu"], len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--sequential-questions", type=int, default=40, help="questions timed for the sequential baseline")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")
    with tempfile.TemporaryDirectory(prefix="iadbench-apibench-") as work_dir:
        work = Path(work_dir)
        question_set = make_question_set(work, args.questions)
        server, base_url = start_server(args.latency)
        try:
            wall, cpu, requests = timed_run(question_set, base_url, args.concurrency, work, "concurrent")
            subset = load_mmad(work / "set" / "mmad.json")
            subset.questions = question_set.questions[: args.sequential_questions]
            seq_wall, _, seq_requests = timed_run(subset, base_url, 1, work, "sequential")
            bare_wall, bare_cpu, bare_requests = bare_sdk_run(question_set, base_url, args.concurrency)
        finally:
            server.kill()
    achieved = requests / wall
    ideal = args.concurrency / args.latency
    sequential = seq_requests / seq_wall
    print(f"questions: {requests} over {len(question_set.images)} images, concurrency {args.concurrency}, server latency {args.latency:.2f} s")
    print(f"achieved: {achieved:.1f} questions/s ({wall:.2f} s)")
    print(f"ideal C/L: {ideal:.1f} questions/s")
    print(f"ratio achieved / ideal: {achieved / ideal:.3f}  (goal >= 0.85)")
    print(f"sequential (official MMAD scripts' way): {sequential:.2f} questions/s over {seq_requests} questions")
    print(f"ratio achieved / sequential: {achieved / sequential:.1f}x")
    print(f"client CPU per request (image encoding and one-time client set-up excluded): {1000 * cpu / requests:.2f} ms  (goal < 2 ms)")
    print(f"bare openai SDK loop, same bodies: {bare_requests / bare_wall:.1f} questions/s, {1000 * bare_cpu / bare_requests:.2f} ms CPU per request")
    print(f"iadbench's own CPU per request (prompt, digest, parsing, sample line, retries): {1000 * (cpu / requests - bare_cpu / bare_requests):.2f} ms")
    print(f"ratio iadbench / bare SDK throughput: {achieved / (bare_requests / bare_wall):.3f}")


if __name__ == "__main__":
    main()
