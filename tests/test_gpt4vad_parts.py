"""GPT-4V-AD parts: the reply parser, region division, the overlay, Text2Segmentation."""

import numpy as np
import pytest

from harness.tasks.gpt4vad.region_parsing import parse_region_reply
from tests.region_replies import REGION_REPLIES
from harness.tasks.gpt4vad.regions import (
    MAX_AREA,
    MIN_AREA,
    SIDE,
    Division,
    draw_overlay,
    grid_division,
    label_anchor,
    masks_division,
    overlapping_regions,
    slic_division,
    text_to_segmentation,
)

@pytest.mark.parametrize(("reply", "image", "regions"), REGION_REPLIES)
def test_region_reply_parser_reads_what_the_model_meant(reply, image, regions):
    parsed = parse_region_reply(reply, region_count=10)
    if image is None:
        assert parsed.status == "unparsable" and parsed.reasons
    else:
        assert parsed.status == "ok" and parsed.image_score == pytest.approx(image)
        assert parsed.region_scores == pytest.approx(regions)


@pytest.mark.parametrize(("reply", "reason"), [
    ("image anomaly score: 0.9; anomalous regions: 2, 5", "named as anomalous without a score"),
    ("image anomaly score: 0.9; region 42: 0.9; region 2: 0.5", "do not exist"),
    ("region 3: 0.7; region 1: 0.4", "no image score given"),
    ("image anomaly score: 0.9; region 2: 0.3; region 2: 0.8", "scored twice"),
    ("image anomaly score: 0.9; region 4: 7", "states no scale: ambiguous, not used"),
    ("On a scale of 0 to 10: image anomaly score: 8; region 4: 7", "read on the reply's 0-10 scale"),
    ("Image anomaly score: 0.1. Region 5 appears normal.", "called normal"),
])
def test_every_liberty_is_recorded(reply, reason):
    parsed = parse_region_reply(reply, region_count=10)
    assert any(reason in r for r in parsed.reasons), parsed.reasons


def test_the_exact_format_takes_no_liberty():
    assert parse_region_reply("image anomaly score: 0.9; region 1: 0.9; region 3: 0.7.", region_count=10).reasons == []


def test_grid_division_numbers_row_major_and_filters_area():
    division = grid_division(16)  # 48 px cells: 2,304 px each, inside the area filter
    assert division.count == 256 and division.masks[0][0, 0] and division.masks[1][0, 48]
    assert grid_division(2).count == 0  # 384 px cells are 147,456 px: over the 120,000 px limit
    assert grid_division(40).count == 0  # 19 px cells are under 600 px


def test_slic_division_covers_the_image_in_kept_regions(synthetic_set):
    from harness.tasks.gpt4vad.regions import load_square

    rgb = load_square(synthetic_set / "Synthetic/brick/test/crack/000.png")
    division = slic_division(rgb)
    areas = division.masks.sum(axis=(1, 2))
    assert 20 <= division.count <= 80 and (areas > MIN_AREA).all() and (areas < MAX_AREA).all()
    assert not (division.masks.sum(0) > 1).any()  # superpixels do not overlap
    assert (slic_division(rgb).masks == division.masks).all()  # deterministic


def test_user_masks_as_label_map_and_npz(tmp_path):
    from PIL import Image

    labels = np.zeros((100, 100), np.uint8)
    labels[:30, :30], labels[60:90, 60:90] = 1, 2  # 230 px squares at 768: inside the area filter
    Image.fromarray(labels).save(tmp_path / "labels.png")
    assert masks_division(tmp_path / "labels.png").count == 2
    stack = np.zeros((3, 100, 100), bool)
    stack[0, :40, :40] = stack[1, 30:70, 30:70] = True  # overlapping, as SAM's masks may be
    stack[2, 0, 0] = True  # too small once resized: filtered out
    np.savez(tmp_path / "masks.npz", masks=stack)
    division = masks_division(tmp_path / "masks.npz")
    assert division.count == 2 and (division.masks.sum(0) == 2).any()


def test_overlay_draws_borders_and_numbers_inside_regions():
    rgb = np.zeros((SIDE, SIDE, 3), np.uint8)
    ring = np.zeros((SIDE, SIDE), bool)  # a C-shaped region: its centroid lies outside it
    ring[100:400, 100:400] = True
    ring[150:350, 150:400] = False
    division = Division(np.stack([ring]))
    y, x = label_anchor(ring)
    assert ring[y, x]
    overlay = np.asarray(draw_overlay(rgb, division))
    assert (overlay[100, 100:400] == 255).all()  # the white inner border
    box = overlay[y - 4 : y + 5, x - 4 : x + 5]
    assert ((box == 128).all(axis=-1)).any() and (box.min(axis=-1) > 200).any()  # grey box, white (anti-aliased) digit


def test_text_to_segmentation_takes_the_max_and_resizes():
    masks = np.zeros((2, SIDE, SIDE), bool)
    masks[0, :384], masks[1, 300:500] = True, True
    division = Division(masks)
    anomaly_map = text_to_segmentation(division, {1: 0.4, 2: 0.9}, (256, 256))
    assert anomaly_map.shape == (256, 256)
    assert anomaly_map[0, 0] == pytest.approx(0.4) and anomaly_map[110, 0] == pytest.approx(0.9) and anomaly_map[200, 0] == 0.0


def test_overlapping_regions_for_the_oracle():
    division = grid_division(16)
    mask = np.zeros((256, 256), bool)
    mask[0:10, 0:10] = True  # inside the first 48 px cell once scaled to 768
    assert overlapping_regions(division, mask) == [1]
