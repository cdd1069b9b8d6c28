"""GPT-4V-AD's SAM region division (`--regions sam[:MODEL]`): Segment Anything's automatic mask
generation on the 768×768 image, through transformers' SamModel and its mask-generation pipeline.

The settings are segment-anything's SamAutomaticMaskGenerator defaults, which the public code used
(`SamAutomaticMaskGenerator(sam)`): a 32×32 point grid over one crop, 64 points a batch, predicted
IoU ≥ 0.88, stability score ≥ 0.95 (offset 1), box NMS at IoU 0.7, no small-region clean-up. The
masks come out in NMS order (highest predicted IoU first); region_division.py then keeps
600 < area < 120,000 px and numbers them in that order, as `regions._keep` does.

transformers' last step (NMS) imports torchvision; where torchvision cannot be installed (a CPU-only
machine) the same greedy NMS runs in plain torch (`_greedy_nms`), the rest of the pipeline unchanged.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from harness.errors import ConfigError

DEFAULT_SAM = "facebook/sam-vit-huge"  # the ViT-H of the public code (sam_vit_h_4b8939.pth)
AUTOMATIC_DEFAULTS = {
    "points_per_crop": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1,
    "crops_nms_thresh": 0.7,
}
_LOCK = threading.Lock()  # one image at a time through a loaded model


def _greedy_nms(boxes, scores, iou_threshold: float):
    """torchvision.ops.nms: highest score first, dropping boxes whose IoU with a kept one exceeds
    the threshold. Returns kept indices by decreasing score."""
    import torch

    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes.float()
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    keep, suppressed = [], torch.zeros(len(boxes), dtype=torch.bool)
    for index in order.tolist():
        if suppressed[index]:
            continue
        keep.append(index)
        top_left = torch.maximum(boxes[index, :2], boxes[:, :2])
        bottom_right = torch.minimum(boxes[index, 2:], boxes[:, 2:])
        inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
        iou = inter / (areas[index] + areas - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def _rle_to_mask(rle: dict) -> np.ndarray:
    height, width = rle["size"]
    flat = np.zeros(height * width, dtype=bool)
    position, value = 0, False
    for count in rle["counts"]:
        flat[position : position + count] = value
        position += count
        value = not value
    return flat.reshape(width, height).T  # column-major runs, as COCO's RLE


def _post_process_without_torchvision(self, all_masks, all_scores, all_boxes, crops_nms_thresh):
    keep = _greedy_nms(all_boxes, all_scores, crops_nms_thresh)
    scores = all_scores[keep]
    rle = [all_masks[i] for i in keep.tolist()]
    return [_rle_to_mask(r) for r in rle], scores, rle, all_boxes[keep]


@lru_cache(maxsize=2)
def _generator(model: str, device: str):
    try:
        import transformers
        from transformers import SamModel
    except ImportError:
        raise ConfigError("--regions sam needs transformers and torch: pip install -e '.[hf]'") from None
    from harness.models.hf_processors import torchvision_available

    try:
        image_processor = transformers.AutoImageProcessor.from_pretrained(model)
        sam = SamModel.from_pretrained(model).to(device).eval()
    except (OSError, ValueError) as error:
        raise ConfigError(f"--regions sam:{model}: cannot load a SAM model ({error})") from None
    if not torchvision_available():
        image_processor.__class__ = type(f"{type(image_processor).__name__}NoTorchvision", (type(image_processor),), {"post_process_for_mask_generation": _post_process_without_torchvision})
    return transformers.pipeline("mask-generation", model=sam, image_processor=image_processor, device=device)


def sam_masks(rgb: np.ndarray, model: str = DEFAULT_SAM, device: str = "cpu", **overrides) -> list[np.ndarray]:
    """SAM's automatic masks of an RGB image, in generation (NMS) order, as bool arrays."""
    from PIL import Image

    settings = AUTOMATIC_DEFAULTS | overrides
    with _LOCK:
        output = _generator(model, device)(Image.fromarray(rgb), **settings)
    return [np.asarray(mask, dtype=bool) for mask in output["masks"]]
