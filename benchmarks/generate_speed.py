"""Question generation speed on the synthetic set (goal: >= 100 images/s on a 2-core machine).

Prints images/s for `generate_question_set` (mask attributes, template ranking, MMAD json) and, as
the baseline measured in the same run, images/s for merely decoding each query image and mask,
the I/O floor no generator can beat.

LLM mode (`--llm`): the same generation with an OpenAI-compatible writer (the test server in its
own process, a fixed latency per request); prints the writer's requests/s with --llm-concurrency
images in flight and, as the baseline in the same run, with one image at a time.

Run: python benchmarks/generate_speed.py [--repeats 3] [--llm] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from question_gen.generate import default_workers, generate_question_set
from harness.adsets.layouts import read_mvtec_layout
from question_gen.synthetic.writer import SyntheticCounts, write_synthetic_dataset

GOAL_IMAGES_PER_S = 100.0


def decode_only(root: Path) -> int:
    images = 0
    for category in read_mvtec_layout(root):
        for path in category.train_good:
            np.asarray(Image.open(root / path).convert("RGB"))
        for image in category.test:
            np.asarray(Image.open(root / image.path).convert("RGB"))
            for mask in image.mask_paths:
                np.asarray(Image.open(root / mask).convert("L"))
            images += 1
    return images


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-defect", type=int, default=10, help="anomalous images per defect kind and category")
    parser.add_argument("--llm", action="store_true", help="also time LLM-assisted generation against the test server")
    parser.add_argument("--latency", type=float, default=0.1, help="the test server's seconds per request (--llm)")
    parser.add_argument("--llm-concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.llm:
        return llm_mode(args)
    work = Path(tempfile.mkdtemp(prefix="iadbench-genbench-"))
    try:
        source = work / "source"
        write_synthetic_dataset(source, seed=0, size=256, counts=SyntheticCounts(train_good=5, test_good=10, per_defect=args.per_defect))
        generation, floor, one_process = [], [], []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            images = decode_only(source)
            floor.append(images / (time.perf_counter() - started))
            out = work / f"out{repeat}"
            started = time.perf_counter()
            report = generate_question_set(source, out, dataset_name="Synthetic", knowledge_key="synthetic", seed=repeat)
            generation.append(report.images / (time.perf_counter() - started))
            started = time.perf_counter()
            single = generate_question_set(source, work / f"single{repeat}", dataset_name="Synthetic", knowledge_key="synthetic", seed=repeat, workers=1)
            one_process.append(single.images / (time.perf_counter() - started))
            same = (out / "mmad.json").read_bytes() == (work / f"single{repeat}" / "mmad.json").read_bytes()
        best, best_floor = max(generation), max(floor)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"images: {report.images} (256x256), questions: {sum(report.questions_by_subtask.values())}")
        print(f"generate: {best:.1f} images/s (best of {args.repeats}), {default_workers()} processes")
        print(f"generate in one process: {max(one_process):.1f} images/s; ratio: {best / max(one_process):.2f}x; same mmad.json: {same}")
        print(f"peak memory of the generating process: {peak_mb:.0f} MB")
        print(f"decode-only baseline: {best_floor:.1f} images/s")
        print(f"ratio generate / decode-only: {best / best_floor:.2f}")
        print(f"ratio generate / goal ({GOAL_IMAGES_PER_S:.0f} images/s): {best / GOAL_IMAGES_PER_S:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def llm_mode(args) -> None:
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from api_throughput import start_server

    from harness.models.base import ModelOptions
    from harness.models.openai import OpenAIChatModel

    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")
    work = Path(tempfile.mkdtemp(prefix="iadbench-genbench-llm-"))
    server, base_url = start_server(args.latency)
    try:
        source = work / "source"
        write_synthetic_dataset(source, seed=0, size=256, counts=SyntheticCounts(train_good=3, test_good=2, per_defect=2))
        rates = {}
        for concurrency in (args.llm_concurrency, 1):
            model = OpenAIChatModel("openai/writer", seed=0, options=ModelOptions(base_url=base_url, max_connections=64))
            started = time.perf_counter()
            report = generate_question_set(source, work / f"out{concurrency}", dataset_name="Synthetic", knowledge_key="synthetic", llm=model, llm_concurrency=concurrency)
            rates[concurrency] = report.llm["requests"] / (time.perf_counter() - started)
        print(f"images: {report.images}; writer requests: {report.llm['requests']}; server latency {args.latency:.2f} s")
        print(f"LLM mode, {args.llm_concurrency} images in flight: {rates[args.llm_concurrency]:.1f} requests/s")
        print(f"LLM mode, one image at a time (baseline): {rates[1]:.1f} requests/s")
        print(f"ratio concurrent / one at a time: {rates[args.llm_concurrency] / rates[1]:.1f}x")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
