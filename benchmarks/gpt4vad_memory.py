"""Peak memory of GPT-4V-AD's pixel metrics per 1,000 images: maps at full camera resolution (the
old way) against the evaluation cap (EVAL_LONG_SIDE px on the long side), in the same run.

    python benchmarks/gpt4vad_memory.py [--images 8] [--side 3000x4000]

Maps are region-valued (a 16×16 grid of scores), masks a few defects, like real Text2Segmentation
output. Memory is measured with tracemalloc (numpy's allocations included) over the metrics of
one category, which is what is held at once.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from harness.metrics.ad import pixel_metrics
from harness.metrics.ad import resize_nearest as _nearest
from harness.tasks.gpt4vad.task import EVAL_LONG_SIDE, evaluation_shape


def maps_and_masks(count: int, height: int, width: int, capped: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        scores = rng.random((16, 16)).astype(np.float32) * (rng.random((16, 16)) > 0.8)
        anomaly_map = np.kron(scores, np.ones((height // 16 + 1, width // 16 + 1), np.float32))[:height, :width]
        mask = np.zeros((height, width), bool)
        top, left = rng.integers(0, height - 200), rng.integers(0, width - 200)
        mask[top : top + 150, left : left + 180] = True
        if capped:
            shape = evaluation_shape(anomaly_map.shape)
            anomaly_map, mask = _nearest(anomaly_map, shape), _nearest(mask, shape)
        yield anomaly_map, mask


def peak(count: int, height: int, width: int, capped: bool) -> tuple[float, float, dict]:
    tracemalloc.start()
    started = time.perf_counter()
    metrics = pixel_metrics(maps_and_masks(count, height, width, capped))
    elapsed = time.perf_counter() - started
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top, elapsed, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--side", default="3000x4000", help="HEIGHTxWIDTH of the camera images")
    args = parser.parse_args()
    height, width = map(int, args.side.lower().split("x"))
    # What grows with the category is what the metrics keep per image: the slope of the peak
    # between N and 2N images (one image's transient full-size arrays cancel out).
    n = args.images
    results = {}
    for capped in (False, True):
        small, _, _ = peak(n, height, width, capped)
        large, seconds, metrics = peak(2 * n, height, width, capped)
        results[capped] = ((large - small) / n * 1000 / 2**30, large / 2**30, seconds, metrics)
    print(f"{n} and {2 * n} images of {height}x{width}: pixel metrics at full size, and at most {EVAL_LONG_SIDE} px on the long side")
    for capped, label in ((False, "full resolution"), (True, "capped        ")):
        per_thousand, top, seconds, _ = results[capped]
        print(f"{label}: {per_thousand:6.2f} GiB kept per 1,000 images (peak {top:.2f} GiB for {2 * n} images, {seconds:.1f} s)")
    full, capped = results[False][3], results[True][3]
    print(f"memory ratio (full / capped): {results[False][0] / results[True][0]:.0f}x; pixel AUROC {full['auroc']:.4f} vs {capped['auroc']:.4f}, AUPRO {full['aupro']:.4f} vs {capped['aupro']:.4f}")


if __name__ == "__main__":
    main()
