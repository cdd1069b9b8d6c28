"""AD metrics: equal to scikit-learn and to the official AUPRO on randomized cases, ties included."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from harness.metrics.ad import (
    image_metrics,
    image_score_from_map,
    mean_over_categories,
    pixel_metrics,
    ranked_counts,
    region_weights,
)
from tests.aupro_reference import reference_aupro


def sklearn_f1_max(labels, scores):
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return np.nanmax(f1)


def _blob_masks(rng, n, size):
    masks = np.zeros((n, size, size), bool)
    ys, xs = np.mgrid[0:size, 0:size]
    for mask in masks[: n // 2]:  # half the images are anomalous, with 1-3 blobs
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.integers(0, size, 2).tolist() + [rng.integers(1, size // 4)]
            mask |= (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r
    return masks


@pytest.mark.parametrize("seed", range(8))
def test_image_metrics_equal_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + labels * rng.random() * 0.5, decimals=seed % 3 + 1)  # coarse: many ties
    ours = image_metrics(labels, scores)
    assert ours["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert ours["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
    assert ours["f1_max"] == pytest.approx(sklearn_f1_max(labels, scores), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_pixel_metrics_equal_sklearn_and_official_aupro(seed):
    rng = np.random.default_rng(seed)
    size, n = 32, 10
    masks = _blob_masks(rng, n, size)
    maps = (rng.random((n, size, size)) * 0.7 + masks * rng.random((n, size, size)) * 0.6).astype(np.float32)
    if seed % 2:
        maps = np.round(maps, 2)  # ties
    ours = pixel_metrics(zip(maps, masks))
    labels, scores = masks.ravel(), maps.ravel()
    assert ours["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert ours["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
    assert ours["f1_max"] == pytest.approx(sklearn_f1_max(labels, scores), abs=1e-9)
    assert ours["aupro"] == pytest.approx(reference_aupro(maps, masks), abs=1e-6)


def test_constant_maps_and_degenerate_categories():
    masks = _blob_masks(np.random.default_rng(0), 4, 16)
    constant = np.zeros((4, 16, 16), np.float32)
    metrics = pixel_metrics(zip(constant, masks))
    assert metrics["auroc"] == 0.5
    assert metrics["ap"] == pytest.approx(masks.mean())  # a constant detector scores the prevalence
    assert metrics["aupro"] == pytest.approx(reference_aupro(constant, masks), abs=1e-9)
    normal_only = pixel_metrics(zip(constant, np.zeros_like(masks)))
    assert math.isnan(normal_only["auroc"]) and math.isnan(normal_only["aupro"])
    anomalous_only = image_metrics(np.ones(5, bool), np.arange(5.0))
    assert math.isnan(anomalous_only["auroc"]) and anomalous_only["ap"] == 1.0


def test_perfect_and_inverted_detectors():
    masks = _blob_masks(np.random.default_rng(1), 6, 24)
    perfect = pixel_metrics(zip(masks.astype(np.float32), masks))
    assert perfect["auroc"] == 1.0 and perfect["ap"] == 1.0 and perfect["f1_max"] == 1.0 and perfect["aupro"] == pytest.approx(1.0)
    inverted = pixel_metrics(zip((~masks).astype(np.float32), masks))
    assert inverted["auroc"] == 0.0 and inverted["aupro"] == pytest.approx(0.0)


def test_binned_mode_is_close_to_exact_and_streams():
    rng = np.random.default_rng(5)
    masks = _blob_masks(rng, 20, 64)
    maps = np.clip(rng.normal(0.3, 0.15, (20, 64, 64)) + masks * 0.25, 0, 1).astype(np.float32)
    exact = pixel_metrics(zip(maps, masks))
    binned = pixel_metrics(((m, k) for m, k in zip(maps, masks)), bins=1000)  # a generator: one pass
    for key in exact:
        assert abs(binned[key] - exact[key]) < 2e-3, (key, binned[key], exact[key])


def test_region_weights_use_eight_connectivity():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours: one 8-connected region of area 2
    mask[4:6, 4:6] = True  # a second region of area 4
    weights, regions = region_weights(mask)
    assert regions == 2 and sorted(weights.tolist()) == [0.25] * 4 + [0.5] * 2


def test_image_score_from_map():
    anomaly_map = np.zeros((32, 32))
    anomaly_map[0, 0] = 10.0  # one hot pixel
    anomaly_map[10:26, 10:26] = 1.0  # a 16x16 patch
    assert image_score_from_map(anomaly_map) == 10.0
    assert image_score_from_map(anomaly_map, "pooled", 16) == pytest.approx(1.0)


def test_mean_over_categories_leaves_out_one_class_categories():
    per_category = {"a": {"image_auroc": 0.8}, "b": {"image_auroc": float("nan")}, "c": {"image_auroc": 0.6}}
    with pytest.warns(UserWarning, match="image_auroc: left out of the mean .*: b"):
        means, notes = mean_over_categories(per_category)
    assert means["image_auroc"] == pytest.approx(0.7) and len(notes) == 1


def test_nan_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        ranked_counts(np.array([0.1, np.nan]), np.array([0, 1]))
