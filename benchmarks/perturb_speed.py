"""The cost of a degradation sweep: images/s to degrade, iadbench's way (each image degraded once
per setting, written to the cache, reused by every question on it, two worker threads as the runner
uses) against a naive loop (degrade the image again for every question, one at a time), same run.

    python benchmarks/perturb_speed.py [--images 40] [--size 256] [--questions-per-image 5]

Images are the synthetic set's (textured objects). MMAD asks about 4.7 questions per image; the
synthetic set 5.4. Every kind runs at severity 3.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from harness.asking.perturb import KINDS, degrade, parse_perturbation, perturbed_path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--questions-per-image", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        from question_gen.synthetic.writer import write_synthetic_dataset

        write_synthetic_dataset(root / "synthetic", seed=0, size=args.size)  # textured objects, like photographs
        paths = sorted((root / "synthetic").glob("*/test/*/*.png"))[: args.images]
        asks = [p for p in paths for _ in range(args.questions_per_image)]
        settings = [f"{kind}:3" for kind in KINDS]
        started = time.perf_counter()
        for setting in settings:  # naive: decode, degrade, encode for every question
            kind, severity = parse_perturbation(setting)
            for path in asks:
                rgb = np.asarray(Image.open(path).convert("RGB"))
                Image.fromarray(degrade(rgb, kind, severity, np.random.default_rng(0))).save(root / "naive.png")
        naive_s = time.perf_counter() - started
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            for setting in settings:
                list(pool.map(lambda p: perturbed_path(p, [setting], 0, root / "cache"), asks))
        ours_s = time.perf_counter() - started
    total = len(asks) * len(settings)
    print(f"{args.images} images x {args.questions_per_image} questions x {len(settings)} kinds at severity 3 ({args.size} px): {total} image requests")
    print(f"iadbench (once per image, cached, 2 threads): {ours_s:.2f} s, {total / ours_s:,.0f} requests/s, {args.images * len(settings) / ours_s:,.0f} degraded images/s")
    print(f"naive loop (every question, 1 thread):       {naive_s:.2f} s, {total / naive_s:,.0f} requests/s")
    print(f"ratio: {naive_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
