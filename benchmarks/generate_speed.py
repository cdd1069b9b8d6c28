"""Question generation speed on the synthetic set (goal: >= 100 images/s on a 2-core machine).

Prints images/s for `generate_question_set` (mask attributes, template ranking, MMAD json) and, as
the baseline measured in the same run, images/s for merely decoding each query image and mask,
the I/O floor no generator can beat. Run: python benchmarks/generate_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from question_gen.generate import generate_question_set
from question_gen.sources import read_mvtec_layout
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="iadbench-genbench-"))
    try:
        source = work / "source"
        write_synthetic_dataset(source, seed=0, size=256, counts=SyntheticCounts(train_good=5, test_good=10, per_defect=args.per_defect))
        generation, floor = [], []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            images = decode_only(source)
            floor.append(images / (time.perf_counter() - started))
            out = work / f"out{repeat}"
            started = time.perf_counter()
            report = generate_question_set(source, out, dataset_name="Synthetic", knowledge_key="synthetic", seed=repeat)
            generation.append(report.images / (time.perf_counter() - started))
        best, best_floor = max(generation), max(floor)
        print(f"images: {report.images} (256x256), questions: {sum(report.questions_by_subtask.values())}")
        print(f"generate: {best:.1f} images/s (best of {args.repeats})")
        print(f"decode-only baseline: {best_floor:.1f} images/s")
        print(f"ratio generate / decode-only: {best / best_floor:.2f}")
        print(f"ratio generate / goal ({GOAL_IMAGES_PER_S:.0f} images/s): {best / GOAL_IMAGES_PER_S:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
