"""GPT-4V-AD as published (zhangzjn/GPT-4V-AD, region_division.py): the prompt texts byte for byte,
the overlay against an independent rendering of the public drawing steps, and the official
division files read without running pickled code."""

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from skimage.segmentation import find_boundaries

from harness.errors import ConfigError
from harness.models.base import ImagePart, TextPart
from harness.asking.prompting import render_parts
from harness.tasks.gpt4vad.task import class_name
from harness.tasks.gpt4vad.region_files import official_file, read_official_masks
from harness.tasks.gpt4vad.regions import SIDE, Division, draw_overlay, grid_division, label_anchor, label_font, masks_from_list

# prompt_describe as the public code writes it (its f-string's \" are plain double quotes)
DESCRIBE = (
    "The image has different region divisions, each distinguished by white edges and each with a unique numerical identifier within the region, "
    "starting from 1. Each region may exhibit anomalies of unknown types, and if any region exhibits an anomaly, the normal image is considered "
    "anomalous. Anomaly scores range from 0 to 1, with higher values indicating a higher probability of an anomaly. Please output the image anomaly "
    "score, as well as the anomaly scores for the regions with anomalies. Provide the answer in the following format: "
    '"image anomaly score: 0.9; region 1: 0.9; region 3: 0.7.". Ignore the region that does not contain anomalies.'
)


@pytest.mark.parametrize(("category", "cls"), [("pcb1", "pcb"), ("metal_nut", "metal_nut"), ("macaroni2", "macaroni"), ("bottle", "bottle"), ("pipe_fryum", "pipe_fryum")])
def test_prompts_are_the_public_texts(category, cls):
    query = {"query": ImagePart(path="q.png")}
    with_class = render_parts("gpt4vad/zero-shot.j2", query, exact=True, class_name=class_name(category))
    assert with_class == [query["query"], TextPart(text=f"This is an image of {cls}. {DESCRIBE}")]
    without = render_parts("gpt4vad/zero-shot-no-class.j2", query, exact=True, class_name=class_name(category))
    assert without == [query["query"], TextPart(text=DESCRIBE)]


def public_overlay(rgb: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """sovle_masks' drawing, step by step: cumulative borders (padded find_boundaries, cropped),
    each label drawn on the running layer, the layer maxed with the borders so far, then every
    layer value above 100 copied onto the image. (textsize is Pillow's old (right, bottom).)"""
    mask_edge = np.zeros_like(rgb)
    layer = np.zeros_like(rgb)
    font = label_font()
    for index, mask in enumerate(masks):
        ys, xs = np.where(mask)
        nearest = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
        xc, yc = xs[nearest], ys[nearest]
        boundaries = find_boundaries(np.pad(mask, 1), mode="inner")[1:-1, 1:-1]
        mask_edge[boundaries] = 255
        image = Image.fromarray(layer)
        draw = ImageDraw.Draw(image)
        _, _, width, height = draw.textbbox((0, 0), str(index + 1), font=font)
        x1, y1 = xc - width // 2, yc - height // 2
        draw.rectangle([(x1, y1 + 2), (x1 + width, y1 + height)], fill=(128, 128, 128))
        draw.text((x1, y1), str(index + 1), font=font, fill=(255, 255, 255))
        layer = np.maximum(np.array(image), mask_edge)
    out = rgb.copy()
    out[layer > 100] = layer[layer > 100]
    return out


def test_overlay_equals_the_public_drawing_on_constructed_masks():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 90, (SIDE, SIDE, 3), dtype=np.uint8)  # dark: every drawn value shows
    masks = [np.zeros((SIDE, SIDE), bool) for _ in range(4)]
    masks[0][:200, :300] = True  # touches the top and left edges
    masks[1][:200, 300:308] = True  # 8 px wide: its label box overflows onto region 1's border
    masks[2][500:, 600:] = True  # the bottom-right corner
    yy, xx = np.mgrid[:SIDE, :SIDE]
    masks[3][(yy - 400) ** 2 + (xx - 300) ** 2 < 80**2] = True  # curved
    division = masks_from_list(masks)
    assert division.count == 4
    ours = np.asarray(draw_overlay(rgb, division))
    assert np.array_equal(ours, public_overlay(rgb, list(division.masks)))
    # the edge frame: a region at the image edge is outlined along it
    assert (ours[0, :300] == 255).all() and (ours[:200, 0] == 255).all() and (ours[SIDE - 1, 600:] == 255).all()
    # the label box of region 2 is wider than the region: region 1's right border stays white over it
    y, x = label_anchor(division.masks[1])
    assert (ours[y, 299] == 255).all()


