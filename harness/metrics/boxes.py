"""Box localisation metrics: small pure functions over arrays (`--task bbox`).

Boxes are (x1, y1, x2, y2) in the original image's pixels, x2/y2 exclusive, so a box's area is
(x2 - x1) * (y2 - y1). Per image, predicted and true boxes are matched one to one to maximise the
summed IoU (the Hungarian algorithm, scipy's linear_sum_assignment). Then:

- image IoU: the matched IoUs summed over max(#predicted, #true): a missed defect and an invented
  box both cost; 0 when either side is empty and the other not (images without true boxes get none);
- mIoU: the mean image IoU over anomalous images (those with true boxes);
- ACC@IoU t: the share of anomalous images whose image IoU is at least t (0.3, 0.5);
- box precision / recall at IoU 0.5: matched pairs with IoU >= 0.5 over all predicted boxes (normal
  images included) / over all true boxes;
- detection: an image is called defective when at least one box is given; balanced accuracy is the
  mean of the recall on anomalous and on normal images (only where both are present). An answer that
  could not be read is a wrong call for its image and gives no box.
All figures are percentages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]
# Components smaller than this are specks, not defects (the question generator's MIN_COMPONENT_PIXELS).
MIN_COMPONENT_PIXELS = 5
# Components closer than this share of the image's shorter side are one defect (one box).
MERGE_GAP = 0.02
ACC_THRESHOLDS = (0.3, 0.5)
MATCH_IOU = 0.5


def iou_matrix(predicted: Sequence[Box], truth: Sequence[Box]) -> np.ndarray:
    """IoU of every predicted box (rows) with every true box (columns)."""
    if not len(predicted) or not len(truth):
        return np.zeros((len(predicted), len(truth)))
    p, t = np.asarray(predicted, float)[:, None, :], np.asarray(truth, float)[None, :, :]
    width = np.clip(np.minimum(p[..., 2], t[..., 2]) - np.maximum(p[..., 0], t[..., 0]), 0, None)
    height = np.clip(np.minimum(p[..., 3], t[..., 3]) - np.maximum(p[..., 1], t[..., 1]), 0, None)
    inter = width * height
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(p) + area(t) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def matched_ious(predicted: Sequence[Box], truth: Sequence[Box]) -> np.ndarray:
    """The IoUs of the one-to-one matching that maximises their sum."""
    from scipy.optimize import linear_sum_assignment

    ious = iou_matrix(predicted, truth)
    if ious.size == 0:
        return np.zeros(0)
    rows, cols = linear_sum_assignment(ious, maximize=True)
    return ious[rows, cols]


def image_iou(predicted: Sequence[Box], truth: Sequence[Box], matched: np.ndarray | None = None) -> float:
    """Matched IoUs summed over max(#predicted, #true); pass `matched` when already computed."""
    if not len(predicted) and not len(truth):
        return 1.0
    matched = matched_ious(predicted, truth) if matched is None else matched
    return float(matched.sum()) / max(len(predicted), len(truth))


@dataclass(frozen=True)
class BoxOutcome:
    """One image's answer: its true boxes, the predicted ones, and whether the reply was read."""

    truth: tuple[Box, ...]
    predicted: tuple[Box, ...]
    readable: bool = True


def box_metrics(outcomes: Sequence[BoxOutcome]) -> dict:
    """The figures above over a list of images (a category, or all); one matching per image."""
    anomalous = [o for o in outcomes if o.truth]
    normal = [o for o in outcomes if not o.truth]
    scores, hits = [], 0
    for outcome in anomalous:
        matched = matched_ious(outcome.predicted, outcome.truth) if outcome.predicted else np.zeros(0)
        scores.append(image_iou(outcome.predicted, outcome.truth, matched))
        hits += int((matched >= MATCH_IOU).sum())
    ious = np.array(scores)
    n_predicted, n_true = sum(len(o.predicted) for o in outcomes), sum(len(o.truth) for o in outcomes)
    said_defect = lambda o: o.readable and bool(o.predicted)  # noqa: E731
    said_clean = lambda o: o.readable and not o.predicted  # noqa: E731
    recall_anomalous = 100.0 * sum(map(said_defect, anomalous)) / len(anomalous) if anomalous else None
    recall_normal = 100.0 * sum(map(said_clean, normal)) / len(normal) if normal else None
    return {
        "images": len(outcomes),
        "anomalous_images": len(anomalous),
        "mIoU": 100.0 * float(ious.mean()) if anomalous else None,
        **{f"ACC@{t}": (100.0 * float((ious >= t).mean()) if anomalous else None) for t in ACC_THRESHOLDS},
        "box_precision@0.5": 100.0 * hits / n_predicted if n_predicted else None,
        "box_recall@0.5": 100.0 * hits / n_true if n_true else None,
        "detection_balanced_accuracy": (recall_anomalous + recall_normal) / 2 if anomalous and normal else None,
        "unreadable": sum(not o.readable for o in outcomes),
    }


def mask_boxes(mask: np.ndarray, min_pixels: int = MIN_COMPONENT_PIXELS, merge_gap: float = MERGE_GAP) -> list[Box]:
    """True boxes of a binary mask: its 8-connected components' bounding boxes, specks under
    `min_pixels` dropped (as the question generator does), and boxes that overlap or lie within
    `merge_gap` × the shorter image side of each other merged, repeatedly, into their union
    (a scratch broken by one clean pixel is one defect)."""
    from skimage import measure

    labels = measure.label(mask > 0, connectivity=2)
    boxes = [(float(r.bbox[1]), float(r.bbox[0]), float(r.bbox[3]), float(r.bbox[2])) for r in measure.regionprops(labels) if r.area >= min_pixels]
    gap = merge_gap * min(mask.shape)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes)
