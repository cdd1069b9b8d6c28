"""Real-data quirks that used to give wrong results without a word, one test per mechanism:
16-bit images, lossy masks, names that only differ outside ASCII, duplicate records, labels.csv as
spreadsheets write it, and two processes writing one run."""

import base64
import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from harness.adsets.images import UnreadableImage, load_rgb_array
from harness.adsets.layouts import read_labelled_folder
from harness.adsets.masks import LossyMaskWarning, load_mask_union
from harness.cli import main
from harness.data.mmad import load_mmad
from harness.errors import DataError
from harness.storage.files import artifact_stem


def test_sixteen_bit_images_are_scaled_not_clipped_to_white(tmp_path, mmad_tree, server):
    grey = (np.linspace(0, 4095, 32 * 32).reshape(32, 32) * 16).astype(np.uint16)  # a 12-bit camera in a 16-bit PNG
    path = tmp_path / "g16.png"
    Image.fromarray(grey).save(path)
    with Image.open(path) as raw:
        assert raw.mode == "I;16" and np.asarray(raw.convert("RGB")).mean() > 250  # Pillow's own conversion: white
    rgb = load_rgb_array(path)
    assert rgb.shape == (32, 32, 3) and np.array_equal(rgb[..., 0], np.round(grey / 257).astype(np.uint8))
    # end to end: a 16-bit query reaches the model as the picture it is
    query = mmad_tree / "DS-MVTec/bottle/image/good/001.png"
    Image.fromarray(grey).save(query)
    running = server()
    assert main(["eval", "--model", "openai/fake", "--base-url", running.base_url, "--data", f"mmad:{mmad_tree / 'mmad.json'}", "--limit", "8",
                 "--runs-dir", str(tmp_path / "runs"), "--quiet", "--no-cache"]) == 0
    sent = [p["image_url"]["url"] for b in running.app.state.bodies for p in b["messages"][0]["content"] if p["type"] == "image_url"]
    means = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1])))).mean() for u in sent]
    assert min(means) < 200  # the gradient, not a blank 255 square


