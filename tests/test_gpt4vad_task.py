"""The GPT-4V-AD task end to end: oracle bound, API backend, expert row, VisA, resume, errors."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.metrics.ad import image_metrics, mean_over_categories, pixel_metrics
from harness.tasks.gpt4vad.task import image_shape, load_mask, load_region_items
from harness.tasks.gpt4vad.regions import grid_division, text_to_segmentation
from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
GRID = ["--regions", "grid:16"]


def run(tmp_path, run_id, *args, expect=0):
    assert main(["eval", "--task", "gpt4vad", "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, "--quiet", *args]) == expect
    return tmp_path / "runs" / run_id


@pytest.mark.slow  # 26 s: two 30-image region runs at 768 px and the bound computed beside them
def test_oracle_reaches_the_region_granularity_bound(tmp_path, synthetic_set):
    folder = run(tmp_path, "oracle", "--model", "oracle", "--limit", "30", *GRID)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status_counts"] == {"ok": 30}
    # The bound computed directly: each region touching the ground truth scores the share of its
    # pixels inside it, the rest 0.
    from harness.tasks.gpt4vad.task import region_subset

    chosen = region_subset(load_region_items("synthetic", 0)[0], 30, 0)  # the 30 images --limit 30 draws
    division = grid_division(16)
    per_category = {}
    for category in sorted({i.category for i in chosen}):
        members = [i for i in chosen if i.category == category]
        maps, masks = [], []
        for item in members:
            shape = image_shape(item.image_path)
            mask = load_mask(item.mask_paths, shape) if item.mask_paths else np.zeros(shape, bool)
            square = np.asarray(Image.fromarray(mask).resize((768, 768), Image.NEAREST))
            purity = {r + 1: (division.masks[r] & square).sum() / division.masks[r].sum() for r in range(division.count) if (division.masks[r] & square).any()}
            maps.append(text_to_segmentation(division, purity, shape))
            masks.append(mask)
        metrics = {f"pixel_{k}": v for k, v in pixel_metrics(zip(maps, masks)).items()}
        metrics |= {f"image_{k}": v for k, v in image_metrics([i.label == "anomaly" for i in members], [float(i.label == "anomaly") for i in members]).items()}
        per_category[f"Synthetic/{category}"] = metrics
    bound, _ = mean_over_categories(per_category)
    got = summary["ad_metrics"]["mean"]
    for key in ("pixel_auroc", "pixel_ap", "pixel_f1_max", "pixel_aupro", "image_auroc"):
        assert got[key] == pytest.approx(bound[key], abs=2e-5), key  # maps are stored at 16 bits
    assert got["image_auroc"] == 1.0 and got["pixel_auroc"] > 0.9
    # the oracle is the ceiling it is named for: no region answer on the same regions does better
    expert = json.loads((run(tmp_path, "expert", "--model", "expert/patchknn", "--limit", "30", *GRID) / "summary.json").read_text())["ad_metrics"]
    for category, row in summary["ad_metrics"]["per_category"].items():
        for key in ("pixel_auroc", "pixel_ap", "pixel_f1_max"):
            assert row[key] >= expert["per_category"][category][key] - 1e-9, (category, key)
    # what the model saw, and what was predicted, are kept for inspection
    sample = json.loads((folder / "samples.jsonl").read_text().splitlines()[0])
    assert (folder / sample["overlay_path"]).is_file() and (folder / sample["map_path"]).is_file()
    assert Image.open(folder / sample["overlay_path"]).size == (768, 768)


@pytest.mark.slow  # 5 s: a region run over HTTP
def test_any_api_model_through_the_openai_backend(tmp_path, synthetic_set):
    with RunningServer(FakeOpenAI(ServerConfig())) as server:
        folder = run(tmp_path, "api", "--model", "openai/fake-vlm", "--base-url", server.base_url, "--limit", "12", "--no-cache", *GRID)
        sizes = server.app.state.image_sizes
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and all(s["parse_status"] == "ok" and len(s["region_scores"]) >= 1 for s in samples)
    assert all(request == [[768, 768]] or request == [(768, 768)] for request in sizes)  # the overlay, at full size
    summary = json.loads((folder / "summary.json").read_text())
    assert 0.0 <= summary["ad_metrics"]["mean"]["pixel_auroc"] <= 1.0


@pytest.mark.slow  # 11 s: the expert's regions over the synthetic set
def test_expert_gives_a_reference_row(tmp_path, synthetic_set):
    folder = run(tmp_path, "expert", "--model", "expert/patchknn", "--limit", "20", *GRID)
    mean = json.loads((folder / "summary.json").read_text())["ad_metrics"]["mean"]
    assert mean["image_auroc"] > 0.7 and mean["pixel_auroc"] > 0.7


@pytest.mark.slow  # 9 s: the same region run twice
def test_resume_after_a_partial_run_gives_the_same_result(tmp_path, synthetic_set):
    straight = run(tmp_path, "straight", "--model", "expert/patchknn", "--limit", "8", *GRID)
    partial = run(tmp_path, "partial", "--model", "expert/patchknn", "--limit", "8", *GRID)
    lines = (partial / "samples.jsonl").read_text().splitlines()
    (partial / "samples.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:30])  # as if killed mid-write
    assert main(["eval", "--resume", str(partial), "--quiet"]) == 0

    def comparable(folder):
        rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        return {r["question_id"]: (r["reply"], r["region_scores"], r["image_score"]) for r in rows}

    assert comparable(partial) == comparable(straight)
    assert json.loads((partial / "summary.json").read_text())["ad_metrics"] == json.loads((straight / "summary.json").read_text())["ad_metrics"]


def _visa_tree(root):
    """A tiny VisA: split_csv/1cls.csv with CRLF line ends, masks holding class ids (not 0/255)."""
    rows = ["object,split,label,image,mask"]
    for name in ("candle", "pcb1"):
        for i in range(2):
            path = f"{name}/Data/Images/Normal/{i:03d}.JPG"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(root / path)
            rows.append(f"{name},train,normal,{path},")
        normal = f"{name}/Data/Images/Normal/100.JPG"
        Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(root / normal)
        rows.append(f"{name},test,normal,{normal},")
        bad, mask = f"{name}/Data/Images/Anomaly/000.JPG", f"{name}/Data/Masks/Anomaly/000.png"
        (root / bad).parent.mkdir(parents=True, exist_ok=True)
        (root / mask).parent.mkdir(parents=True, exist_ok=True)
        image = np.full((64, 64, 3), 120, np.uint8)
        image[10:30, 10:30] = 250
        Image.fromarray(image).save(root / bad)
        labels = np.zeros((64, 64), np.uint8)
        labels[10:30, 10:30] = 3  # a class id
        Image.fromarray(labels).save(root / mask)
        rows.append(f"{name},test,anomaly,{bad},{mask}")
    (root / "split_csv").mkdir()
    (root / "split_csv/1cls.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode())


def test_visa_layout_with_the_oracle(tmp_path):
    _visa_tree(tmp_path / "VisA")
    folder = run(tmp_path, "visa", "--model", "oracle", "--data", f"visa:{tmp_path / 'VisA'}", *GRID)
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["ad_metrics"]["per_category"]) == {"VisA/candle", "VisA/pcb1"}
    assert summary["ad_metrics"]["mean"]["image_auroc"] == 1.0
    assert summary["ad_metrics"]["mean"]["pixel_auroc"] > 0.9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "oracle", "--regions", "hexagons"], "use slic, grid:K, sam[:MODEL], masks:DIR or official:DIR[:METHOD]"),
        (["--model", "oracle", "--regions", "grid:x"], "grid size must be an integer"),
        (["--model", "oracle", "--data", "mmad:/x/mmad.json"], "gpt4vad task reads synthetic, mvtec:DIR or visa:DIR"),
        (["--model", "oracle", "--dry-run"], "--dry-run cannot build the requests of --task gpt4vad"),
    ],
)
def test_bad_gpt4vad_input_is_a_clear_error(tmp_path, synthetic_set, capsys, args, message):
    assert main(["eval", "--task", "gpt4vad", "--runs-dir", str(tmp_path / "runs"), "--limit", "1", "--quiet", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "a refused run leaves no folder behind"


@pytest.mark.slow  # whole region runs against a faulty server
def test_score_retry_and_export_on_a_gpt4vad_run(tmp_path, synthetic_set, capsys):
    with RunningServer(FakeOpenAI(ServerConfig(fault_rate=0.5, fault_kinds=("server_error",)))) as server:
        folder = run(tmp_path, "flaky", "--model", "openai/fake-vlm", "--base-url", server.base_url, "--limit", "6", "--no-cache", "--max-attempts", "1", *GRID)
        failed = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if '"parse_status":"error"' in line]
        assert failed, "some requests must have failed with one attempt allowed"
        assert main(["eval", "--resume", str(folder), "--retry-errors", "--max-attempts", "4", "--base-url", server.base_url, "--quiet"]) == 0
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["parse_status"] == "ok" for r in rows)
    before = json.loads((folder / "summary.json").read_text())["ad_metrics"]
    assert main(["score", str(folder)]) == 0
    assert json.loads((folder / "summary.json").read_text())["ad_metrics"] == before
    assert main(["export", str(folder)]) == 2
    assert "GPT-4V-AD run" in capsys.readouterr().err