def test_grid_overlay_equals_the_public_drawing():
    rgb = np.full((SIDE, SIDE, 3), 40, np.uint8)
    division = grid_division(16)
    assert np.array_equal(np.asarray(draw_overlay(rgb, division)), public_overlay(rgb, list(division.masks)))


def official_division_file(path: Path, masks: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(masks=masks), path)  # what region_division.py's sovle_masks writes


def test_official_division_files_are_read_in_their_order(tmp_path):
    masks = [np.zeros((SIDE, SIDE), bool) for _ in range(3)]
    masks[0][:100, :100] = True
    masks[1][200:300, 200:260] = True
    masks[2][700:, 700:] = True
    path = tmp_path / "bottle/test/broken_large/000_sam_masks.pth"
    official_division_file(path, masks)
    read = read_official_masks(path)
    assert len(read) == 3 and all(np.array_equal(a, b) for a, b in zip(read, masks))
    assert official_file(tmp_path, "bottle/test/broken_large/000.png", None) == path
    tensors = tmp_path / "bottle/test/good/001_superpixel_masks.pth"
    official_division_file(tensors, [torch.from_numpy(m) for m in masks])  # tensors load through torch's safe loader
    assert all(np.array_equal(a, b) for a, b in zip(read_official_masks(tensors), masks))
    (tmp_path / "bottle/test/good/001_sam_masks.pth").write_bytes(tensors.read_bytes())
    with pytest.raises(ConfigError, match="official:DIR:METHOD"):
        official_file(tmp_path, "bottle/test/good/001.png", None)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(_Exploit.target),))


