"""Managed engines with a real third-party server: `transformers serve` (transformers' own
OpenAI-compatible server) serving a tiny LLaVA, started, health-checked, used (images, logprobs
where given) and stopped on every way out: the end of the command, an error, SIGTERM, Ctrl-C and
even SIGKILL of iadbench. vLLM and SGLang take the same path (harness/models/engines.toml)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.models.engines import engine_argv, engine_specs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from harness.testing.tiny_vlms import build_tiny_vlm

    return build_tiny_vlm("llava", tmp_path_factory.mktemp("engine-model") / "tiny-llava-served")


def _engine_processes(marker: str) -> list[int]:
    """Live processes whose command line names `marker` (the served model's unique path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                state = (entry / "stat").read_text().split()[2]
            except OSError:
                continue
            if marker.encode() in cmdline and b"serve" in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


def _gone(marker: str, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _engine_processes(marker):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow  # 5 s: a server process started for the run
def test_a_run_through_a_started_engine(tmp_path, tiny_llava, synthetic_set):
    model = f"transformers-serve/{tiny_llava}"
    command = ["eval", "--model", model, "--limit", "4", "--max-new-tokens", "4", "--runs-dir", str(tmp_path), "--run-id", "served",
               "--choice-scoring", "logprobs", "--engine-args", "--log-level info", "--quiet"]
    assert main(command) == 0
    assert _gone(str(tiny_llava), within=5)  # stopped with the command
    folder = tmp_path / "served"
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(s["error"] is None and s["usage"]["prompt_tokens"] > 0 for s in samples)  # images and text reached the model
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["model_options"]["engine_args"] == "--log-level info"
    assert any(n.startswith("engine: transformers-serve 5.") for n in spec["notes"])
    assert any("returned no logprobs" in n for n in spec["notes"])  # this server ignores logprobs: answers parsed from text
    log = (folder / "engine.log").read_text()
    assert "POST /v1/chat/completions" in log and "200" in log


@pytest.mark.slow  # 5 s: a server process started, then stopped
def test_an_error_after_the_start_stops_the_engine(tmp_path, tiny_llava, capsys):
    assert main(["eval", "--model", f"transformers-serve/{tiny_llava}", "--data", f"mmad:{tmp_path / 'missing.json'}", "--runs-dir", str(tmp_path)]) == 2
    assert "question file not found" in capsys.readouterr().err
    assert _gone(str(tiny_llava), within=5)


@pytest.mark.slow  # starts an engine process and waits for its failure
def test_an_engine_that_cannot_start_is_named_with_its_log(tmp_path, tiny_llava, capsys):
    assert main(["eval", "--model", f"transformers-serve/{tiny_llava}", "--engine-args=--no-such-flag", "--runs-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "transformers-serve exited with code" in error and "no-such-flag" in error
    assert not list(tmp_path.iterdir())  # no run folder for a run that never began
    assert _gone(str(tiny_llava), within=5)


@pytest.mark.slow  # 6 s each: a real server process started and stopped by a signal
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_the_engine_stops_when_iadbench_is_stopped(tmp_path, tiny_llava, synthetic_set, how):
    served = tmp_path / "model"
    os.symlink(tiny_llava, served)  # a path of this test's own: the processes found are this test's
    environment = os.environ | {"PYTHONUNBUFFERED": "1"}
    running = subprocess.Popen([sys.executable, "-m", "harness.cli", "eval", "--model", f"transformers-serve/{served}", "--max-new-tokens", "32", "--runs-dir", str(tmp_path / "runs"), "--quiet"],
                               cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob("*/samples.jsonl")):
        assert running.poll() is None, running.stderr.read()
        time.sleep(0.2)
    assert _engine_processes(str(served)), "the engine is not running"
    running.send_signal(how)
    running.wait(timeout=60)
    assert _gone(str(served)), f"the engine outlived iadbench ({how.name})"


def test_engine_command_lines_and_a_missing_engine(tmp_path, capsys):
    vllm = engine_specs()["vllm"]
    if not (Path(sys.executable).parent / "vllm").exists():
        with pytest.raises(Exception, match=r"the vllm engine is not installed here .*pip install vllm"):
            engine_argv(vllm, "Qwen/Qwen2.5-VL-7B-Instruct", 8000, "--tensor-parallel-size 4")
        assert main(["eval", "--model", "vllm/Qwen/Qwen2.5-VL-7B-Instruct", "--runs-dir", str(tmp_path)]) == 2
        assert "pip install vllm" in capsys.readouterr().err
    assert vllm.command == ("vllm", "serve", "{model}", "--host", "{host}", "--port", "{port}")
    sglang = engine_specs()["sglang"]
    assert sglang.command[1:4] == ("-m", "sglang.launch_server", "--model-path")
    served = engine_argv(engine_specs()["transformers-serve"], "/m", 9, "--dtype 'bfloat16'")
    assert served[1:] == ["serve", "/m", "--host", "127.0.0.1", "--port", "9", "--dtype", "bfloat16"]
