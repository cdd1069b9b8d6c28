"""Engines for scale (issue: vLLM >= 3x hf/ batched; hf/ batched logprobs >= 10x one generate a
question). The same random-weight Qwen2-VL (`--shape 2b`: Qwen2-VL-2B-Instruct's shapes) answers
the same 1-shot questions, in the same run:
  (a) hf/, one generate per question (MMAD's way);
  (c) hf/, batched logprob scoring (one forward pass per batch);
  (v) a managed engine (default vllm/<model folder>: started, health-checked, fed through the
      openai/ backend with --max-connections in flight, stopped).
Prints questions/s and the ratios (v)/(c) and (c)/(a). Needs a CUDA GPU for the goals to mean
anything; on a machine without vLLM the (v) arm is skipped with a message.

Run on a GPU: python benchmarks/engine_throughput.py --shape 2b --questions 1024 --questions-a 128 --batch-size 64
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from api_throughput import make_question_set  # noqa: E402
from hf_throughput import SHAPES, timed  # noqa: E402

from harness.data.mmad import load_mmad  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.models.base import ModelOptions  # noqa: E402
from harness.models.engines import create_engine_model  # noqa: E402
from harness.run.runlog import RunFolder  # noqa: E402
from harness.run.runner import run_plan  # noqa: E402
from harness.schema import DecodingSpec, RunSpec  # noqa: E402
from harness.tasks.mcq.task import McqTask, PromptSettings  # noqa: E402
from harness.testing.tiny_vlms import build_qwen2_vl  # noqa: E402


def engine_rate(questions, model_dir: Path, work: Path, engine: str, engine_args: str, connections: int, max_new_tokens: int) -> tuple[float, int, int]:
    model = create_engine_model(f"{engine}/{model_dir}", seed=0, options=ModelOptions(engine_args=engine_args or None, max_connections=connections))
    model.ready()
    try:
        settings = PromptSettings(shots=1, image_max_side=512, decoding=DecodingSpec(max_new_tokens=max_new_tokens))
        task = McqTask(questions.questions, questions.images, questions.root, settings, seed=0)
        folder = RunFolder.create(work / "runs", RunSpec(run_id=f"engine-{engine}", created_at="now", suite="bench", data="bench", model=model.name))

        async def go():
            warm = [task.build_request(i) for i in range(min(8, len(questions.questions)))]
            await asyncio.gather(*(model.generate(r) for r in warm))
            started = time.perf_counter()
            try:
                outcome = await run_plan(task, model, folder, concurrency=connections, progress=False, cache=None)
            finally:
                await model.aclose()
            return outcome, time.perf_counter() - started

        outcome, elapsed = asyncio.run(go())
        return len(outcome.samples) / elapsed, len(outcome.samples), sum(1 for s in outcome.samples if s.error)
    finally:
        model.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="ci")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--questions-a", type=int, help="questions timed for arm (a) (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--engine", default="vllm", help="vllm, sglang, transformers-serve, or none")
    parser.add_argument("--engine-args", default="", help='e.g. "--max-model-len 8192 --gpu-memory-utilization 0.8"')
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=4)
    args = parser.parse_args()
    import torch

    on_gpu = torch.cuda.is_available()
    dtype = "bfloat16" if on_gpu else "float32"
    shape = SHAPES[args.shape]
    with tempfile.TemporaryDirectory(prefix="iadbench-enginebench-") as work_dir:
        work = Path(work_dir)
        questions = make_question_set(work, args.questions)
        model_dir = build_qwen2_vl(work / "model", text=shape["text"], vision=shape["vision"], max_pixels=shape["max_pixels"], dtype=getattr(torch, dtype))
        subset = load_mmad(work / "set" / "mmad.json")
        subset.questions = questions.questions[: args.questions_a or args.questions]
        rate_a, n_a, fail_a = timed(subset, model_dir, work, "a", batch_size=1, scoring="generate", dtype=dtype, max_new_tokens=args.max_new_tokens)
        rate_c, n_c, fail_c = timed(questions, model_dir, work, "c", batch_size=args.batch_size, scoring="logprobs", dtype=dtype, max_new_tokens=args.max_new_tokens)
        rate_v = None
        if args.engine != "none":
            try:
                rate_v, n_v, fail_v = engine_rate(questions, model_dir, work, args.engine, args.engine_args, args.connections, args.max_new_tokens)
            except ConfigError as error:
                print(f"({args.engine} arm skipped: {error})")
    device = torch.cuda.get_device_name(0) if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; Qwen2-VL shape {args.shape!r}, random weights, {dtype}; {n_c} 1-shot questions")
    print(f"(a) hf/, one generate per question:  {rate_a:8.2f} questions/s over {n_a}")
    print(f"(c) hf/, batched logprobs (batch {args.batch_size}): {rate_c:8.2f} questions/s")
    if rate_v is not None:
        print(f"(v) {args.engine}, {args.connections} in flight:   {rate_v:8.2f} questions/s ({fail_v} failed)")
        print(f"ratio (v)/(c): {rate_v / rate_c:.2f}x  (goal >= 3x)")
    print(f"ratio (c)/(a): {rate_c / rate_a:.2f}x  (goal >= 10x on a GPU)")
    if fail_a or fail_c:
        print(f"warning: {fail_a + fail_c} hf/ questions failed")


if __name__ == "__main__":
    main()
