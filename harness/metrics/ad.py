"""Anomaly-detection metrics as small pure functions over numpy arrays.

Definitions (notes/gpt4vad-and-metrics.md), computed per category and then averaged:
- AUROC: area under the ROC curve with ties counted 1/2 (= scikit-learn's roc_auc_score).
- AP: scikit-learn's step sum Σ (Rₙ − Rₙ₋₁) Pₙ over distinct thresholds (not a trapezoid).
- F1-max: the best 2PR/(P+R) over all thresholds.
- AUPRO: MVTec's per-region overlap, integrated over FPR up to 0.3 and divided by 0.3; regions are
  the 8-connected components of each mask, each anomalous pixel weighted 1/area(region).

Speed: instead of one argsort per metric, a category's scores are sorted once; the anomalous pixels
(a few percent) are sorted separately with their region weights. At every distinct threshold the
counts above it then come from array positions and `searchsorted`, which feeds all four curves.
A `bins=N` mode accumulates histograms instead: streaming, bounded memory, approximate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from scipy import ndimage

AUPRO_FPR_LIMIT = 0.3
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


# ---------------------------------------------------------------------------------------------
# Ranked counts: the one pass every curve is read from


@dataclass(frozen=True)
class RankedCounts:
    """At each distinct score threshold t (descending): anomalies and normals scoring ≥ t."""

    thresholds: np.ndarray
    true_positives: np.ndarray  # int64, cumulative
    false_positives: np.ndarray  # int64, cumulative
    positives: int
    negatives: int
    region_overlap: np.ndarray | None = None  # Σ 1/area over anomalous pixels ≥ t (for AUPRO)
    regions: int = 0


def ranked_counts(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, regions: int = 0) -> RankedCounts:
    """Counts at every distinct threshold. `weights` (one per positive, in order) feeds AUPRO."""
    scores = np.asarray(scores).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores ({scores.size}) and labels ({labels.size}) differ in size")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; a map or score must be finite everywhere")
    descending = np.sort(scores)[::-1]
    last_of_run = np.flatnonzero(np.diff(descending) != 0)
    ends = np.append(last_of_run, descending.size - 1)  # last index of each run of tied scores
    thresholds = descending[ends]
    at_or_above = ends.astype(np.int64) + 1
    positive_scores = scores[labels]
    order = np.argsort(positive_scores, kind="stable")
    ascending_positives = positive_scores[order]
    below = np.searchsorted(ascending_positives, thresholds, side="left")
    true_positives = positive_scores.size - below.astype(np.int64)
    overlap = None
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64).ravel()
        if weights.size != positive_scores.size:
            raise ValueError("one region weight is needed per anomalous pixel")
        prefix = np.concatenate(([0.0], np.cumsum(weights[order])))
        overlap = prefix[-1] - prefix[below]
    return RankedCounts(thresholds, true_positives, at_or_above - true_positives, int(positive_scores.size), int(scores.size - positive_scores.size), overlap, regions)


def _one_class(counts: RankedCounts) -> bool:
    return counts.positives == 0 or counts.negatives == 0


def auroc(counts: RankedCounts) -> float:
    if _one_class(counts):
        return math.nan
    tpr = np.concatenate(([0.0], counts.true_positives / counts.positives))
    fpr = np.concatenate(([0.0], counts.false_positives / counts.negatives))
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(counts: RankedCounts) -> float:
    if counts.positives == 0:
        return math.nan
    precision = counts.true_positives / (counts.true_positives + counts.false_positives)
    recall = np.concatenate(([0.0], counts.true_positives / counts.positives))
    return float(np.sum(np.diff(recall) * precision))


def f1_max(counts: RankedCounts) -> float:
    if counts.positives == 0:
        return math.nan
    # 2PR/(P+R) = 2TP / (TP + FP + all positives): no division by zero, no NaN to drop.
    f1 = 2 * counts.true_positives / (counts.true_positives + counts.false_positives + counts.positives)
    return float(f1.max())


def aupro(counts: RankedCounts, fpr_limit: float = AUPRO_FPR_LIMIT) -> float:
    """MVTec AD's official AUPRO: the PRO curve from (0,0) to (1,1), integrated up to `fpr_limit`
    with linear interpolation at the limit, divided by the limit."""
    if counts.region_overlap is None or counts.regions == 0 or counts.negatives == 0:
        return math.nan
    fpr = np.concatenate(([0.0], np.minimum(counts.false_positives / counts.negatives, 1.0), [1.0]))
    pro = np.concatenate(([0.0], np.minimum(counts.region_overlap / counts.regions, 1.0), [1.0]))
    return integrate_up_to(fpr, pro, fpr_limit) / fpr_limit


def integrate_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under y(x) for x ≤ x_max (x ascending), interpolating y linearly at x_max."""
    inside = x <= x_max
    area = float(np.sum(np.diff(x[inside]) * (y[inside][1:] + y[inside][:-1]) / 2))
    after = int(np.searchsorted(x, x_max, side="right"))
    if 0 < after < x.size and x[after - 1] < x_max:
        x0, x1, y0, y1 = x[after - 1], x[after], y[after - 1], y[after]
        y_limit = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_limit) * (x_max - x0)
    return area


