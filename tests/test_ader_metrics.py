"""ADer's evaluator (zhangzjn/ADer util/metric.py) on small arrays, every expected value computed by
hand from its definitions (pooling 2 here instead of 16, for 4×4 maps)."""

import math

import numpy as np
import pytest

from harness.metrics.ad import mean_over_categories
from harness.metrics.ader import ADER_SIDE, ader_aupro, ader_category_metrics, at_ader_resolution, pixel_f1_max


def small_category():
    """A: anomalous, its 2×2 region at the top left scored 0.8/0.8/0.4/0.4, a false 0.8 at (3,3).
    B: normal, one 0.4. C: normal, a 2×2 block of 0.7 (the hottest pooled window)."""
    maps = np.zeros((3, 4, 4))
    masks = np.zeros((3, 4, 4), bool)
    masks[0, :2, :2] = True
    maps[0, 0, :2], maps[0, 1, :2], maps[0, 3, 3] = 0.8, 0.4, 0.8
    maps[1, 0, 0] = 0.4
    maps[2, 2:, :2] = 0.7
    return maps, masks


def test_ader_metrics_by_hand():
    maps, masks = small_category()
    got = ader_category_metrics(maps, masks, pooling=2)
    # image scores (2×2 pooled maxima): A 0.6, B 0.1, C 0.7; only A is anomalous
    assert got["image_auroc"] == pytest.approx(0.5)  # A beats B, loses to C
    assert got["image_ap"] == pytest.approx(0.5)  # at A's score: precision 1/2, recall 1
    assert got["image_f1_max"] == pytest.approx(2 / 3)
    # pixels: positives 0.8, 0.8, 0.4, 0.4; negatives 0.8, 0.7×4, 0.4, 0×38
    assert got["pixel_auroc"] == pytest.approx((2 * 43.5 + 2 * 38.5) / (4 * 44))
    assert got["pixel_ap"] == pytest.approx(0.5 * 2 / 3 + 0.5 * 0.4)  # steps at 0.8 and 0.4; none at 0.7
    # normalised by the category's max 0.8: thresholds 0…0.45 give P 4/10, R 1
    assert got["pixel_f1_max"] == pytest.approx(4 / 7, abs=1e-6)
    # AUPRO: FPR 6/44, 5/44, 1/44 with PRO 1, 1/2, 1/2, rescaled min–max to 1, 0.8, 0:
    # trapezoids 0.2 × 0.75 + 0.8 × 0.5
    assert got["pixel_aupro"] == pytest.approx(0.55)


def test_ader_edge_cases_and_resolution():
    maps, masks = small_category()
    assert math.isnan(ader_aupro(np.zeros_like(maps), masks))  # a constant map: ADer divides by zero
    assert pixel_f1_max(np.zeros_like(maps), masks) == 0.0  # ADer's 0/0 normalisation predicts nothing
    big = np.arange(512 * 384, dtype=float).reshape(512, 384)
    small = at_ader_resolution(big)
    assert small.shape == (ADER_SIDE, ADER_SIDE) and small[0, 0] == 0 and small[1, 0] == big[2, 0]


def test_only_ader_mode_names_its_mean_mad():
    per_category = {"a": {k: 0.5 for k in ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap", "pixel_f1_max", "pixel_aupro")}}
    assert "mean7" in mean_over_categories(per_category)[0] and "mad" not in mean_over_categories(per_category)[0]
    assert mean_over_categories(per_category, "mad")[0]["mad"] == 0.5


def test_adeval_strips_by_hand():
    """ADer's use_adeval path on one 2×4 map, 4 strips over [0, 0.8] (width 0.2); the top value is
    counted in the last strip and again in the overflow, as ADEval's histc + ≥max does."""
    from harness.metrics.ader import adeval_pixel_metrics

    masks = np.array([[[1, 1, 0, 0], [0, 0, 0, 0]]], bool)
    maps = np.array([[[0.8, 0.4, 0.8, 0.0], [0.0, 0.0, 0.0, 0.2]]])
    got = adeval_pixel_metrics(maps, masks, strips=4)
    # positives per strip edge tp = 3,3,3,2,1 of 3; negatives fp = 7,3,2,2,1 of 7
    assert got["pixel_auroc"] == pytest.approx(11 / 14)
    assert got["pixel_ap"] == pytest.approx(1 / 6 + 1 / 3 * (1 / 2 + 3 / 5) / 2)
    # PRO (one region, weights 1/2) equals the TPR here; ADEval's tail at FPR 0.3: 1/10 of the
    # rectangle between FPR 2/7 and 3/7
    assert got["pixel_aupro"] == pytest.approx((1 / 14 + 1 / 70) / 0.3)


def test_aupro_takes_the_100_steps_every_ader_config_passes():
    """One 1×12 image: a 2-pixel region (1.0 and 0.4025) and ten normal pixels (0.9925, 0.2025 and
    eight zeros). 100 thresholds i/100: FPR 0.2 up to 0.20, then 0.1 (PRO 1 to 0.40, then 0.5); the
    0.9925 pixel stays above the last threshold 0.99, so FPR never reaches 0 and rescales 0.1→0,
    0.2→1: area 1. 200 thresholds reach 0.995, add FPR 0: rescaled 0, 0.5, 1, area 0.75."""
    maps = np.zeros((1, 1, 12))
    masks = np.zeros((1, 1, 12), bool)
    masks[0, 0, :2] = True
    maps[0, 0, :4] = [1.0, 0.4025, 0.9925, 0.2025]
    assert ader_aupro(maps, masks) == pytest.approx(1.0)
    assert ader_aupro(maps, masks, steps=200) == pytest.approx(0.75)


def test_pooled_image_score_keeps_ties_like_avg_pool():
    """The same 16×16 pattern at several places of a 64×64 map (the map's other values differ):
    every placement gives the same score, as avg_pool2d does. A summed-area table gave 4 different
    values here, which reorders images that ADer ranks as ties."""
    from harness.metrics.ad import image_score_from_map

    rng = np.random.default_rng(0)
    pattern = rng.random((16, 16))
    scores = set()
    for offset in range(0, 40, 3):
        anomaly_map = np.full((64, 64), 0.05)
        anomaly_map[:offset] = rng.random((offset, 64)) * 0.04
        anomaly_map[offset:offset + 16, offset:offset + 16] = pattern
        scores.add(image_score_from_map(anomaly_map, "pooled", 16))
    assert len(scores) == 1
    assert scores.pop() == pytest.approx(pattern.mean(), abs=1e-15)


def test_adeval_strips_in_histc_order():
    """A value on a strip edge goes where torch.histc puts it: (x − low)·strips/(high − low).
    3·0.7/50 = 0.041999999999999996 is strip 2 so (dividing first gives 3.0000000000000004: strip 3)."""
    import torch

    from harness.metrics.ader import _strip_counts

    low, high, strips = 0.0, 0.7, 50
    edge = 3 * high / strips
    counts = _strip_counts(np.array([edge]), low, high, strips)
    assert int(np.argmax(counts[1:-1])) == 2
    edges = np.array([k * high / strips for k in range(strips + 1)])
    ours = _strip_counts(edges, low, high, strips)[1:-1]
    theirs = torch.histc(torch.tensor(edges, dtype=torch.float64), bins=strips, min=low, max=high).numpy()
    assert np.array_equal(ours, theirs)
