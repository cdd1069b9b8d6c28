"""GoodsAD and DS-MVTec readers, every bad input named (warnings, --strict), and the quality report."""

import json

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.errors import DataError
from question_gen.quality import quality_report
from harness.adsets.layouts import read_ds_mvtec_layout, read_goodsad_layout
from tests.conftest import write_mask


def _textured(path, seed, size=64):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((size, size, 3)) * 60 + 100).astype(np.uint8)).save(path)


def _goodsad(root):
    for i in range(2):
        _textured(root / f"drink_bottle/train/good/{i:03d}.jpg", i)
    _textured(root / "drink_bottle/test/good/000.jpg", 5)
    _textured(root / "drink_bottle/test/scratch/000.jpg", 6)
    write_mask(root / "drink_bottle/ground_truth/scratch/000.png", (5, 5, 30, 12), size=64)  # named like the image


def test_goodsad_reader_and_generation(tmp_path):
    root = tmp_path / "GoodsAD"
    _goodsad(root)
    (category,) = read_goodsad_layout(root)
    (anomaly,) = [i for i in category.test if i.label == "anomaly"]
    assert anomaly.mask_paths == ("drink_bottle/ground_truth/scratch/000.png",)
    assert main(["generate", "--source", f"goodsad:{root}", "--out", str(tmp_path / "set")]) == 0
    data = json.loads((tmp_path / "set/mmad.json").read_text())
    record = data["GoodsAD/drink_bottle/test/scratch/000.jpg"]
    assert record["mask_path"] == "ground_truth/scratch/000.png"
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0


@pytest.mark.parametrize("mask_folder", ["mask", "rgb_mask", "rbg_mask"])
def test_ds_mvtec_reader_with_each_mask_folder(tmp_path, mask_folder):
    root = tmp_path / "DS-MVTec"
    for i in range(4):
        _textured(root / f"bottle/image/good/{i:03d}.png", i)
    _textured(root / "bottle/image/broken_large/000.png", 9)
    mask = np.zeros((64, 64, 3), dtype=np.uint8)
    mask[25:38, 25:38] = (0, 128, 255)  # a coloured mask: non-black is defect
    (root / f"bottle/{mask_folder}/broken_large").mkdir(parents=True)
    Image.fromarray(mask).save(root / f"bottle/{mask_folder}/broken_large/000.png")
    (category,) = read_ds_mvtec_layout(root)
    assert category.train_good == ["bottle/image/good/000.png", "bottle/image/good/001.png"]  # first half: templates
    assert [i.path for i in category.test if i.label == "normal"] == ["bottle/image/good/002.png", "bottle/image/good/003.png"]
    (anomaly,) = [i for i in category.test if i.label == "anomaly"]
    assert anomaly.mask_paths == (f"bottle/{mask_folder}/broken_large/000.png",)
    assert main(["generate", "--source", f"dsmvtec:{root}", "--out", str(tmp_path / "set")]) == 0
    record = json.loads((tmp_path / "set/mmad.json").read_text())["DS-MVTec/bottle/image/broken_large/000.png"]
    description = next(q for q in record["conversation"] if q["type"] == "Defect Localization")
    assert description["Options"][description["Answer"]]  # located from the coloured mask


def test_ds_mvtec_anomaly_without_mask_is_named(tmp_path):
    root = tmp_path / "DS-MVTec"
    for i in range(2):
        _textured(root / f"cable/image/good/{i:03d}.png", i)
    _textured(root / "cable/image/cut/007.png", 3)
    with pytest.raises(DataError, match=r"cut/007.png: anomalous image without its mask"):
        read_ds_mvtec_layout(root)


def test_bad_inputs_are_warnings_listed_in_the_report_or_errors_with_strict(tmp_path, capsys):
    root = tmp_path / "mvtec"
    for i in range(2):
        _textured(root / f"widget/train/good/{i:03d}.png", i)
    _textured(root / "widget/test/good/000.png", 4)
    (root / "widget/test/good/001.png").write_bytes(b"not an image")  # unreadable
    _textured(root / "widget/test/scratch/000.png", 5)
    write_mask(root / "widget/ground_truth/scratch/000_mask.png", (5, 5, 40, 20), size=128)  # twice the image's size
    write_mask(root / "widget/ground_truth/scratch/009_mask.png", (5, 5, 40, 20), size=64)  # no image uses it
    _textured(root / "widget/test/wobble/000.png", 6)  # a defect kind the tables do not know
    write_mask(root / "widget/ground_truth/wobble/000_mask.png", (30, 30, 50, 50), size=64)
    assert main(["generate", "--source", f"mvtec:{root}", "--out", str(tmp_path / "set")]) == 0
    report = json.loads((tmp_path / "set/generation_report.json").read_text())
    warnings = "\n".join(report["warnings"])
    assert "001.png: unreadable image, skipped" in warnings
    assert "000_mask.png: mask is 128x128 but its image is 64x64; resized" in warnings
    assert "009_mask.png: mask without an image" in warnings
    assert "widget/wobble: unknown defect kind" in warnings
    assert report["skipped"]["unreadable image"] == 1
    assert "widget/test/good/001.png" not in json.loads((tmp_path / "set/mmad.json").read_text()).__str__()
    assert "warning:" in capsys.readouterr().err
    assert main(["generate", "--source", f"mvtec:{root}", "--out", str(tmp_path / "strict"), "--strict"]) != 0
    assert "--strict turns this warning into an error" in capsys.readouterr().err
    assert not (tmp_path / "strict" / "mmad.json").exists()


def _record(answer: str, options: dict) -> dict:
    return {"conversation": [{"Question": "q", "Options": options, "Answer": answer, "type": "Defect Classification"}]}


def test_quality_report_warns_of_position_and_length_bias():
    biased = {f"D/cat/test/x/{i}.png": _record("A", {"A": f"Scratch on the surface near the rim {i}", "B": "Dent", "C": "Hole", "D": "Crack"}) for i in range(30)}
    quality = quality_report(biased, {"Defect Localization: too thin": 2})
    assert quality["answer_position_balance"][4]["share_percent"]["A"] == 100.0
    assert quality["option_length_bias"]["longest_is_right_percent"] == 100.0
    assert "position bias" in quality["warnings"][0] and "picking the longest option is right in 100%" in quality["warnings"][1]
    assert len(quality["warnings"]) == 3 and "most-specific option is right in 100%" in quality["warnings"][2]  # the key also names the most
    assert quality["discards_by_reason"] == {"Defect Localization: too thin": 2}
    fair = {f"D/cat/test/x/{i}.png": _record("ABCD"[i % 4], {k: "same" for k in "ABCD"}) for i in range(40)}
    assert quality_report(fair, {})["warnings"] == []
