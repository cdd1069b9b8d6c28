"""Defect boxes: its kind, the box formats, the box parser, mIoU and ACC@IoU, its report sections."""
