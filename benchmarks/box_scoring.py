"""Box scoring at MMAD scale (8,366 images): harness.metrics.boxes (vectorised IoU, Hungarian
matching) against a naive loop (pure-Python IoU per pair, every assignment tried), same run, same
boxes, and the two must agree.

    python benchmarks/box_scoring.py [--images 8366]

Half the images are anomalous with 1-3 true boxes; predictions hold 0-3 boxes near or far from
them; 1% of images are crowded (7 true boxes, 7 predicted: a screw bag, a model that boxes every
pushpin), where trying every assignment costs 7! = 5,040 sums.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from harness.metrics.boxes import BoxOutcome, box_metrics


def synthetic_outcomes(count: int, seed: int = 0) -> list[BoxOutcome]:
    rng = np.random.default_rng(seed)
    outcomes = []
    for index in range(count):
        truth = []
        crowded = index % 100 == 1
        if crowded:
            for _ in range(7):
                x, y = rng.uniform(0, 900, 2)
                truth.append((x, y, x + 40.0, y + 40.0))
        elif index % 2:
            for _ in range(int(rng.integers(1, 4))):
                x, y = rng.uniform(0, 900, 2)
                truth.append((x, y, x + rng.uniform(20, 100), y + rng.uniform(20, 100)))
        predicted = []
        for _ in range(7 if crowded else int(rng.integers(0, 4))):
            if truth and rng.random() < 0.6:
                base = truth[int(rng.integers(len(truth)))]
                jitter = rng.normal(0, 10, 4)
                predicted.append(tuple(float(v) for v in np.array(base) + jitter))
            else:
                x, y = rng.uniform(0, 900, 2)
                predicted.append((x, y, x + 50.0, y + 50.0))
        predicted = [(min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])) for b in predicted]
        outcomes.append(BoxOutcome(tuple(truth), tuple(predicted)))
    return outcomes


def _iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_miou(outcomes: list[BoxOutcome]) -> float:
    """Every one-to-one assignment tried, IoU pair by pair."""
    scores = []
    for outcome in outcomes:
        if not outcome.truth:
            continue
        p, t = list(outcome.predicted), list(outcome.truth)
        best = 0.0
        small, large = (p, t) if len(p) <= len(t) else (t, p)
        for chosen in itertools.permutations(range(len(large)), len(small)):
            total = sum(_iou(small[i], large[j]) if small is p else _iou(large[j], small[i]) for i, j in enumerate(chosen))
            best = max(best, total)
        scores.append(best / max(len(p), len(t)) if (p or t) else 1.0)
    return 100.0 * sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=8366)
    args = parser.parse_args()
    outcomes = synthetic_outcomes(args.images)
    box_metrics(outcomes[:2])  # scipy.optimize is imported on first use: a one-time cost, not per image
    started = time.perf_counter()
    ours = box_metrics(outcomes)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    naive = naive_miou(outcomes)
    naive_s = time.perf_counter() - started
    assert abs(ours["mIoU"] - naive) < 1e-6, (ours["mIoU"], naive)
    print(f"{args.images} images ({ours['anomalous_images']} anomalous): mIoU {ours['mIoU']:.2f} both ways")
    print(f"harness.metrics.boxes (all figures): {ours_s:.2f} s, {args.images / ours_s:,.0f} images/s")
    print(f"naive loop (mIoU only):              {naive_s:.2f} s, {args.images / naive_s:,.0f} images/s")
    print(f"ratio: {naive_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
