"""Box localisation: the parser on real-looking replies, IoU and matching against hand-computed
values, true boxes from masks, and whole runs (oracle 100, expert, an API model over HTTP, MMAD data)."""

import json

import numpy as np
import pytest

from harness.cli import main
from harness.metrics.boxes import BoxOutcome, box_metrics, image_iou, iou_matrix, mask_boxes, matched_ious
from harness.tasks.bbox.task import box_formats, pick_box_format
from harness.tasks.bbox.parsing import parse_box_reply
from tests.box_replies import ORIGINAL, REPLIES, SENT


@pytest.mark.parametrize("reply, name, expected, no_defect, reason", REPLIES)
def test_box_reply_table(reply, name, expected, no_defect, reason):
    parsed = parse_box_reply(reply, box_formats()[name].convention, SENT, ORIGINAL)
    if expected is None:
        assert parsed.status == "unparsable" and reason in parsed.reasons[0]
        return
    assert parsed.status == "ok", parsed.reasons
    assert np.allclose(parsed.boxes, expected) if expected else parsed.boxes == []
    assert parsed.said_no_defect == no_defect
    if reason:
        assert any(reason in r for r in parsed.reasons), parsed.reasons
    else:
        assert not parsed.reasons


def test_the_table_is_large_enough():
    assert len(REPLIES) >= 30


def test_iou_and_matching_by_hand():
    # A = [0,0,10,10] (100), B = [5,5,15,15] (100): overlap 5×5 = 25, union 175 → 1/7
    assert iou_matrix([(0, 0, 10, 10)], [(5, 5, 15, 15)])[0, 0] == pytest.approx(25 / 175)
    # C = [0,0,10,20] (200) against A: overlap 100, union 200 → 0.5; disjoint → 0
    assert iou_matrix([(0, 0, 10, 10), (50, 50, 60, 60)], [(0, 0, 10, 20)]).tolist() == [[0.5], [0.0]]
    # Two predictions, two truths: the greedy pair (P1-T1, 0.5) would leave P2-T2 at 0; the
    # assignment that maximises the sum pairs P1-T2 (1.0) and P2-T1 (0.5): 1.5, not 0.5 + 0.
    predicted = [(0, 0, 10, 10), (0, 0, 10, 20)]
    truth = [(0, 0, 10, 20), (0, 0, 10, 10)]
    assert sorted(matched_ious(predicted, truth).tolist()) == [1.0, 1.0]
    p = [(0, 0, 10, 20), (100, 100, 110, 110)]
    t = [(0, 0, 10, 10), (0, 0, 10, 20)]
    # P1 with T2 = 1.0, P2 with T1 = 0 → matched sum 1.0 over max(2, 2) → 0.5
    assert image_iou(p, t) == pytest.approx(0.5)
    # one true box, two predictions (one exact, one extra): 1.0 / 2
    assert image_iou([(0, 0, 10, 10), (20, 20, 30, 30)], [(0, 0, 10, 10)]) == pytest.approx(0.5)
    assert image_iou([], [(0, 0, 10, 10)]) == 0.0 and image_iou([], []) == 1.0


def test_run_metrics_by_hand():
    outcomes = [
        BoxOutcome(((0, 0, 10, 10),), ((0, 0, 10, 10),)),  # IoU 1
        BoxOutcome(((0, 0, 10, 10),), ((5, 5, 15, 15),)),  # IoU 1/7 ≈ 0.143
        BoxOutcome(((0, 0, 10, 20),), ((0, 0, 10, 10),)),  # IoU 0.5
        BoxOutcome(((0, 0, 10, 10),), (), readable=False),  # unreadable: no box, a miss
        BoxOutcome((), ()),  # normal, said clean
        BoxOutcome((), ((1, 1, 5, 5),)),  # normal, a box invented
    ]
    m = box_metrics(outcomes)
    assert m["mIoU"] == pytest.approx(100 * (1 + 1 / 7 + 0.5 + 0) / 4)
    assert m["ACC@0.3"] == 50.0 and m["ACC@0.5"] == 50.0  # 1.0 and 0.5 reach both; 1/7 and 0 neither
    assert m["box_precision@0.5"] == pytest.approx(100 * 2 / 4)  # matched ≥ .5: 2 of 4 predicted boxes
    assert m["box_recall@0.5"] == pytest.approx(100 * 2 / 4)  # of 4 true boxes
    # detection: anomalous called defective 3 of 4, normal called clean 1 of 2 → (75 + 50) / 2
    assert m["detection_balanced_accuracy"] == pytest.approx(62.5) and m["unreadable"] == 1


def test_true_boxes_from_a_mask_merge_near_parts_and_drop_specks():
    mask = np.zeros((100, 200), bool)
    mask[10:20, 10:40] = True
    mask[10:20, 41:60] = True  # one clean column apart (gap 1 px < 2% of 100 = 2 px): one scratch
    mask[60:80, 150:170] = True  # far away: its own box
    mask[95, 5:7] = True  # a 2-pixel speck: dropped
    assert mask_boxes(mask) == [(10.0, 10.0, 60.0, 20.0), (150.0, 60.0, 170.0, 80.0)]
    assert mask_boxes(np.zeros((10, 10), bool)) == []