# ---------------------------------------------------------------------------------------------
# Image level


def image_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, AP and F1-max of image scores (1 = anomalous)."""
    counts = ranked_counts(np.asarray(scores, dtype=np.float64), labels)
    return {"auroc": auroc(counts), "ap": average_precision(counts), "f1_max": f1_max(counts)}


def resize_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map or mask at another size by nearest neighbour (exact for piecewise-constant maps)."""
    if array.shape[:2] == tuple(shape):
        return array
    rows = (np.arange(shape[0]) * array.shape[0] // shape[0]).astype(int)
    cols = (np.arange(shape[1]) * array.shape[1] // shape[1]).astype(int)
    return array[np.ix_(rows, cols)]


def image_score_from_map(anomaly_map: np.ndarray, mode: str = "max", kernel: int = 16) -> float:
    """An image score from its map: the maximum, or ADer's convention, the maximum of a kernel×kernel
    stride-1 average pooling (no padding), which ignores isolated hot pixels."""
    values = np.asarray(anomaly_map, dtype=np.float64)
    if mode == "max":
        return float(values.max())
    if mode != "pooled":
        raise ValueError(f"unknown image score mode {mode!r}; use max or pooled")
    k = min(kernel, *values.shape)
    # Each window summed from its own k×k values, rows first, then the row sums: windows holding
    # the same values get the same score, as avg_pool2d gives them. (A summed-area table rounds
    # differently at each offset, and then breaks ties that ADer keeps.)
    from numpy.lib.stride_tricks import sliding_window_view

    rows = sliding_window_view(values, k, axis=1).sum(axis=-1)
    windows = sliding_window_view(rows, k, axis=0).sum(axis=-1)
    return float(windows.max() / (k * k))


# ---------------------------------------------------------------------------------------------
# Pixel level, per category


def region_weights(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """1/area of its 8-connected region for every anomalous pixel (row-major order), and the count."""
    labelled, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count == 0:
        return np.zeros(0), 0
    areas = np.bincount(labelled.ravel())
    return 1.0 / areas[labelled[labelled > 0]], count


@dataclass
class PixelAccumulator:
    """Collects a category's maps one at a time; exact (float32 scores kept) or binned (histograms).

    Binned mode assumes scores in `score_range` (values outside fall into the edge bins).
    """

    bins: int | None = None
    score_range: tuple[float, float] = (0.0, 1.0)
    _scores: list = field(default_factory=list)
    _labels: list = field(default_factory=list)
    _weights: list = field(default_factory=list)
    regions: int = 0

    def __post_init__(self) -> None:
        if self.bins:
            self._positive = np.zeros(self.bins, dtype=np.int64)
            self._negative = np.zeros(self.bins, dtype=np.int64)
            self._overlap = np.zeros(self.bins)

    def add(self, anomaly_map: np.ndarray, mask: np.ndarray) -> None:
        anomaly_map = np.asarray(anomaly_map)
        mask = np.asarray(mask, dtype=bool)
        if anomaly_map.shape != mask.shape:
            raise ValueError(f"map {anomaly_map.shape} and mask {mask.shape} differ in shape; resize the map to the mask first")
        weights, count = region_weights(mask)
        self.regions += count
        if self.bins:
            low, high = self.score_range
            index = np.clip(((anomaly_map - low) / (high - low) * self.bins).astype(np.int64), 0, self.bins - 1).ravel()
            flat_mask = mask.ravel()
            self._positive += np.bincount(index[flat_mask], minlength=self.bins)
            self._negative += np.bincount(index[~flat_mask], minlength=self.bins)
            self._overlap += np.bincount(index[flat_mask], weights=weights, minlength=self.bins)
        else:
            self._scores.append(anomaly_map.astype(np.float32, copy=False).ravel())
            self._labels.append(mask.ravel())
            self._weights.append(weights)

    def counts(self) -> RankedCounts:
        if self.bins:
            # Thresholds at bin floors, highest first; counts are cumulative from the top bin down.
            low, high = self.score_range
            thresholds = low + (high - low) * np.arange(self.bins - 1, -1, -1) / self.bins
            tp = np.cumsum(self._positive[::-1])
            fp = np.cumsum(self._negative[::-1])
            keep = (tp + fp) > 0  # empty top bins make no threshold; other empty bins repeat a point (no area)
            return RankedCounts(thresholds[keep], tp[keep], fp[keep], int(tp[-1]), int(fp[-1]), np.cumsum(self._overlap[::-1])[keep], self.regions)
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0, np.float32)
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, bool)
        weights = np.concatenate(self._weights) if self._weights else np.zeros(0)
        return ranked_counts(scores, labels, weights, self.regions)


def pixel_metrics(maps_and_masks: Iterable[tuple[np.ndarray, np.ndarray]], *, bins: int | None = None, score_range: tuple[float, float] = (0.0, 1.0)) -> dict[str, float]:
    """AUROC, AP, F1-max and AUPRO over every pixel of one category's maps (maps may be a generator)."""
    accumulator = PixelAccumulator(bins=bins, score_range=score_range)
    for anomaly_map, mask in maps_and_masks:
        accumulator.add(anomaly_map, mask)
    counts = accumulator.counts()
    return {"auroc": auroc(counts), "ap": average_precision(counts), "f1_max": f1_max(counts), "aupro": aupro(counts)}


# ---------------------------------------------------------------------------------------------
# Averaging over categories


METRIC_KEYS_FOR_MAD = ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap", "pixel_f1_max", "pixel_aupro")


def mean_over_categories(per_category: dict[str, dict[str, float]], seven_key: str = "mean7") -> tuple[dict[str, float], list[str]]:
    """Unweighted mean of each metric over categories. A category where a metric is NaN (one class
    only) is left out of that metric's mean, and a warning names it; the mean is NaN if none is left.
    The mean of the seven metrics is `mean7` under these (MVTec) definitions; only ADer's evaluator
    (harness.metrics.ader) calls its own mean "mad"."""
    keys = sorted({key for metrics in per_category.values() for key in metrics})
    means, notes = {}, []
    for key in keys:
        values = {category: metrics.get(key, math.nan) for category, metrics in per_category.items()}
        left_out = sorted(c for c, v in values.items() if v is None or math.isnan(v))
        if left_out:
            notes.append(f"{key}: left out of the mean (one class only or no score): {', '.join(left_out)}")
        present = [v for v in values.values() if v is not None and not math.isnan(v)]
        means[key] = float(np.mean(present)) if present else math.nan
    if all(k in means for k in METRIC_KEYS_FOR_MAD):
        means[seven_key] = float(np.mean([means[k] for k in METRIC_KEYS_FOR_MAD]))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return means, notes
