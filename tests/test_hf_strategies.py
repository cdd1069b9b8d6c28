"""Every enhancement strategy through the local Hugging Face backend: what the model is shown
(images and text through its own chat template), and the ablation over all arms."""

from __future__ import annotations

import json

import pytest

from harness.results.ablation import parse_arms
from harness.cli import main
from harness.models.hf import HFModel
from harness.run.runlog import RunFolder


@pytest.fixture
def prompts_seen(monkeypatch):
    """Every prompt text the backend renders and the number of images it sends with it."""
    seen: list[tuple[str, int]] = []
    prepare = HFModel._prepare

    def spy(self, request):
        prepared = prepare(self, request)
        if not hasattr(prepared, "error"):
            seen.append((prepared.text, len(prepared.images)))
        return prepared

    monkeypatch.setattr(HFModel, "_prepare", spy)
    return seen


def run(tmp_path, model: str, run_id: str, *extra: str) -> RunFolder:
    command = ["eval", "--model", model, "--limit", "8", "--runs-dir", str(tmp_path), "--run-id", run_id, "--quiet", "--no-cache", "--max-new-tokens", "4", *extra]
    assert main(command) == 0
    return RunFolder(tmp_path / run_id)


def test_strategies_shape_what_a_local_model_sees(tiny_models, synthetic_set, tmp_path, prompts_seen):
    model = f"hf/{tiny_models['qwen2_vl']}"
    run(tmp_path, model, "base")
    baseline = list(prompts_seen)
    assert all(images == 2 for _, images in baseline)  # template + query
    prompts_seen.clear()

    run(tmp_path, model, "rag", "--strategy", "rag")
    assert all("<|vision_start|>" in text for text, _ in prompts_seen)
    assert all(len(text) > len(base) for (text, _), (base, _) in zip(prompts_seen, baseline))  # knowledge inserted
    prompts_seen.clear()

    run(tmp_path, model, "agent", "--strategy", "agent=expert:bbox")
    assert all(images == 3 for _, images in prompts_seen)  # the expert's overlay after the query
    assert all(text.count("<|vision_start|>") == 3 for text, _ in prompts_seen)
    prompts_seen.clear()

    cot = run(tmp_path, model, "cot", "--strategy", "cot", "--choice-scoring", "logprobs")
    turns = [text for text, _ in prompts_seen]
    assert len(turns) == 16  # a description turn, then the question with the description kept
    second = [t for t in turns if t.count("<|im_start|>assistant") == 2]
    assert len(second) == 8
    for sample in cot.read_samples():
        assert sample.reasoning and sample.reasoning in next(t for t in second if sample.reasoning in t)
        assert sample.option_logprobs  # the question turn is still scored by logprobs

    sc = run(tmp_path, model, "sc", "--strategy", "sc=3:1.0")
    assert all(s.consistency is not None and s.reasoning.startswith("votes:") for s in sc.read_samples())


def test_ablation_over_every_strategy_with_a_local_model(tiny_models, synthetic_set, tmp_path):
    out = tmp_path / "ablation"
    arms = "baseline,rag,agent=expert:bbox,cot,sc=3:0.7,circular"
    command = ["ablate", "--model", f"hf/{tiny_models['llava']}", "--strategies", arms, "--limit", "14", "--out", str(out), "--quiet", "--max-new-tokens", "4", "--batch-size", "4"]
    assert main(command) == 0
    table = json.loads((out / "ablation.json").read_text())
    assert [row["arm"] for row in table["rows"]] == arms.split(",")
    for row in table["rows"]:
        assert row["tokens"] > 0
    circular_row = table["rows"][-1]
    circular_summary = json.loads((out / "circular" / "summary.json").read_text())["circular"]
    assert circular_row["accuracy"]["Average"] == pytest.approx(circular_summary["accuracy"]["Average"]["Average"])
    for arm in parse_arms(arms):
        samples = RunFolder(out / arm.slug).read_samples()
        assert samples and not any(s.error for s in samples), arm.name


def test_self_consistency_under_logprob_scoring_samples_letters(tiny_models, synthetic_set, tmp_path):
    model = f"hf/{tiny_models['qwen2_vl']}"
    first = run(tmp_path, model, "sc1", "--strategy", "sc=5:1.0", "--choice-scoring", "logprobs", "--batch-size", "8")
    again = run(tmp_path, model, "sc2", "--strategy", "sc=5:1.0", "--choice-scoring", "logprobs", "--batch-size", "2")
    votes = [s.reasoning for s in first.read_samples()]
    assert any(v.count("x") > 1 for v in votes)  # the letters' distribution is sampled, not its argmax
    assert sorted((s.question_id, s.reasoning, s.parsed) for s in first.read_samples()) == sorted((s.question_id, s.reasoning, s.parsed) for s in again.read_samples())
