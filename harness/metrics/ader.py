"""ADer's evaluator (zhangzjn/ADer, util/metric.py), for comparing with figures published through it
(e.g. mAD in ViTAD and the zero-shot tables). Its definitions differ from MVTec's (harness.metrics.ad):

- image score: the maximum of the map after a 16×16 stride-1 average pooling (no padding);
  image label: whether the mask has any anomalous pixel;
- image AUROC / AP: scikit-learn's roc_auc_score / average_precision_score; image F1-max: the best
  finite 2PR/(P+R) of precision_recall_curve;
- pixel AUROC / AP: scikit-learn on all pixels of the category (ADer's exact path; its optional
  ADEval path bins in 50 strips on a GPU and is not reproduced);
- pixel F1-max: the category's maps min–max normalised, thresholds 0, 0.05, …, 1 (21), F1 with
  ε = 1e-8 in every ratio, the best of them;
- AUPRO (`cal_pro_score`): 200 thresholds from the map minimum in steps of (max − min)/200, a pixel
  anomalous when above the threshold; PRO = the mean over all 8-connected ground-truth regions of
  the share of the region above it; FPR over all mask-free pixels; points with FPR < 0.3 kept, their
  FPR rescaled min–max to [0, 1] (not divided by 0.3), the trapezoid area. On maps with few distinct
  values this reads far lower than MVTec's AUPRO.
- mAD: the mean of the seven.
Maps and masks are evaluated at ADer's input resolution, 256×256 (nearest-neighbour).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from harness.metrics.ad import image_score_from_map

ADER_SIDE = 256
POOLING = 16
F1_STEP = 0.05
AUPRO_STEPS = 200
AUPRO_FPR_LIMIT = 0.3
EPS = 1e-8
MAD_KEYS = ("image_auroc", "image_ap", "image_f1_max", "pixel_auroc", "pixel_ap", "pixel_f1_max", "pixel_aupro")


def _f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return float(np.max(f1[np.isfinite(f1)]))


def pixel_f1_max(maps: np.ndarray, masks: np.ndarray) -> float:
    span = maps.max() - maps.min()
    normalised = (maps - maps.min()) / span if span else np.zeros_like(maps)
    label_area = masks.sum()
    best = []
    for threshold in np.arange(0.0, 1.0 + 1e-3, F1_STEP):
        predicted = normalised > threshold
        intersect = np.logical_and(masks, predicted).sum()
        precision = intersect / (predicted.sum() + EPS)
        recall = intersect / (label_area + EPS)
        best.append(2 * precision * recall / (precision + recall + EPS))
    return float(max(best))


def ader_aupro(maps: np.ndarray, masks: np.ndarray, steps: int = AUPRO_STEPS, fpr_limit: float = AUPRO_FPR_LIMIT) -> float:
    low, high = float(maps.min()), float(maps.max())
    if high == low or not masks.any():
        return math.nan  # ADer divides by zero here; reported as NaN (left out of the mean, with a note)
    labels = np.zeros(masks.shape, np.int64)
    regions = 0
    for index, mask in enumerate(masks):  # 8-connected regions, numbered across the category
        found, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        labels[index] = np.where(found > 0, found + regions, 0)
        regions += count
    areas = np.bincount(labels.ravel(), minlength=regions + 1)[1:]
    normal_pixels = (~masks).sum()
    pros, fprs = [], []
    for threshold in np.arange(low, high, (high - low) / steps):
        above = maps > threshold
        covered = np.bincount(labels[above], minlength=regions + 1)[1:]
        pros.append(float(np.mean(covered / areas)))
        fprs.append(np.logical_and(~masks, above).sum() / normal_pixels)
    pros, fprs = np.array(pros), np.array(fprs)
    kept = fprs < fpr_limit
    fprs = fprs[kept]
    if fprs.size < 2 or fprs.max() == fprs.min():
        return math.nan
    return float(auc((fprs - fprs.min()) / (fprs.max() - fprs.min()), pros[kept]))


def ader_category_metrics(maps: np.ndarray, masks: np.ndarray, pooling: int = POOLING) -> dict[str, float]:
    """ADer's seven metrics for one category: maps (n, H, W) float, masks (n, H, W) bool."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    image_labels = masks.reshape(len(masks), -1).any(1)
    image_scores = np.array([image_score_from_map(m, "pooled", pooling) for m in maps])
    both = image_labels.any() and not image_labels.all()
    pixels = masks.any() and not masks.all()
    return {
        "image_auroc": float(roc_auc_score(image_labels, image_scores)) if both else math.nan,
        "image_ap": float(average_precision_score(image_labels, image_scores)) if both else math.nan,
        "image_f1_max": _f1_max(image_labels, image_scores) if image_labels.any() else math.nan,
        "pixel_auroc": float(roc_auc_score(masks.ravel(), maps.ravel())) if pixels else math.nan,
        "pixel_ap": float(average_precision_score(masks.ravel(), maps.ravel())) if pixels else math.nan,
        "pixel_f1_max": pixel_f1_max(maps, masks) if masks.any() else math.nan,
        "pixel_aupro": ader_aupro(maps, masks),
    }


def at_ader_resolution(array: np.ndarray) -> np.ndarray:
    """A map or mask at 256×256, nearest-neighbour (GPT-4V-AD maps are piecewise constant)."""
    rows = (np.arange(ADER_SIDE) * array.shape[0] // ADER_SIDE).astype(int)
    cols = (np.arange(ADER_SIDE) * array.shape[1] // ADER_SIDE).astype(int)
    return array[np.ix_(rows, cols)]