def test_unreadable_images_name_the_file(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(UnreadableImage, match="broken.png"):
        load_rgb_array(broken)


def test_a_jpeg_mask_is_thresholded_and_flagged(tmp_path):
    mask = np.zeros((256, 256), np.uint8)
    mask[100:164, 100:164] = 255  # a 64×64 defect: 4,096 px
    Image.fromarray(mask).save(tmp_path / "m.jpg", quality=75)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        union = load_mask_union([tmp_path / "m.jpg"], (256, 256))
    assert abs(int(union.sum()) - 4096) < 4096 * 0.05  # '> 0' read ~65,000 px here
    assert any(issubclass(w.category, LossyMaskWarning) and "m.jpg" in str(w.message) for w in caught)
    ids = np.zeros((64, 64), np.uint8)
    ids[:8, :8], ids[20:30, 20:30] = 1, 3  # VisA-style class ids stay defects
    Image.fromarray(ids).save(tmp_path / "ids.png")
    assert load_mask_union([tmp_path / "ids.png"], (64, 64)).sum() == 64 + 100


def test_artifact_names_never_collide():
    ids = ["Synthetic/划痕/000.png", "Synthetic/裂纹/000.png", "a/b.png", "a__b.png", "a/b.jpg"]
    stems = [artifact_stem(i) for i in ids]
    assert len(set(stems)) == len(ids) and all(s.isascii() and "/" not in s for s in stems)


def test_duplicate_keys_and_empty_question_files_are_errors(tmp_path, mmad_tree):
    text = (mmad_tree / "mmad.json").read_text()
    first_key = next(iter(json.loads(text)))
    duplicated = text.rstrip().rstrip("}") + f', "{first_key}": {json.dumps(json.loads(text)[first_key])}' + "}"
    (mmad_tree / "dup.json").write_text(duplicated)
    with pytest.raises(DataError, match="appears twice"):
        load_mmad(mmad_tree / "dup.json", root=mmad_tree)
    (mmad_tree / "empty.json").write_text("{}")
    with pytest.raises(DataError, match="empty object"):
        load_mmad(mmad_tree / "empty.json", root=mmad_tree)


def labelled_folder(root, rows: list[str], encoding: str = "utf-8", bom: bool = False):
    for name in ("imgs/t0.png", "imgs/t1.png", "imgs/q0.png", "imgs/q1.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(root / name)
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 6)).save(root / "masks/q1.png")
    text = "\n".join(["image,category,split,label,defect,mask", *rows]) + "\n"
    (root / "labels.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))


GOOD_ROWS = ["imgs/t0.png,part,train,normal,,", "imgs/q0.png,part,test,normal,,", "imgs\\q1.png,part,test,anomaly,dent,masks\\q1.png"]


def test_labels_csv_as_spreadsheets_write_it(tmp_path):
    labelled_folder(tmp_path, GOOD_ROWS, bom=True)  # byte-order mark, backslash paths
    (category,) = read_labelled_folder(tmp_path)
    assert category.name == "part" and [i.path for i in category.test] == ["imgs/q0.png", "imgs/q1.png"]
    assert category.test[1].mask_paths == ("masks/q1.png",)
    labelled_folder(tmp_path, [*GOOD_ROWS, "imgs/q0.png,part,test,normal,,"])
    with pytest.raises(DataError, match="listed twice .*line 3"):
        read_labelled_folder(tmp_path)
    labelled_folder(tmp_path, [*GOOD_ROWS, "imgs/t1.png,pärt,train"], encoding="latin-1")
    with pytest.raises(DataError, match="not UTF-8"):
        read_labelled_folder(tmp_path)
    labelled_folder(tmp_path, [*GOOD_ROWS, "imgs/t1.png,part,train"])
    with pytest.raises(DataError, match="fewer fields"):
        read_labelled_folder(tmp_path)


def test_one_writer_per_run_and_no_mixed_configurations(tmp_path, synthetic_set, capsys):
    from harness.run.runlog import RunFolder

    assert main(["eval", "--model", "random", "--limit", "6", "--runs-dir", str(tmp_path), "--run-id", "r", "--quiet"]) == 0
    folder = RunFolder.open(tmp_path / "r")
    with folder.lock():  # another process is writing this run
        assert main(["eval", "--resume", str(folder.path), "--quiet"]) == 2
    assert "being written by another iadbench process" in capsys.readouterr().err
    spec = json.loads((folder.path / "spec.json").read_text())
    spec["shots"] = 0  # an edited spec.json would mix 1-shot and 0-shot answers
    (folder.path / "spec.json").write_text(json.dumps(spec))
    assert main(["eval", "--resume", str(folder.path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "shots: 1 → 0" in err and "start a new run" in err


def test_mask_suffix_case_and_an_unreadable_image_in_the_gpt4vad_task(tmp_path, capsys):
    """An MVTec tree whose masks end in .PNG, and one test image that cannot be decoded: the run
    finds the masks, records the broken image as an error sample, and a resume does not retry it."""
    from harness.adsets.layouts import read_mvtec_layout
    from question_gen.synthetic.writer import SyntheticCounts, write_synthetic_dataset

    root = tmp_path / "mvtec"
    write_synthetic_dataset(root, seed=0, size=96, counts=SyntheticCounts(train_good=2, test_good=1, per_defect=1))
    for mask in root.rglob("*_mask.png"):
        mask.rename(mask.with_name(mask.stem + ".PNG"))
    categories = read_mvtec_layout(root)
    assert all(m.endswith(".PNG") for c in categories for i in c.test for m in i.mask_paths)
    from harness.tasks.gpt4vad.task import load_region_items, region_subset

    items = load_region_items(f"mvtec:{root}", 0)[0]
    chosen = region_subset(items, 4, 0)  # the four a new run's --limit 4 draws (harness/data/subset.py)
    broken = chosen[0].image_path
    broken.write_bytes(b"not an image")
    args = ["eval", "--task", "gpt4vad", "--model", "oracle", "--data", f"mvtec:{root}", "--regions", "grid:16", "--limit", "4", "--runs-dir", str(tmp_path / "runs"), "--run-id", "b", "--quiet"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "runs/b/samples.jsonl").read_text().splitlines()]
    failed = [r for r in rows if r["parse_status"] == "error"]
    assert len(rows) == 4 and len(failed) == 1 and "UnreadableImage" in failed[0]["error"] and broken.name in failed[0]["error"]
    assert main(["eval", "--resume", str(tmp_path / "runs/b"), "--quiet"]) == 0  # nothing left to ask; the broken image is not retried


def test_backslash_keys_and_a_report_on_a_run_with_no_answers(tmp_path, mmad_tree):
    data = json.loads((mmad_tree / "mmad.json").read_text())
    windows = {key.replace("/", "\\"): {**value, "random_templates": [p.replace("/", "\\") for p in value["random_templates"]]} for key, value in data.items()}
    (mmad_tree / "windows.json").write_text(json.dumps(windows))
    question_set = load_mmad(mmad_tree / "windows.json", root=mmad_tree)
    assert set(question_set.images) == set(data) and all("\\" not in t for i in question_set.images.values() for t in i.random_templates)
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{mmad_tree / 'windows.json'}", "--runs-dir", str(tmp_path / "runs"), "--run-id", "w", "--quiet"]) == 0
    (tmp_path / "runs/w/samples.jsonl").write_text("")  # a run that has answered nothing yet
    assert main(["score", str(tmp_path / "runs/w")]) == 0
    assert main(["report", str(tmp_path / "runs/w"), "--out", str(tmp_path / "r.html")]) == 0


def test_gpt4vad_pixel_metrics_are_evaluated_at_a_bounded_size():
    from harness.metrics.ad import resize_nearest as _nearest
    from harness.tasks.gpt4vad.task import EVAL_LONG_SIDE, evaluation_shape

    assert evaluation_shape((3000, 4000)) == (384, 512) and evaluation_shape((256, 256)) == (256, 256)
    region_map = np.kron(np.arange(4, dtype=np.float32).reshape(2, 2), np.ones((1500, 2000), np.float32))
    small = _nearest(region_map, evaluation_shape(region_map.shape))
    assert max(small.shape) == EVAL_LONG_SIDE and set(np.unique(small)) == {0.0, 1.0, 2.0, 3.0}  # region values kept exactly