def test_a_division_file_that_runs_code_is_refused(tmp_path):
    _Exploit.target = str(tmp_path / "pwned")
    path = tmp_path / "000_sam_masks.pth"
    with zipfile.ZipFile(path, "w") as archive:  # the torch.save layout, with a hostile pickle inside
        archive.writestr("archive/data.pkl", pickle.dumps({"masks": [_Exploit()]}))
        archive.writestr("archive/version", "3\n")
    with pytest.raises(ConfigError, match="refused"):
        read_official_masks(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow  # 9 s: a region run on the official region files
def test_official_regions_drive_a_run(tmp_path, synthetic_set):
    """--regions official:DIR: a run uses exactly the saved regions (here each image's division is
    its own 16×16 grid saved in the public format) and answers like --regions grid:16."""
    import json

    from harness.cli import main
    from harness.tasks.gpt4vad.task import load_region_items, region_subset

    items, _ = load_region_items("synthetic", 0)
    grid = list(grid_division(16).masks)
    for item in region_subset(items, 4, 0):  # the four images --limit 4 draws
        official_division_file(tmp_path / "divisions" / Path(item.id.split("/", 1)[1]).with_suffix("").as_posix().__add__("_grid_masks.pth"), grid)
    for name, regions in (("official", f"official:{tmp_path / 'divisions'}"), ("grid", "grid:16")):
        assert main(["eval", "--task", "gpt4vad", "--model", "oracle", "--regions", regions, "--limit", "4", "--runs-dir", str(tmp_path / "runs"), "--run-id", name, "--quiet"]) == 0
    read = lambda name: [json.loads(line) for line in (tmp_path / "runs" / name / "samples.jsonl").read_text().splitlines()]  # noqa: E731
    assert sorted((r["question_id"], r["regions"], r["reply"]) for r in read("official")) == sorted((r["question_id"], r["regions"], r["reply"]) for r in read("grid"))
    assert Division(np.stack(grid)).count == 256


def test_reports_on_mvtec_show_the_published_zero_shot_rows_only_for_the_whole_test_split(tmp_path, monkeypatch):
    """A GPT-4V-AD run on 3 images of an MVTec AD tree is a subset: the report names it and shows no
    reference row. The same run counted as the whole split (the split's image counts set to this
    tree's, at the one seam that holds them) shows the paper's row (77.1 / 68.0) and the CLIP
    anchors as marked references, and names the metric definitions."""
    from harness.cli import main
    from harness.report import published
    from question_gen.synthetic.writer import SyntheticCounts, write_synthetic_dataset

    root = tmp_path / "mvtec"
    write_synthetic_dataset(root, seed=0, size=96, counts=SyntheticCounts(train_good=2, test_good=1, per_defect=1))
    assert main(["eval", "--task", "gpt4vad", "--model", "oracle", "--data", f"mvtec:{root}", "--regions", "grid:16", "--limit", "3",
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "m", "--quiet", "--metrics", "ader"]) == 0
    assert main(["report", str(tmp_path / "runs/m"), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "77.1" not in text and "AnomalyCLIP" not in text
    assert "Published rows on this dataset are not shown: subset (3 of 1,725 images): not comparable." in text
    table = published._gpt4vad_table()
    answered = {}
    for line in (tmp_path / "runs/m/samples.jsonl").read_text().splitlines():
        category = json.loads(line)["category"]
        answered[category] = answered.get(category, 0) + 1
    monkeypatch.setattr(published, "_gpt4vad_table", lambda: table | {"test_split": {"mvtec": answered}})
    assert main(["report", str(tmp_path / "runs/m"), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "GPT-4V-AD (paper: GPT-4V, SLIC regions) — Zhang et al., arXiv 2311.02612 † | 77.1 |" in text
    assert "AnomalyCLIP (zero-shot CLIP)" in text and "Metrics: ADer's evaluator." in text


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    from harness.testing.tiny_sam import build_tiny_sam

    return build_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


def test_greedy_nms_equals_the_torchvision_rule_on_constructed_boxes():
    from harness.tasks.gpt4vad.sam_regions import _greedy_nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9], [21, 21, 29, 29]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.95, 0.5, 0.8, 0.6])
    # by score: 1 (0.95) kept; 0 overlaps it at IoU 81/119 = 0.68 < 0.7: kept; 3 overlaps 0 at 0.9: dropped;
    # 4 (0.6) kept; 2 (0.5) overlaps 4 at 64/100 = 0.64: kept
    assert _greedy_nms(boxes, scores, 0.7).tolist() == [1, 0, 4, 2]


@pytest.mark.slow  # SAM's automatic mask generator over whole images
def test_sam_regions_through_a_tiny_random_sam(tiny_sam, monkeypatch):
    """The plumbing: SAM's automatic masks (official settings, fewer points here), 768×768 bool
    masks in NMS order, then the official area filter and numbering in that order."""
    import harness.tasks.gpt4vad.sam_regions as sam
    from harness.tasks.gpt4vad.regions import MAX_AREA, MIN_AREA

    monkeypatch.setitem(sam.AUTOMATIC_DEFAULTS, "points_per_crop", 4)  # 16 points instead of 1,024: seconds, not a minute
    rgb = np.random.default_rng(0).integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    loose = sam.sam_masks(rgb, str(tiny_sam), pred_iou_thresh=0.0, stability_score_thresh=0.0)  # random weights: keep everything
    assert loose and all(m.shape == (SIDE, SIDE) and m.dtype == bool for m in loose)
    constructed = loose + [np.pad(np.ones((30, 30), bool), ((0, SIDE - 30), (0, SIDE - 30))), np.pad(np.ones((10, 10), bool), ((0, SIDE - 10), (0, SIDE - 10)))]
    division = masks_from_list(constructed)
    expected = [m for m in constructed if MIN_AREA < m.sum() < MAX_AREA]
    assert division.count == len(expected) and all(np.array_equal(a, b) for a, b in zip(division.masks, expected))
    assert sam.AUTOMATIC_DEFAULTS | {"points_per_crop": 32} == {"points_per_crop": 32, "points_per_batch": 64, "pred_iou_thresh": 0.88, "stability_score_thresh": 0.95,
                                                                 "stability_score_offset": 1, "crops_nms_thresh": 0.7}


def test_a_run_with_sam_regions(tmp_path, tiny_sam, monkeypatch, synthetic_set):
    import json

    import harness.tasks.gpt4vad.sam_regions as sam
    from harness.cli import main

    monkeypatch.setitem(sam.AUTOMATIC_DEFAULTS, "points_per_crop", 4)
    assert main(["eval", "--task", "gpt4vad", "--model", "oracle", "--regions", f"sam:{tiny_sam}", "--limit", "2", "--runs-dir", str(tmp_path / "runs"), "--run-id", "s", "--quiet"]) == 0
    spec = json.loads((tmp_path / "runs/s/spec.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "runs/s/samples.jsonl").read_text().splitlines()]
    assert spec["regions"] == f"sam:{tiny_sam}" and len(rows) == 2 and all(r["parse_status"] == "ok" for r in rows)
