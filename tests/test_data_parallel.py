"""Data parallel the ecosystem's way: torchrun and accelerate launch start N copies of the CLI;
the samples equal a one-process run's, and a run with a killed rank resumes with nothing lost or
asked twice."""

import pytest
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def _launcher(name: str) -> str:
    found = shutil.which(name) or str(BIN / name)
    assert Path(found).exists(), f"{name} comes with torch/accelerate (bash tests/run.sh installs them)"
    return found


@pytest.mark.slow  # 8 s: torchrun starts two interpreters
def test_torchrun_two_processes_give_the_one_process_samples(tmp_path, tiny_models):
    model = f"hf/{tiny_models['qwen2_vl']}"
    common = ["eval", "--model", model, "--limit", "16", "--runs-dir", str(tmp_path), "--choice-scoring", "logprobs", "--no-cache", "--quiet"]
    from harness.cli import main

    assert main([*common, "--run-id", "one"]) == 0
    two = subprocess.run([_launcher("torchrun"), "--nproc-per-node", "2", "-m", "harness.cli", *common, "--run-id", "two"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    first, second = _samples(tmp_path / "one"), _samples(tmp_path / "two")
    assert len(second) == len({s["question_id"] for s in second}) == 16  # merged once, none lost
    by_id = {s["question_id"]: s for s in first}
    for sample in second:
        assert sample["parsed"] == by_id[sample["question_id"]]["parsed"]
        assert all(math.isclose(sample["option_logprobs"][k], v, abs_tol=1e-4) for k, v in by_id[sample["question_id"]]["option_logprobs"].items())
    assert not (tmp_path / "two" / "shards").exists()
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["n_samples"] == 16
    assert "Average" in two.stdout  # rank 0 printed the table, once
    assert two.stdout.count("run folder:") == 1


def _rank_pid(run_id: str, rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and run_id.encode() in cmdline and b"slow_model_cli" in cmdline and b"torchrun" not in cmdline:
            return int(entry.name)
    return None


@pytest.mark.slow  # 12 s: two ranks started, one killed, the run resumed
def test_a_killed_rank_resumes_with_nothing_lost_or_repeated(tmp_path):
    common = ["-m", "tests.slow_model_cli", "eval", "--model", "slowtest/x", "--runs-dir", str(tmp_path), "--quiet", "--no-cache", "--limit", "240"]
    import tests.slow_model_cli  # noqa: F401  (registers slowtest/)
    from harness.cli import main

    assert main(common[2:] + ["--run-id", "ref"]) == 0
    environment = os.environ | {"SLOWTEST_DELAY_SCALE": "4"}
    torchrun = _launcher("torchrun")
    running = subprocess.Popen([torchrun, "--nproc-per-node", "2", *common, "--run-id", "cut"], cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shard = tmp_path / "cut" / "shards" / "1-of-2.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (shard.is_file() and shard.read_text().count("\n") >= 30):
        time.sleep(0.02)
    victim = _rank_pid("cut", 1)
    assert victim, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    running.communicate(timeout=120)
    assert running.returncode != 0  # torchrun stops the other rank and reports the failure
    partial = (tmp_path / "cut" / "shards").glob("*.jsonl")
    assert sum(p.read_text().count("\n") for p in partial) >= 30 and not (tmp_path / "cut" / "summary.json").exists()
    resumed = subprocess.run([torchrun, "--nproc-per-node", "2", *common[:-2], "--resume", str(tmp_path / "cut"), "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after, expected = _samples(tmp_path / "cut"), _samples(tmp_path / "ref")
    assert len(after) == len({s["question_id"] for s in after}) == len(expected)  # nothing lost, nothing twice
    assert {s["question_id"]: s["reply"] for s in after} == {s["question_id"]: s["reply"] for s in expected}


@pytest.mark.slow  # launches accelerate's processes
def test_accelerate_launch_takes_the_same_path(tmp_path):
    common = ["-m", "tests.slow_model_cli", "eval", "--model", "slowtest/x", "--runs-dir", str(tmp_path), "--quiet", "--no-cache", "--limit", "60"]
    launched = subprocess.run([_launcher("accelerate"), "launch", "--cpu", "--num_processes", "2", *common, "--run-id", "acc"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    import tests.slow_model_cli  # noqa: F401  (registers slowtest/)
    from harness.cli import main

    assert main(common[2:] + ["--run-id", "one"]) == 0
    assert {s["question_id"]: s["reply"] for s in _samples(tmp_path / "acc")} == {s["question_id"]: s["reply"] for s in _samples(tmp_path / "one")}


def test_a_stray_world_size_is_named_not_waited_on(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(name, raising=False)
    assert main(["eval", "--model", "random", "--runs-dir", str(tmp_path)]) == 2
    assert "MASTER_ADDR, MASTER_PORT, RANK not set: launch with torchrun" in capsys.readouterr().err
