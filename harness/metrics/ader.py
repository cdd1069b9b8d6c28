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
- AUPRO (`cal_pro_score`): 100 thresholds from the map minimum in steps of (max − min)/100 (every one
  of ADer's evaluator configs passes max_step_aupro=100; the function's own default is 200), a pixel
  anomalous when above the threshold; PRO = the mean over all 8-connected ground-truth regions of
  the share of the region above it; FPR over all mask-free pixels; points with FPR < 0.3 kept, their
  FPR rescaled min–max to [0, 1] (not divided by 0.3), the trapezoid area. On maps with few distinct
  values this reads far lower than MVTec's AUPRO.
- mAD: the mean of the seven.
Maps and masks are evaluated at ADer's input resolution, 256×256 (nearest-neighbour).

ADer's configs set its evaluator two ways, both offered: `ader` (pooling 16, the exact pixel path
above, 100 AUPRO steps) and `ader-adeval` (no pooling; pixel AUROC, AP and AUPRO from the ADEval
package's 50-strip histograms: trapezoids over the strip edges, AUPRO with ADEval's interpolation
at FPR 0.3). ADEval runs in float32 on a GPU; here float64, so a value on a strip edge can fall on
the other side there.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from harness.metrics.ad import image_score_from_map, resize_nearest

ADER_SIDE = 256
POOLING = 16
F1_STEP = 0.05
AUPRO_STEPS = 100  # max_step_aupro in all of ADer's evaluator configs
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


def ader_category_metrics(maps: np.ndarray, masks: np.ndarray, pooling: int | None = POOLING, adeval: bool = False) -> dict[str, float]:
    """ADer's seven metrics for one category: maps (n, H, W) float, masks (n, H, W) bool. With
    `adeval`, pixel AUROC, AP and AUPRO come from ADEval's 50 strips (ADer's use_adeval=True)."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    image_labels = masks.reshape(len(masks), -1).any(1)
    image_scores = np.array([image_score_from_map(m, "pooled", pooling) if pooling else float(m.max()) for m in maps])
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
    } | (adeval_pixel_metrics(maps, masks) if adeval else {})


def at_ader_resolution(array: np.ndarray) -> np.ndarray:
    """A map or mask at 256×256, nearest-neighbour (GPT-4V-AD maps are piecewise constant)."""
    return resize_nearest(array, (ADER_SIDE, ADER_SIDE))


# ---------------------------------------------------------------------------------------------
# ADer's use_adeval=True path: ADEval's EvalAccumulatorCuda with 50 strips between the category's
# map minimum and maximum, for pixel AUROC, AP and AUPRO (image metrics stay scikit-learn's).

ADEVAL_STRIPS = 50


def _strip_counts(values: np.ndarray, low: float, high: float, strips: int, weights: np.ndarray | None = None) -> np.ndarray:
    """ADEval's histogram: [below low] + torch.histc's `strips` equal bins over [low, high] (the top
    edge inside the last bin) + [at or above high]. A value equal to `high` is therefore counted
    twice, once in the last bin and once in the overflow, as ADEval does."""
    weights = np.ones_like(values) if weights is None else weights
    counts = np.zeros(strips + 2)
    inside = (values >= low) & (values <= high)
    # torch.histc's order of operations, (x − low) · strips / (high − low): dividing first rounds
    # some values on a strip edge into the strip below
    bins = np.minimum(((values[inside] - low) * strips / (high - low)).astype(np.int64), strips - 1)
    np.add.at(counts, 1 + bins, weights[inside])
    counts[0] = weights[values < low].sum()
    counts[-1] = weights[values >= high].sum()
    return counts


def _curve(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(tp, fp) at each strip edge (everything in the strips above it counts as anomalous), and the
    totals of negatives and positives."""
    below_pos, total_pos = np.cumsum(positive)[:-1], positive.sum()
    below_neg, total_neg = np.cumsum(negative)[:-1], negative.sum()
    return total_pos - below_pos, total_neg - below_neg, float(total_neg), float(total_pos)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def _interpolated_tail(share: float, area: float, y1: float, y2: float) -> float:
    """ADEval's part of the trapezoid that straddles FPR 0.3: a rectangle and a triangle, scaled."""
    rect = y1 / (y1 + 0.5 * (y2 - y1)) if y1 + 0.5 * (y2 - y1) else 0.0
    return area * rect * share + area * (1 - rect) * share * share


def adeval_pixel_metrics(maps: np.ndarray, masks: np.ndarray, strips: int = ADEVAL_STRIPS, fpr_limit: float = AUPRO_FPR_LIMIT) -> dict[str, float]:
    low, high = float(maps.min()), float(maps.max())
    if high <= low or not masks.any() or masks.all():
        return {"pixel_auroc": math.nan, "pixel_ap": math.nan, "pixel_aupro": math.nan}
    weights = np.ones(maps.shape)
    for index, mask in enumerate(masks):  # 1/area of each 8-connected region on its pixels
        found, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        if count:
            areas = np.bincount(found.ravel())
            weights[index][mask] = 1.0 / areas[found[mask]]
    positive, negative = maps[masks], maps[~masks]
    tp, fp, n, p = _curve(_strip_counts(positive, low, high, strips), _strip_counts(negative, low, high, strips))
    tpr, fpr = tp / p, fp / n
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)  # no predicted positive: precision 1
    wtp, wfp, wn, wp = _curve(_strip_counts(positive, low, high, strips, weights[masks]), _strip_counts(negative, low, high, strips))
    pro, wfpr = wtp / wp, wfp / wn
    below = wfpr <= fpr_limit
    lo_pro, lo_fpr = pro[below][::-1], wfpr[below][::-1]
    hi_pro, hi_fpr = pro[~below][::-1], wfpr[~below][::-1]
    lo, hi, total = _trapezoid(lo_pro, lo_fpr), _trapezoid(hi_pro, hi_fpr), _trapezoid(pro[::-1], wfpr[::-1])
    aupro = (lo + _interpolated_tail((fpr_limit - lo_fpr[-1]) / (hi_fpr[0] - lo_fpr[-1]), total - (lo + hi), lo_pro[-1], hi_pro[0])) / fpr_limit if len(lo_fpr) and len(hi_fpr) else math.nan
    return {"pixel_auroc": _trapezoid(tpr[::-1], fpr[::-1]), "pixel_ap": _trapezoid(precision[::-1], tpr[::-1]), "pixel_aupro": aupro}
