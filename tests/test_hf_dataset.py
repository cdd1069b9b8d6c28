"""Question sets as Hugging Face datasets: lossless round trips, parquet, --data hf:, path safety."""

import json

import pytest

from harness.cli import main
from harness.data.hf_dataset import read_hf_dataset, write_hf_dataset
from harness.errors import DataError
from tests.conftest import question_count


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "mmad.json"}


def test_mmad_release_round_trips_losslessly_through_save_to_disk_and_parquet(mmad_tree, tmp_path):
    original = json.loads((mmad_tree / "mmad.json").read_text())
    for record in original.values():  # fields MMAD's tooling adds must survive too
        record["conversation"][0]["annotation"] = True
    original["VisA/candle/test/bad/002.JPG"]["source"] = "visa-v2"
    del original["MVTec-LOCO/breakfast_box/test/logical_anomalies/000.png"]["similar_templates"]
    (mmad_tree / "mmad.json").write_text(json.dumps(original))
    assert main(["convert", f"mmad:{mmad_tree / 'mmad.json'}", "--out", str(tmp_path / "hf")]) == 0
    back = read_hf_dataset(tmp_path / "hf", tmp_path / "back")
    assert json.loads(back.read_text()) == original
    restored = _files(tmp_path / "back")
    source = _files(mmad_tree)
    assert restored == {k: v for k, v in source.items() if k in restored}  # every byte as it was
    assert "MVTec-LOCO/breakfast_box/ground_truth/logical_anomalies/000/001.png" in restored  # LOCO mask folders whole
    assert "DS-MVTec/bottle/rbg_mask/broken_large/000_rgb_mask.png" in restored
    # The parquet shards alone carry the same set (what push_to_hub uploads).
    (tmp_path / "parquet-only").mkdir()
    (tmp_path / "hf" / "parquet").rename(tmp_path / "parquet-only" / "parquet")
    assert json.loads(read_hf_dataset(tmp_path / "parquet-only", tmp_path / "back2").read_text()) == original


@pytest.mark.slow  # 6 s: generates the synthetic set, writes it as a dataset and evaluates it (the round trips stay in the fast tier)
def test_a_generated_set_is_written_as_a_dataset_and_evaluates_from_it(tmp_path, capsys):
    assert main(["generate", "--source", "synthetic", "--out", str(tmp_path / "set")]) == 0
    assert (tmp_path / "set/hf/dataset/dataset_dict.json").is_file() and list((tmp_path / "set/hf/parquet").glob("questions-*.parquet"))
    runs = str(tmp_path / "runs")
    assert main(["eval", "--model", "oracle", "--data", f"hf:{tmp_path / 'set/hf'}", "--runs-dir", runs, "--run-id", "hf", "--quiet", "--strategy", "rag"]) == 0
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--runs-dir", runs, "--run-id", "json", "--quiet", "--strategy", "rag"]) == 0
    from_hf, from_json = (json.loads((tmp_path / "runs" / r / "summary.json").read_text()) for r in ("hf", "json"))
    assert from_hf["n_samples"] == from_json["n_samples"] == question_count(tmp_path / "set/mmad.json") and from_hf["strict"] == from_json["strict"]


def test_paths_in_a_dataset_never_leave_the_output_folder(mmad_tree, tmp_path):
    import datasets

    write_hf_dataset(mmad_tree / "mmad.json", tmp_path / "hf")
    bundle = datasets.load_from_disk(str(tmp_path / "hf" / "dataset"))
    evil = bundle["questions"].map(lambda row: {"image_path": "../../escaped.png"})
    datasets.DatasetDict({"questions": evil, "templates": bundle["templates"]}).save_to_disk(str(tmp_path / "evil"))
    with pytest.raises(DataError, match="escapes"):
        read_hf_dataset(tmp_path / "evil", tmp_path / "out")
    assert not (tmp_path / "escaped.png").exists()
