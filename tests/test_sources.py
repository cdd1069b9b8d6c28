"""Dataset readers for question generation: your own labelled folder, MVTec LOCO, VisA."""

import json

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.errors import DataError
from harness.adsets.layouts import read_labelled_folder, read_loco_layout
from tests.conftest import write_image, write_mask
from tests.test_gpt4vad_task import _visa_tree


def _textured(path, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((64, 64, 3)) * 60 + 100).astype(np.uint8)).save(path)


def _folder(root, rows):
    lines = ["image,category,split,label,defect,mask"] + rows
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def _factory_folder(root):
    for i in range(3):
        _textured(root / f"good/{i}.png", i)
    _textured(root / "line2/bad.png", 9)
    write_mask(root / "line2/bad_mask.png", (5, 5, 20, 20), size=64)
    _folder(root, ["good/0.png,bracket,train,normal,,", "good/1.png,bracket,train,normal,,", "good/2.png,bracket,test,normal,,", "line2/bad.png,bracket,test,anomaly,scratch,line2/bad_mask.png"])


def test_labelled_folder_to_questions_to_a_run(tmp_path):
    _factory_folder(tmp_path / "factory")
    (category,) = read_labelled_folder(tmp_path / "factory")
    assert category.name == "bracket" and len(category.train_good) == 2 and [i.label for i in category.test] == ["normal", "anomaly"]
    assert main(["generate", "--source", f"folder:{tmp_path / 'factory'}", "--out", str(tmp_path / "set")]) == 0
    data = json.loads((tmp_path / "set/mmad.json").read_text())
    # files are placed under their category from the labels, so evaluation reads "bracket", not "good"
    assert set(data) == {"factory/bracket/good/2.png", "factory/bracket/line2/bad.png"}
    scratch = data["factory/bracket/line2/bad.png"]
    assert scratch["mask_path"] == "line2/bad_mask.png"  # relative to the category folder: the mask, not the image
    classification = next(q for q in scratch["conversation"] if q["type"] == "Defect Classification")
    assert classification["Options"][classification["Answer"]] == "Scratch"
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--run-id", "f", "--quiet"]) == 0
    assert json.loads((tmp_path / "runs/f/summary.json").read_text())["strict"]["accuracy"]["Average"]["Average"] == 100.0
    from harness.data.mmad import load_mmad

    records = load_mmad(tmp_path / "set/mmad.json")
    bad = records.images["factory/bracket/line2/bad.png"]
    assert bad.category == "bracket" and bad.mask_paths == ("factory/bracket/line2/bad_mask.png",)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["good/0.png,bracket,train,anomaly,,"], "training images are templates and must be normal"),
        (["good/0.png,bracket,train,normal,,", "good/1.png,bracket,test,anomaly,scratch,"], "needs its mask file"),
        (["../outside.png,bracket,train,normal,,"], "escapes"),
        (["good/0.png,bracket,validation,normal,,"], "split must be train or test"),
        (["good/0.png,bracket,test,normal,,"], "no train images"),
    ],
)
def test_labelled_folder_bad_rows_are_named(tmp_path, rows, message):
    _factory_folder(tmp_path / "factory")
    _folder(tmp_path / "factory", rows)
    with pytest.raises(DataError, match=message):
        read_labelled_folder(tmp_path / "factory")


def test_labelled_folder_missing_columns(tmp_path):
    (tmp_path / "labels.csv").write_text("image,label\nx.png,normal\n")
    with pytest.raises(DataError, match="missing columns category, split, defect, mask"):
        read_labelled_folder(tmp_path)


def test_loco_mask_folders(tmp_path):
    root = tmp_path / "loco"
    for i in range(2):
        _textured(root / f"juice/train/good/{i:03d}.png", i)
    _textured(root / "juice/test/good/000.png", 5)
    _textured(root / "juice/test/logical_anomalies/000.png", 6)
    write_mask(root / "juice/ground_truth/logical_anomalies/000/000.png", (0, 0, 10, 10), size=64)
    write_mask(root / "juice/ground_truth/logical_anomalies/000/001.png", (40, 40, 50, 50), size=64)
    (category,) = read_loco_layout(root)
    (anomalous,) = [i for i in category.test if i.label == "anomaly"]
    assert len(anomalous.mask_paths) == 2
    assert main(["generate", "--source", f"loco:{root}", "--out", str(tmp_path / "set")]) == 0
    record = json.loads((tmp_path / "set/mmad.json").read_text())["loco/juice/test/logical_anomalies/000.png"]
    assert record["mask_path"] == "ground_truth/logical_anomalies/000"  # a folder, as in MMAD's LOCO records
    # the union of both masks is read (a localization question), but a folder of many kinds (a
    # missing item, a wrong one) gets no description: its mask need not outline a mark
    assert {q["type"] for q in record["conversation"]} == {"Anomaly Detection", "Defect Localization", "Object Classification"}
    report = json.loads((tmp_path / "set/generation_report.json").read_text())
    assert report["skipped"]["Defect Description: defect folder 'logical_anomalies' names several defect kinds (Logical anomaly), not one"] == 1
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    write_image(root / "juice/test/structural_anomalies/001.png")
    with pytest.raises(DataError, match="without its mask folder"):
        read_loco_layout(root)


def test_visa_generation(tmp_path):
    _visa_tree(tmp_path / "VisA")
    assert main(["generate", "--source", f"visa:{tmp_path / 'VisA'}", "--out", str(tmp_path / "set")]) == 0
    data = json.loads((tmp_path / "set/mmad.json").read_text())
    assert len(data) == 4 and any("Anomaly/000.JPG" in key for key in data)
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0


def test_split_image_and_mask_folders_two_categories_and_a_regenerated_image(tmp_path):
    """imgs/ and masks/ side by side, two categories sharing imgs/, an image listed twice, then one
    source image replaced and the set generated again into the same --out."""
    root = tmp_path / "lab"
    for i in range(5):
        _textured(root / f"imgs/{i}.png", i)
    write_mask(root / "masks/3.png", (5, 5, 20, 20), size=64)
    _folder(root, ["imgs/0.png,cap,train,normal,,", "imgs/1.png,cap,train,normal,,", "imgs/1.png,cap,test,normal,,", "imgs/2.png,screw,train,normal,,",
                   "imgs/0.png,screw,train,normal,,", "imgs/3.png,screw,test,anomaly,scratch,masks/3.png"])
    with pytest.raises(Exception, match="listed twice"):  # one row per image
        read_labelled_folder(root)
    _folder(root, ["imgs/0.png,cap,train,normal,,", "imgs/1.png,cap,train,normal,,", "imgs/2.png,cap,test,normal,,",
                   "imgs/3.png,screw,test,anomaly,scratch,masks/3.png", "imgs/4.png,screw,train,normal,,"])
    assert main(["generate", "--source", f"folder:{root}", "--out", str(tmp_path / "set")]) == 0
    from harness.data.mmad import load_mmad

    records = load_mmad(tmp_path / "set/mmad.json")
    assert {r.category for r in records.images.values()} == {"cap", "screw"}  # not merged into "imgs"
    anomaly = records.images["lab/screw/imgs/3.png"]
    assert anomaly.mask_paths == ("lab/screw/masks/3.png",)  # the mask, not the query image
    _textured(root / "imgs/2.png", 42)  # a replaced source image
    assert main(["generate", "--source", f"folder:{root}", "--out", str(tmp_path / "set")]) == 0
    placed = tmp_path / "set/lab/cap/imgs/2.png"
    assert placed.read_bytes() == (root / "imgs/2.png").read_bytes()
