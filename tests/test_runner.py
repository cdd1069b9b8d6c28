"""The runner and run folder: kill -9 and resume, truncated lines, concurrency invariance, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.run.evaluate import EvalOverrides, resolve_spec, run_evaluation, start_run
from harness.models.base import GenerateResponse
from harness.models.registry import Provider, register_provider
from harness.run.runlog import RunFolder
from tests.conftest import question_count

REPO = Path(__file__).resolve().parents[1]
RESULT_FIELDS_THAT_VARY = {"latency_s"}


def _cli(*args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.slow_model_cli", *args], cwd=REPO, env=env or os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _samples(folder: Path) -> dict[str, dict]:
    lines = (folder / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    ids = [s["question_id"] for s in samples]
    assert len(ids) == len(set(ids)), "a question was answered twice"
    return {s["question_id"]: {k: v for k, v in s.items() if k not in RESULT_FIELDS_THAT_VARY} for s in samples}


@pytest.mark.slow  # 4 s: a run killed with SIGKILL, resumed, and run again whole
def test_kill_minus_nine_then_resume_equals_uninterrupted_run(tmp_path, synthetic_set):
    runs = tmp_path / "runs"
    common = ["eval", "--model", "slowtest/m", "--runs-dir", str(runs), "--quiet", "--seed", "3"]
    victim = _cli(*common, "--run-id", "killed")
    samples_file = runs / "killed" / "samples.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if samples_file.exists() and samples_file.read_text().count("\n") >= 60:
            break
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    done_before = samples_file.read_text().count("\n")
    assert 60 <= done_before < question_count(synthetic_set / "mmad.json"), "the kill must land mid-run"
    with samples_file.open("a") as handle:  # a write cut off by the kill
        handle.write('{"question_id": "Synthetic/brick/te')

    resumed = _cli("eval", "--resume", str(runs / "killed"), "--quiet")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resuming" in err

    straight = _cli(*common, "--run-id", "straight")
    out_straight, err_straight = straight.communicate(timeout=120)
    assert straight.returncode == 0, err_straight

    killed, reference = _samples(runs / "killed"), _samples(runs / "straight")
    assert len(reference) == question_count(synthetic_set / "mmad.json")
    assert killed == reference
    summary_killed = json.loads((runs / "killed/summary.json").read_text())
    summary_straight = json.loads((runs / "straight/summary.json").read_text())
    assert summary_killed["strict"] == summary_straight["strict"]
    assert summary_killed["mmad_compat"] == summary_straight["mmad_compat"]


class Scripted:
    """Answers from a table keyed by question id; raises for some; sleeps to scramble arrival order."""

    default_concurrency = 8
    cacheable = False
    replies: dict[str, str] = {}

    def __init__(self, name, seed):
        self.name = self.cache_identity = name

    async def generate(self, request):
        import asyncio

        await asyncio.sleep((hash(request.sample_id) % 5) / 1000)
        reply = self.replies.get(request.sample_id, request.reference_answer)
        if reply == "RAISE":
            raise ConnectionError("server went away")
        return GenerateResponse(text=reply)

    async def aclose(self):
        return None


register_provider(Provider("scripted", "tests.test_runner:_create_scripted", "test-only"))


def _create_scripted(name, *, seed, options=None):
    return Scripted(name, seed)


def _run(tmp_path, run_id, **overrides):
    spec = resolve_spec("synthetic-quick", "scripted/x", EvalOverrides(run_id=run_id, **overrides), 8)
    spec, folder, question_set = start_run(spec, tmp_path)
    return folder, run_evaluation(spec, folder, question_set=question_set, progress=False)


def test_results_do_not_depend_on_concurrency(tmp_path, synthetic_set):
    _, one = _run(tmp_path, "c1", max_connections=1)
    _, many = _run(tmp_path, "c64", max_connections=64)
    assert _samples(tmp_path / "c1") == _samples(tmp_path / "c64")
    assert one.strict == many.strict and one.strict["accuracy"]["Average"]["Average"] == 100.0


def test_backend_exception_costs_one_sample_not_the_run(tmp_path, synthetic_set):
    Scripted.replies = {"Synthetic/brick/test/crack/000.png#1": "RAISE", "Synthetic/brick/test/crack/000.png#2": "I am not sure."}
    try:
        folder, summary = _run(tmp_path, "faulty")
    finally:
        Scripted.replies = {}
    samples = _samples(folder.path)
    assert len(samples) == question_count(synthetic_set / "mmad.json")
    failed = samples["Synthetic/brick/test/crack/000.png#1"]
    assert failed["parse_status"] == "error" and "ConnectionError: server went away" in failed["error"] and not failed["correct"]
    unsure = samples["Synthetic/brick/test/crack/000.png#2"]
    assert unsure["parse_status"] == "unparsable" and not unsure["correct"]
    assert summary.status_counts == {"ok": question_count(synthetic_set / "mmad.json") - 2, "error": 1, "unparsable": 1}
    assert summary.strict["accuracy"]["Synthetic"]["Defect Classification"] < 100.0


def test_spec_records_the_resolved_configuration(tmp_path, synthetic_set):
    folder, _ = _run(tmp_path, "spec", shots=0, limit=20, max_new_tokens=16)
    spec = json.loads((folder.path / "spec.json").read_text())
    assert (spec["suite"], spec["data"], spec["shots"], spec["limit"], spec["seed"]) == ("synthetic-quick", "synthetic", 0, 20, 0)
    assert spec["decoding"]["max_new_tokens"] == 16 and spec["image_max_side"] == 512
    assert len(spec["data_digest"]) == 64 and {"python", "numpy", "pydantic"} <= spec["versions"].keys()
    assert len(_samples(folder.path)) == 20


def test_a_damaged_line_is_named_and_only_its_question_asked_again(tmp_path, synthetic_set, capsys):
    folder, _ = _run(tmp_path, "damaged", limit=5)
    lines = (folder.path / "samples.jsonl").read_text().splitlines()
    damaged_id = json.loads(lines[2])["question_id"]
    lines[2] = lines[2][:40]
    (folder.path / "samples.jsonl").write_text("\n".join(lines) + "\n")
    kept = RunFolder(folder.path).read_samples()  # a reader (score, report) keeps the other answers
    assert len(kept) == 4 and damaged_id not in {s.question_id for s in kept}
    assert "line 3 is not a valid sample" in capsys.readouterr().err
    spec = folder.spec()
    summary = run_evaluation(spec, folder, progress=False)  # a resume: only the damaged question is asked again
    assert summary.n_samples == 5
    rows = [json.loads(line) for line in (folder.path / "samples.jsonl").read_text().splitlines()]
    assert [r["question_id"] for r in rows].count(damaged_id) == 1 and len(rows) == 5
    assert (folder.path / "samples.rejected.jsonl").read_text() == lines[2] + "\n"  # kept aside, not lost


def test_existing_run_folder_is_not_overwritten(tmp_path, synthetic_set):
    from harness.errors import RunFolderError

    _run(tmp_path, "twice", limit=3)
    with pytest.raises(RunFolderError, match="already exists; pass --resume"):
        _run(tmp_path, "twice", limit=3)
