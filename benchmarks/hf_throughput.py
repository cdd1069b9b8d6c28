"""Local Hugging Face backend throughput (goal on a GPU: (c)/(a) >= 10x).

A Qwen2-VL is built from a config with random weights (no download): `--shape 2b` has
Qwen2-VL-2B-Instruct's published shapes; `--shape ci` is a small one for a CPU sanity run. It is saved
and loaded through the backend's from_pretrained path. N MMAD-style 1-shot questions (template +
query image, about 5 questions an image, from the synthetic set) go through the real runner three
ways, in the same run:
  (a) MMAD's way: one `generate` per question, nothing batched;
  (b) batched `generate` (--batch-size, questions about one image grouped);
  (c) batched logprob scoring: one forward pass per batch, per-image grouping;
  (c') as (c) with grouping off (batches in arrival order), to show what grouping buys.
Generation stops at --max-new-tokens (default 4: a letter and an end token, what an instruction-
tuned model writes; random weights never stop by themselves).

Run: python benchmarks/hf_throughput.py [--shape ci|2b] [--questions 64] [--batch-size 16]
     on a GPU: python benchmarks/hf_throughput.py --shape 2b --questions 1024 --batch-size 64
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import harness.models.hf as hf
from harness.data.mmad import load_mmad
from harness.models.base import ModelOptions
from harness.run.runlog import RunFolder
from harness.run.runner import run_plan
from harness.schema import DecodingSpec, RunSpec
from harness.tasks.mcq.task import McqTask, PromptSettings
from harness.testing.tiny_vlms import QWEN2_VL_2B_TEXT, QWEN2_VL_2B_VISION, build_qwen2_vl

sys.path.insert(0, str(Path(__file__).parent))
from api_throughput import make_question_set  # noqa: E402  (the same 1-shot question set)

SHAPES = {
    "ci": dict(
        text=dict(vocab_size=4096, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096),
        vision=dict(depth=4, embed_dim=128, hidden_size=256, num_heads=4, mlp_ratio=2, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_chans=3),
        max_pixels=224 * 224,
    ),
    "2b": dict(text=QWEN2_VL_2B_TEXT, vision=QWEN2_VL_2B_VISION, max_pixels=448 * 448),
}


def arrival_order(pending, limit, config_samples=False):
    """Batches as questions arrive, ignoring which image they are about (for arm c'); the same
    signature as hf.group_by_images, which it stands in for."""
    return [p for p in pending if p.kind == pending[0].kind][:limit]


def timed(questions, model_dir: Path, work: Path, name: str, *, batch_size: int, scoring: str, dtype: str, max_new_tokens: int) -> tuple[float, int, int]:
    """(questions/s, questions, failures) for one arm; model loading and a warm-up batch excluded."""
    options = ModelOptions(dtype=dtype, batch_size=batch_size)  # type: ignore[arg-type]
    model = hf.HFModel(f"hf/{model_dir}", seed=0, options=options)
    settings = PromptSettings(shots=1, image_max_side=512, decoding=DecodingSpec(max_new_tokens=max_new_tokens), choice_scoring=scoring)  # type: ignore[arg-type]
    task = McqTask(questions.questions, questions.images, questions.root, settings, seed=0)
    folder = RunFolder.create(work / "runs", RunSpec(run_id=name, created_at="now", suite="bench", data="bench", model=model.name))
    clock: dict[str, float] = {}

    async def go():
        warm = [task.build_request(i) for i in range(min(batch_size, len(questions.questions)))]
        await asyncio.gather(*(model.generate(r) for r in warm))  # load, allocate, compile kernels
        clock["start"] = time.perf_counter()
        try:
            return await run_plan(task, model, folder, concurrency=max(1, 4 * batch_size), progress=False, cache=None)
        finally:
            await model.aclose()

    outcome = asyncio.run(go())
    elapsed = time.perf_counter() - clock["start"]
    _sync(model)
    return len(outcome.samples) / elapsed, len(outcome.samples), sum(1 for s in outcome.samples if s.error)


def _sync(model) -> None:
    torch = getattr(model, "_torch", None)
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="ci")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--questions-a", type=int, help="questions timed for arm (a) (default: all); its rate is per question")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, float32 on the CPU")
    parser.add_argument("--max-new-tokens", type=int, default=4)
    args = parser.parse_args()
    import torch

    on_gpu = torch.cuda.is_available()
    dtype = args.dtype or ("bfloat16" if on_gpu else "float32")
    device = torch.cuda.get_device_name(0) if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    shape = SHAPES[args.shape]
    with tempfile.TemporaryDirectory(prefix="iadbench-hfbench-") as work_dir:
        work = Path(work_dir)
        questions = make_question_set(work, args.questions)
        model_dir = build_qwen2_vl(work / "model", text=shape["text"], vision=shape["vision"], max_pixels=shape["max_pixels"], dtype=getattr(torch, dtype))
        common = dict(dtype=dtype, max_new_tokens=args.max_new_tokens)
        subset = load_mmad(work / "set" / "mmad.json")
        subset.questions = questions.questions[: args.questions_a or args.questions]
        rate_a, n_a, fail_a = timed(subset, model_dir, work, "a", batch_size=1, scoring="generate", **common)
        rate_b, n_b, fail_b = timed(questions, model_dir, work, "b", batch_size=args.batch_size, scoring="generate", **common)
        rate_c, n_c, fail_c = timed(questions, model_dir, work, "c", batch_size=args.batch_size, scoring="logprobs", **common)
        grouped = hf.group_by_images
        hf.group_by_images = arrival_order
        try:
            rate_u, n_u, fail_u = timed(questions, model_dir, work, "c-ungrouped", batch_size=args.batch_size, scoring="logprobs", **common)
        finally:
            hf.group_by_images = grouped
    images = len({q.image_id for q in questions.questions})
    print(f"device: {device}; model: Qwen2-VL shape {args.shape!r} with random weights, {dtype}; {n_b} questions over {images} query images, 1-shot")
    print(f"(a) one generate per question:           {rate_a:8.2f} questions/s over {n_a}")
    print(f"(b) batched generate, batch {args.batch_size:<3}:         {rate_b:8.2f} questions/s")
    print(f"(c) batched logprobs, grouped by image:  {rate_c:8.2f} questions/s")
    print(f"(c') batched logprobs, arrival order:    {rate_u:8.2f} questions/s")
    print(f"ratio (b)/(a): {rate_b / rate_a:.2f}x")
    print(f"ratio (c)/(a): {rate_c / rate_a:.2f}x  (goal on a GPU >= 10x)")
    print(f"ratio (c)/(c'), what per-image grouping buys: {rate_c / rate_u:.2f}x")
    failures = fail_a + fail_b + fail_c + fail_u
    if failures:
        print(f"warning: {failures} questions failed (see the arms' errors)")


if __name__ == "__main__":
    main()
