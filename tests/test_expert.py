"""expert/patchknn: maps that find defects, calibrated detection, localization, honest declines."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.experts.patchknn import WORKING_SIDE, PatchKnn
from harness.metrics.ad import image_metrics, pixel_metrics
from harness.models.expert import area_mean, option_area

REPO = Path(__file__).resolve().parents[1]


def _examples(synthetic_set, category):
    root = synthetic_set / "Synthetic" / category
    templates = sorted(str(p) for p in (root / "train/good").glob("*.png"))
    anomalous = sorted((root / "test").glob("*/*.png"))
    return templates, [p for p in anomalous if p.parent.name != "good"], [p for p in anomalous if p.parent.name == "good"]


def _mask(path: Path) -> np.ndarray:
    mask_path = path.parents[2] / "ground_truth" / path.parent.name / f"{path.stem}_mask.png"
    with Image.open(mask_path) as mask:
        return np.asarray(mask.resize((WORKING_SIDE, WORKING_SIDE), Image.NEAREST)) > 0


@pytest.mark.slow  # the expert over every image of the synthetic set
def test_maps_find_the_defects(synthetic_set):
    expert = PatchKnn()
    for category in ("grass", "screw", "brick"):
        templates, anomalous, normal = _examples(synthetic_set, category)
        results = [expert.score(str(p), templates[:1]) for p in anomalous]
        pixel = pixel_metrics((r.anomaly_map, _mask(p)) for r, p in zip(results, anomalous))
        assert pixel["auroc"] > 0.85, (category, pixel)
        scores = [r.image_score for r in results] + [expert.score(str(p), templates[:1]).image_score for p in normal]
        labels = [1] * len(anomalous) + [0] * len(normal)
        assert image_metrics(labels, scores)["auroc"] > 0.75, category


@pytest.mark.slow  # the expert calibrated over the synthetic set, twice
def test_calibration_leave_one_out_and_single_template(synthetic_set):
    expert = PatchKnn()
    templates, _, normal = _examples(synthetic_set, "grass")
    threshold = expert.calibrate(templates)
    assert 0 < threshold < 10
    assert expert.calibrate(templates[:1]) == 3.0
    # most normal test images stay under the leave-one-out threshold when scored against all templates
    under = [expert.score(str(p), templates).image_score <= threshold for p in normal]
    assert sum(under) >= len(under) / 2


@pytest.mark.parametrize(
    ("text", "area"),
    [
        ("The top left of the image.", ({0}, {0})),
        ("The center of the image.", ({1}, {1})),
        ("The bottom center of the image.", ({2}, {1})),
        ("The middle right of the image.", ({1}, {2})),
        ("On the left side", ({0, 1, 2}, {0})),
        ("In the upper part", ({0}, {0, 1, 2})),
        ("A scratch", None),
    ],
)
def test_option_location_words(text, area):
    assert option_area(text) == area


def test_area_mean_reads_the_right_cells():
    anomaly_map = np.zeros((90, 90))
    anomaly_map[60:, :30] = 1.0  # bottom left
    assert area_mean(anomaly_map, {2}, {0}) == 1.0 and area_mean(anomaly_map, {0}, {2}) == 0.0


@pytest.mark.slow  # 6 s: the expert over the whole synthetic set
def test_expert_as_a_model_in_a_run(tmp_path, synthetic_set):
    result = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "expert/patchknn", "--run-id", "e", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "runs/e/summary.json").read_text())
    row = summary["strict"]["accuracy"]["Synthetic"]
    assert row["Anomaly Detection"] > 65 and row["Defect Localization"] > 60  # chance: 50 and 25
    assert row["Defect Classification"] == 0.0  # declined, counted wrong
    assert summary["status_counts"]["declined"] == sum(
        summary["strict"]["counts"]["Synthetic"][s]["total"] for s in ("Defect Classification", "Defect Description", "Defect Analysis", "Object Classification", "Object Analysis")
    )
    assert summary["image_metrics"]["mean"]["image_auroc"] > 0.75
    assert "image-level (detection scores" in result.stdout


def test_random_baseline_summary_explains_missing_auroc(tmp_path, synthetic_set):
    subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "random", "--run-id", "r", "--quiet"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    summary = json.loads((tmp_path / "runs/r/summary.json").read_text())
    assert "letters only" in summary["image_metrics"]["unavailable"]


def test_descriptor_cache_is_bounded_and_correct(synthetic_set):
    templates, anomalous, _ = _examples(synthetic_set, "washer")
    uncached, cached = PatchKnn(cache_size=0), PatchKnn(cache_size=2)
    for path in anomalous[:4]:
        assert uncached.score(str(path), templates[:2]).image_score == cached.score(str(path), templates[:2]).image_score
    assert len(cached._descriptors) == 2 and len(uncached._descriptors) == 0
