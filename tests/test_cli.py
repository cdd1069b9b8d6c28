"""The command line end to end, through the installed `iadbench` script."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from question_gen.synthetic.writer import SyntheticCounts, write_synthetic_dataset
from tests.conftest import question_count

REPO = Path(__file__).resolve().parents[1]


def iadbench(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    executable = shutil.which("iadbench") or str(Path(sys.executable).with_name("iadbench"))
    result = subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _run_folder(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


def test_oracle_scores_100_everywhere(tmp_path, synthetic_set):
    result = iadbench("eval", "--model", "oracle", "--quiet", cwd=tmp_path)
    summary = json.loads((_run_folder(tmp_path / "runs") / "summary.json").read_text())
    for dataset_row in summary["strict"]["accuracy"].values():
        assert all(value == 100.0 for value in dataset_row.values())
    for row in summary["mmad_compat"]["values"].values():
        assert all(row[column] == 100.0 for column in summary["mmad_compat"]["columns"][:8])
    assert "Synthetic" in result.stdout and "100.0" in result.stdout


def test_random_lands_near_chance_with_chance_printed(tmp_path, synthetic_set):
    result = iadbench("eval", "--model", "random", "--quiet", "--seed", "1", cwd=tmp_path)
    summary = json.loads((_run_folder(tmp_path / "runs") / "summary.json").read_text())
    accuracy = summary["strict"]["accuracy"]["Average"]["Average"]
    chance = summary["strict"]["chance"]["Average"]["Average"]
    assert abs(accuracy - chance) < 8.0
    chance_line = next(line for line in result.stdout.splitlines() if line.startswith("chance"))
    assert "50.0" in chance_line and "25.0" in chance_line


def test_same_spec_and_seed_give_identical_results(tmp_path, synthetic_set):
    for run_id in ("a", "b"):
        iadbench("eval", "--model", "random", "--seed", "7", "--run-id", run_id, "--quiet", cwd=tmp_path)
    first, second = (json.loads((tmp_path / "runs" / r / "summary.json").read_text()) for r in ("a", "b"))
    assert first["strict"] == second["strict"]
    other = iadbench("eval", "--model", "random", "--seed", "8", "--run-id", "c", "--quiet", cwd=tmp_path)
    assert json.loads((tmp_path / "runs/c/summary.json").read_text())["strict"] != first["strict"], other.stderr


def test_export_then_official_scoring_matches_the_summary(tmp_path, synthetic_set):
    iadbench("eval", "--model", "random", "--run-id", "r", "--quiet", cwd=tmp_path)
    folder = tmp_path / "runs/r"
    iadbench("export", str(folder), "--format", "mmad", cwd=tmp_path)
    answers = json.loads((folder / "mmad_answers.json").read_text())
    assert len(answers) == question_count(synthetic_set / "mmad.json") and set(answers[0]) == {"image", "question", "question_type", "correct_answer", "gpt_answer"}
    assert answers[0]["question"]["text"].startswith("Question 1: ")
    scored = iadbench("score", str(folder / "mmad_answers.json"), "--mmad-compat", cwd=tmp_path)
    csv_text = (folder / "mmad_answers_accuracy.iadbench.csv").read_text()
    assert csv_text.splitlines()[0] == ",Anomaly Detection,Defect Classification,Defect Localization,Defect Description,Defect Analysis,Object Classification,Object Analysis,Average,Recall,Precision,F1,Overkill,Miss"
    summary = json.loads((folder / "summary.json").read_text())
    average_row = next(line for line in csv_text.splitlines() if line.startswith("Average,"))
    assert float(average_row.split(",")[8]) == summary["mmad_compat"]["values"]["Average"]["Average"]
    assert "removed (answer not A-E): 0" in scored.stdout
    rescored = iadbench("score", str(folder), "--mmad-compat", cwd=tmp_path)
    assert (folder / "mmad_accuracy.csv").read_text() == csv_text
    assert "official MMAD scorer" in rescored.stdout


@pytest.mark.slow  # 5 s: draws a dataset, generates its set and evaluates it (generation's parts stay in the fast tier)
def test_generate_from_mvtec_layout_then_evaluate(tmp_path):
    write_synthetic_dataset(tmp_path / "factory", seed=2, size=96, counts=SyntheticCounts(2, 2, 1))
    iadbench("generate", "--source", f"mvtec:{tmp_path / 'factory'}", "--out", str(tmp_path / "set"), "--seed", "1", cwd=tmp_path)
    data = json.loads((tmp_path / "set/mmad.json").read_text())
    assert all(key.startswith("factory/") for key in data)
    iadbench("eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--quiet", "--run-id", "o", cwd=tmp_path)
    summary = json.loads((tmp_path / "runs/o/summary.json").read_text())
    assert summary["strict"]["accuracy"]["factory"]["Average"] == 100.0
    assert summary["n_samples"] == sum(len(v["conversation"]) for v in data.values())


def test_list_and_synth(tmp_path):
    suites = iadbench("list", "suites", cwd=tmp_path).stdout
    assert {"synthetic-quick", "mmad-1shot", "mmad-0shot"} <= {line.split()[0] for line in suites.splitlines()}
    models = iadbench("list", "models", cwd=tmp_path).stdout
    assert "random" in models and "oracle" in models
    iadbench("synth", "--out", str(tmp_path / "syn"), "--size", "64", cwd=tmp_path)
    assert (tmp_path / "syn/washer/ground_truth").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--model", "nosuch/model"], "unknown model provider 'nosuch'"),
        (["eval", "--model", "random", "--suite", "nosuch"], "unknown suite 'nosuch'"),
        (["eval", "--model", "random", "--suite", "mmad-1shot"], "the MMAD data is needed"),
        (["eval", "--model", "random", "--data", "mmad:/nonexistent/mmad.json"], "question file not found"),
        (["eval", "--resume", "/nonexistent/run"], "not a run folder"),
        (["eval", "--limit", "3"], "eval needs --model"),
        (["eval", "--modle", "x"], "--help lists what it takes"),
        (["generate", "--source", "visa", "--out", "x"], "use synthetic or one of mvtec:DIR, visa:DIR, loco:DIR, goodsad:DIR, dsmvtec:DIR, folder:DIR"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    result = iadbench(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # no thirty lines of usage
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "a failed start leaves no run folder"


def test_suite_flags_override_and_resume_refuses_conflicts(tmp_path, synthetic_set):
    iadbench("eval", "--model", "random", "--shots", "0", "--limit", "10", "--run-id", "x", "--quiet", cwd=tmp_path)
    spec = json.loads((tmp_path / "runs/x/spec.json").read_text())
    assert spec["shots"] == 0 and spec["limit"] == 10
    conflict = iadbench("eval", "--resume", str(tmp_path / "runs/x"), "--model", "oracle", cwd=tmp_path, check=False)
    assert conflict.returncode == 2 and "drop --model" in conflict.stderr
