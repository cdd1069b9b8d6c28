"""Strategies: parsing, the exact prompts and images they produce, and runs that use them."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.data.mmad import load_mmad
from harness.errors import ConfigError
from harness.models.base import ImagePart
from harness.strategies import parse_strategies
from harness.strategies.agent import render, suspicious_areas
from harness.strategies.rag import KnowledgeBase
from harness.tasks.mcq.task import PromptSettings, build_request
from tests.test_prompting import GOLDEN, _render
from tests.conftest import question_count

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

KNOWLEDGE = {
    "MVTec": {
        "bottle": {
            "broken_large": " <Large breakage>\n Description: A large piece is broken off the bottle mouth.",
            "contamination": " <Contamination>\n Description: Foreign material or dirt on the bottle.",
            "good": " <Normal bottle>\n Description: A round bottle mouth seen from the top.",
        }
    }
}


def test_parse_strategies():
    assert parse_strategies(["rag=topk:3", "agent=expert"]).names == ["rag=topk:3", "agent=expert:bbox"]
    assert parse_strategies([f"agent=maps:{Path(__file__).parent}:contour"]).agent.source == f"maps:{Path(__file__).parent}"
    with pytest.raises(ConfigError, match="not a folder of anomaly maps"):
        parse_strategies(["agent=maps:/no/such/maps"])
    for bad in (["rag=top3"], ["agent=wizard:bbox"], ["agent=expert:sparkles"], ["rag", "rag"], ["magic"]):
        with pytest.raises(ConfigError):
            parse_strategies(bad)
    with pytest.raises(ConfigError, match="unknown"):
        parse_strategies(["tree-of-thought"])


def _request(mmad_tree, strategies, tmp_path, knowledge=None):
    question_set = load_mmad(mmad_tree / "mmad.json")
    question = question_set.questions[1]
    settings = PromptSettings(shots=1, image_max_side=512, strategies=parse_strategies(strategies), knowledge=knowledge, artifacts_dir=tmp_path / "artifacts")
    return build_request(question, question_set.images[question.image_id], mmad_tree, settings, seed=0)


def test_rag_prompt_matches_golden(mmad_tree, tmp_path):
    (tmp_path / "k.json").write_text(json.dumps(KNOWLEDGE))
    request = _request(mmad_tree, ["rag"], tmp_path, KnowledgeBase(tmp_path / "k.json"))
    assert _render(request, mmad_tree.resolve()) == (GOLDEN / "mmad_1shot_rag.txt").read_text()


def test_rag_top_k_keeps_the_most_relevant_entry(tmp_path):
    (tmp_path / "k.json").write_text(json.dumps(KNOWLEDGE))
    base = KnowledgeBase(tmp_path / "k.json")
    text = base.text_for("DS-MVTec", "bottle", "Is there contamination or dirt on the bottle?", top_k=1)
    assert text == KNOWLEDGE["MVTec"]["bottle"]["contamination"]  # DS-MVTec maps to MMAD's MVTec key
    assert base.text_for("DS-MVTec", "bottle", "anything", top_k=None).count("<") == 3


def test_agent_prompt_matches_golden_and_marks_the_mask(mmad_tree, tmp_path):
    request = _request(mmad_tree, ["agent=oracle:bbox"], tmp_path)
    assert _render(request, mmad_tree.resolve()).replace(str((tmp_path / "artifacts").resolve()), "ARTIFACTS") == (GOLDEN / "mmad_1shot_agent.txt").read_text()
    agent = next(p for p in request.messages[0].content if isinstance(p, ImagePart) and p.role == "agent")
    pixels = np.asarray(Image.open(agent.path).convert("RGB"))
    red = (pixels[..., 0] == 255) & (pixels[..., 1] == 0) & (pixels[..., 2] == 0)
    rows, cols = np.nonzero(red)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 7, 0, 7)  # the fixture's 8x8 mask at the corner


def _blobs(boxes, size=100):
    anomaly_map = np.zeros((size, size))
    for top, left, bottom, right, value in boxes:
        anomaly_map[top:bottom, left:right] = value
    return anomaly_map


def test_bbox_rendering_on_known_maps():
    rgb = np.zeros((100, 100, 3), np.uint8)
    anomaly_map = _blobs([(10, 10, 30, 40, 1.0), (60, 60, 70, 90, 0.9), (80, 5, 84, 9, 0.95)])  # the third is the smallest
    image = np.asarray(render(rgb, suspicious_areas(anomaly_map), "bbox"))
    red = image[..., 0] == 255
    assert red[10, 10:40].all() and red[29, 10:40].all() and red[60, 60:90].all()  # two boxes on the blob borders
    assert not red[80:84, 5:9].any()  # at most 2 boxes: the smallest area gets none


def test_post_processing_threshold_median_and_small_areas():
    weak_and_strong = _blobs([(0, 0, 20, 20, 0.5), (50, 50, 70, 70, 1.0)])
    areas = suspicious_areas(weak_and_strong)
    assert areas[60, 60] and not areas[10, 10]  # under 2/3 of the max: not marked
    speck = _blobs([(0, 0, 1, 1, 1.0), (50, 50, 70, 70, 0.9)])
    assert not suspicious_areas(speck)[0, 0]  # under 0.1% of the image: dropped
    flat = np.linspace(0.7, 1.0, 100 * 100).reshape(100, 100)  # over half above 2/3: the median decides
    assert suspicious_areas(flat).mean() == pytest.approx(0.5, abs=0.01)
    assert not suspicious_areas(np.zeros((10, 10))).any()


def test_run_with_strategies_records_them_and_keeps_the_images(tmp_path, synthetic_set):
    code = main(["eval", "--model", "oracle", "--strategy", "rag=topk:2", "--strategy", "agent=oracle:contour", "--limit", "14", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert "_synthetic-quick+rag-topk-2+agent-oracle-contour_" in folder.name  # then a digest of the settings
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["strategies"] == ["rag=topk:2", "agent=oracle:contour"]
    images = {json.loads(line)["image_id"] for line in (folder / "samples.jsonl").read_text().splitlines()}
    assert 0 < len(list((folder / "agent").glob("*.png"))) == len(images)  # one kept image per image asked (14 questions drawn across categories)


def test_rag_without_knowledge_is_a_clear_error_before_any_folder(tmp_path, mmad_tree, capsys):
    code = main(["eval", "--model", "oracle", "--data", f"mmad:{mmad_tree / 'mmad.json'}", "--strategy", "rag", "--runs-dir", str(tmp_path / "runs")])
    assert code == 2 and "needs domain knowledge" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_generated_sets_carry_domain_knowledge(synthetic_set):
    knowledge = json.loads((synthetic_set / "domain_knowledge.json").read_text())
    washer = knowledge["Synthetic"]["washer"]
    assert set(washer) == {"crack", "missing_part", "scratch", "good"}
    assert washer["crack"].startswith(" <Crack>\n Description:")


def test_agent_images_reach_an_api_model(tmp_path, synthetic_set):
    from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig

    with RunningServer(FakeOpenAI(ServerConfig())) as server:
        code = main(["eval", "--model", "openai/fake-vlm", "--base-url", server.base_url, "--strategy", "agent=expert", "--limit", "7", "--no-cache", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
        sizes = server.app.state.image_sizes
    assert code == 0 and len(sizes) == 7 and all(len(request) == 3 for request in sizes)  # template, query, marked query


def test_rotations_move_the_texts_and_the_answer_with_them():
    from harness.schema import Question, Subtask
    from harness.tasks.mcq.task import base_question_id, rotated

    question = Question(id="k#1", image_id="k", index=1, subtask=Subtask.DEFECT_CLASSIFICATION, mmad_type="Defect Classification", text="?", options={"A": "w", "B": "x", "C": "y"}, answer="B")
    assert rotated(question, 0) is question
    turns = [rotated(question, shift) for shift in range(3)]
    assert [t.options[t.answer] for t in turns] == ["x", "x", "x"]  # the right text stays right
    assert sorted(t.answer for t in turns) == ["A", "B", "C"]  # and visits every position
    assert turns[1].id == "k#1@rot1" and base_question_id(turns[1].id) == "k#1"


class AlwaysA:
    """A model with pure position bias."""

    default_concurrency = 16
    cacheable = False

    def __init__(self, name, seed):
        self.name = self.cache_identity = name

    async def generate(self, request):
        from harness.models.base import GenerateResponse

        return GenerateResponse(text="A")

    async def aclose(self):
        return None


def _create_always_a(name, *, seed, options=None):
    return AlwaysA(name, seed)


def test_circular_evaluation_exposes_position_bias(tmp_path, synthetic_set):
    from harness.models.registry import Provider, register_provider

    register_provider(Provider("always-a", "tests.test_strategies:_create_always_a", "test-only"))
    assert main(["eval", "--model", "always-a/x", "--strategy", "circular", "--runs-dir", str(tmp_path), "--run-id", "bias", "--quiet"]) == 0
    assert main(["eval", "--model", "random", "--strategy", "circular", "--runs-dir", str(tmp_path), "--run-id", "rc", "--quiet"]) == 0
    assert main(["eval", "--model", "random", "--runs-dir", str(tmp_path), "--run-id", "plain", "--quiet"]) == 0
    bias = json.loads((tmp_path / "bias/summary.json").read_text())
    assert 20 < bias["strict"]["micro_accuracy"] < 40  # positions are balanced over the set: A is right ~30% of the time
    assert bias["circular"]["accuracy"]["Average"]["Average"] == 0.0  # never right in every rotation
    total = question_count(synthetic_set / "mmad.json")
    rotations = sum(len(q["Options"]) for r in json.loads((synthetic_set / "mmad.json").read_text()).values() for q in r["conversation"])
    assert bias["n_samples"] == bias["n_questions"] == rotations and bias["circular"]["questions"] == total
    circular, plain = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("rc", "plain"))
    assert circular["strict"] == plain["strict"]  # rotation 0 is the plain run, question for question
    assert circular["circular"]["accuracy"]["Average"]["Anomaly Detection"] < 40  # about 0.5 x 0.5
    assert main(["export", str(tmp_path / "rc")]) == 0
    assert len(json.loads((tmp_path / "rc/mmad_answers.json").read_text())) == total


def test_parse_call_pattern_strategies():
    assert parse_strategies(["cot", "sc"]).names == ["cot", "sc=5:0.7"]
    assert parse_strategies(["sc=3:0.5"]).sc.samples == 3
    for bad in (["sc=1:0.5"], ["sc=x"], ["sc=3:9"]):
        with pytest.raises(ConfigError):
            parse_strategies(bad)


def test_chain_of_thought_request_has_three_turns(mmad_tree, tmp_path):
    request = _request(mmad_tree, ["cot"], tmp_path)
    assert [m.role for m in request.messages] == ["user", "assistant", "user"] and request.chain_of_thought
    first, _, last = request.messages
    assert first.content[-1].text.startswith("Before answering, describe the query image")
    assert last.content[0].text.startswith("Following is the question list") and "Question 1:" in last.content[-1].text


class Scripted:
    """Answers from a list, in order; optionally with log-probabilities."""

    default_concurrency = 4
    cacheable = False
    name = cache_identity = "scripted"

    def __init__(self, replies, logprobs=None):
        self.replies, self.logprobs, self.calls = list(replies), logprobs, []

    async def generate(self, request):
        from harness.models.base import GenerateResponse

        self.calls.append(request)
        index = len(self.calls) - 1
        return GenerateResponse(text=self.replies[index], option_logprobs=self.logprobs[index] if self.logprobs else None)

    async def aclose(self):
        return None


def test_self_consistency_votes_and_breaks_ties_by_logprob():
    import asyncio

    from harness.models.base import ChatMessage, GenerateRequest, TextPart
    from harness.strategies.wrappers import SelfConsistency

    request = GenerateRequest(messages=[ChatMessage(content=[TextPart(text="q")])], options={"A": "Yes.", "B": "No."}, option_letters=["A", "B"])
    inner = Scripted(["A", "The answer is B.", "B", "No.", "A"])
    response = asyncio.run(SelfConsistency(inner, 5, 0.7).generate(request))
    assert response.text == "B" and response.consistency == 0.6 and response.reasoning == "votes: Ax2, Bx3"
    assert [call.decoding.temperature for call in inner.calls] == [0.7] * 5 and len({c.sample_seed for c in inner.calls}) == 5
    tie = Scripted(["A", "B"], logprobs=[{"A": -0.1, "B": -3.0}, {"A": -0.2, "B": -0.3}])
    assert asyncio.run(SelfConsistency(tie, 2, 0.7).generate(request)).text == "A"  # summed logprob decides


def test_cot_and_sc_runs_against_an_api_model(tmp_path, synthetic_set):
    from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig

    with RunningServer(FakeOpenAI(ServerConfig(reply_style="sentence"))) as server:
        common = ["--model", "openai/fake-vlm", "--base-url", server.base_url, "--limit", "12", "--no-cache", "--runs-dir", str(tmp_path), "--quiet"]
        assert main(["eval", "--strategy", "cot", "--run-id", "cot", *common]) == 0
        assert server.app.state.requests == 24  # two turns a question
        assert main(["eval", "--strategy", "sc=4:0.8", "--run-id", "sc", *common]) == 0
        assert server.app.state.requests == 24 + 48
    cot = [json.loads(line) for line in (tmp_path / "cot/samples.jsonl").read_text().splitlines()]
    assert all(s["reasoning"] and s["parse_status"] == "ok" for s in cot)
    sc = [json.loads(line) for line in (tmp_path / "sc/samples.jsonl").read_text().splitlines()]
    assert all(s["reasoning"].startswith("votes: ") and 0.25 <= s["consistency"] <= 1 for s in sc)
    assert any(s["consistency"] < 1 for s in sc)  # sampled answers disagree sometimes
    assert json.loads((tmp_path / "sc/spec.json").read_text())["strategies"] == ["sc=4:0.8"]


def test_cot_with_a_model_that_writes_no_text_is_refused_before_the_run(tmp_path, capsys):
    """random and the expert pick letters or boxes: a description turn would fail on every question
    (once 128 failures and exit 4, with a folder left behind); now exit 2 and no folder."""
    for model in ("random", "expert/patchknn"):
        assert main(["eval", "--model", model, "--strategy", "cot", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 2
        assert f"--strategy cot asks {model} to describe the image in words first" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