def test_box_format_is_picked_by_family_and_overridable():
    assert pick_box_format("hf/Qwen/Qwen2.5-VL-7B-Instruct").name == "qwen2.5-vl"
    assert pick_box_format("openai/gpt-4o").name == "norm1000"
    assert pick_box_format("hf/Qwen/Qwen2.5-VL-7B-Instruct", "norm1000").name == "norm1000"
    with pytest.raises(Exception, match="--box-format 'pixels': use one of"):
        pick_box_format("x", "pixels")


def _summary(tmp_path, *args) -> tuple[dict, list[dict]]:
    before = set((tmp_path / "runs").glob("*")) if (tmp_path / "runs").is_dir() else set()
    assert main(["eval", "--task", "bbox", "--runs-dir", str(tmp_path / "runs"), "--quiet", *args]) == 0
    (folder,) = set((tmp_path / "runs").glob("*")) - before
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    return json.loads((folder / "summary.json").read_text()), samples


@pytest.mark.parametrize("box_format", ["norm1000", "qwen2.5-vl"])
def test_oracle_scores_100_on_the_synthetic_set(tmp_path, synthetic_set, box_format):
    summary, samples = _summary(tmp_path, "--model", "oracle", "--box-format", box_format)
    overall = summary["box_metrics"]["overall"]
    assert overall["images"] == 105 and overall["anomalous_images"] == 63
    for key in ("mIoU", "ACC@0.3", "ACC@0.5", "box_precision@0.5", "box_recall@0.5", "detection_balanced_accuracy"):
        assert overall[key] == pytest.approx(100.0), key
    assert all((tmp_path / "runs").glob("*/box_overlays/*.png"))
    (folder,) = (tmp_path / "runs").iterdir()
    assert main(["score", str(folder)]) == 0  # re-scored from the samples: the same figures
    assert json.loads((folder / "summary.json").read_text())["box_metrics"] == summary["box_metrics"]
    assert main(["export", str(folder)]) == 2  # MMAD's answers format is for multiple choice


@pytest.mark.slow  # 5 s: the expert's maps over a whole set (box parsing and scoring stay in the fast tier)
def test_the_expert_gives_boxes_from_its_map(tmp_path, synthetic_set):
    summary, samples = _summary(tmp_path, "--model", "expert/patchknn", "--limit", "40")
    overall = summary["box_metrics"]["overall"]
    assert overall["mIoU"] > 10 and overall["detection_balanced_accuracy"] > 60  # a weak but real localiser
    assert {s["parse_status"] for s in samples} == {"ok"}
    (folder,) = (tmp_path / "runs").iterdir()
    assert main(["report", str(folder), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Defect boxes: expert/patchknn" in page and 'alt="true and predicted boxes"' in page  # the gallery draws both


def test_a_local_hf_model_answers_box_requests(tmp_path, synthetic_set, tiny_models):
    """A random tiny Qwen2-VL writes no boxes: every reply is read as unreadable or empty, and the
    run still scores (strict: unreadable = a missed call)."""
    summary, samples = _summary(tmp_path, "--model", f"hf/{tiny_models['qwen2_vl']}", "--limit", "2", "--max-new-tokens", "8")
    assert summary["n_samples"] == 2 and {s["parse_status"] for s in samples} <= {"ok", "unparsable"}
    assert summary["box_metrics"]["overall"]["images"] == 2


def test_an_api_model_over_http_gets_the_family_prompt_and_image(tmp_path, synthetic_set, server):
    """Qwen2.5-VL over an OpenAI-compatible server (the real openai client): the pixel prompt names
    the size the image is sent at (256 px → 252, multiples of 28, and the PNG the server decodes is
    that size), and pixel boxes come back in the original frame."""

    def reply(prompt, images):
        assert images == 1 and "The image is 252x252 pixels" in prompt and '"bbox_2d"' in prompt
        return 'Sure: [{"bbox_2d": [0, 0, 126, 126], "label": "defect"}]'

    running = server(responder=reply)
    summary, samples = _summary(tmp_path, "--model", "openai/Qwen/Qwen2.5-VL-7B-Instruct", "--base-url", running.base_url, "--limit", "3")
    assert running.app.state.image_sizes == [[(252, 252)]] * 3
    assert all(s["boxes"] == [[0.0, 0.0, 128.0, 128.0]] for s in samples)  # 126/252 of 256 px
    assert summary["n_samples"] == 3 and json.loads((next((tmp_path / "runs").iterdir()) / "spec.json").read_text())["box_format"] == "qwen2.5-vl"


def test_mmad_data_masks_give_the_boxes(tmp_path, mmad_tree):
    summary, samples = _summary(tmp_path, "--model", "oracle", "--data", f"mmad:{mmad_tree / 'mmad.json'}")
    anomalous = [s for s in samples if s["label"] == "anomaly"]
    assert anomalous and all(s["truth"] for s in anomalous)
    assert summary["box_metrics"]["overall"]["mIoU"] == pytest.approx(100.0)
