"""A straightforward rendering of MVTec AD's official AUPRO, for cross-checking harness.metrics.ad:
per-pixel argsort, cumulative sums, last point of tied runs, (0,0)…(1,1), trapezoid to 0.3."""

import bisect

import numpy as np
from scipy import ndimage


def reference_aupro(maps, masks, limit=0.3):
    scores, normal, weights = [], [], []
    regions = 0
    for anomaly_map, mask in zip(maps, masks):
        labelled, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += count
        w = np.zeros(mask.shape)
        for region in range(1, count + 1):
            w[labelled == region] = 1.0 / (labelled == region).sum()
        scores.append(anomaly_map.ravel())
        normal.append(~mask.ravel())
        weights.append(w.ravel())
    scores, normal, weights = np.concatenate(scores), np.concatenate(normal), np.concatenate(weights)
    order = np.argsort(scores, kind="mergesort")[::-1]
    s, n, w = scores[order], normal[order], weights[order]
    fpr = np.cumsum(n) / n.sum()
    pro = np.cumsum(w) / regions
    keep = np.append(np.diff(s) != 0, True)
    x = np.concatenate(([0.0], np.clip(fpr[keep], None, 1), [1.0]))
    y = np.concatenate(([0.0], np.clip(pro[keep], None, 1), [1.0]))
    correction = 0.0
    if limit not in x:
        ins = bisect.bisect(list(x), limit)
        y_at = y[ins - 1] + (y[ins] - y[ins - 1]) * (limit - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_at + y[ins - 1]) * (limit - x[ins - 1])
    inside = x <= limit
    xs, ys = x[inside], y[inside]
    return (np.sum(0.5 * (ys[1:] + ys[:-1]) * (xs[1:] - xs[:-1])) + correction) / limit
