"""The local Hugging Face backend on tiny random models of real architectures, built here and loaded
through the same from_pretrained path a hub checkpoint takes. Assertions are on plumbing: image
tokens, multi-image prompts, scoring equal to generate's first step, batch-size invariance,
per-sample errors, sharded runs. What the random models answer is never asserted."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.cli import main
from harness.errors import ConfigError
from harness.models.base import ChatMessage, GenerateRequest, ImagePart, ModelOptions, TextPart
from harness.models.registry import create_model
from harness.models.hf import HFModel, _Pending, group_by_images
from harness.schema import DecodingSpec
from harness.testing.tiny_vlms import ARCHITECTURES

QUESTION = "Is there any defect in the object?\nA. Yes.\nB. No.\nAnswer with the option's letter from the given choices directly."


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> list[Path]:
    """Six distinct images of two sizes (the Qwen processors see them at different token counts)."""
    root = tmp_path_factory.mktemp("hf-images")
    rng = np.random.default_rng(0)
    paths = []
    for index in range(6):
        size = (96, 96) if index % 2 else (128, 96)
        path = root / f"image{index}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def backend(folder: Path, **options) -> HFModel:
    return create_model(f"hf/{folder}", options=ModelOptions(dtype="float32", **options))  # type: ignore[return-value]


def request(images: list[Path], text: str = QUESTION, *, scoring: str = "logprobs", max_new_tokens: int = 6, letters=("A", "B")) -> GenerateRequest:
    parts = [ImagePart(path=str(p), role="template" if i < len(images) - 1 else "query") for i, p in enumerate(images)]
    return GenerateRequest(
        messages=[ChatMessage(content=[*parts, TextPart(text=text)])],
        decoding=DecodingSpec(max_new_tokens=max_new_tokens),
        option_letters=list(letters),
        choice_scoring=scoring,  # type: ignore[arg-type]
    )


def ask_all(model: HFModel, requests: list[GenerateRequest]):
    async def go():
        try:
            return await asyncio.gather(*(model.generate(r) for r in requests))
        finally:
            await model.aclose()

    return asyncio.run(go())


def mixed_requests(images: list[Path], scoring: str) -> list[GenerateRequest]:
    """Prompts of different lengths and image counts, interleaved, as a batch would meet them."""
    texts = [QUESTION, "Which part is damaged? " * 3 + QUESTION, "Look closely. " + QUESTION]
    return [request([images[i % 6], images[(i + 1) % 6]][: 1 + i % 2], texts[i % 3], scoring=scoring) for i in range(9)]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_takes_multi_image_prompts_with_its_image_tokens(tiny_models, images, architecture):
    model = backend(tiny_models[architecture])
    model._load()
    one = model._encode([model._prepare(request([images[1]]))])
    two = model._encode([model._prepare(request([images[3], images[1]]))])
    image_token = model.model.config.image_token_id
    count_one = int((one["input_ids"] == image_token).sum())
    assert count_one > 0, "the processor inserted no image tokens"
    count_two = int((two["input_ids"] == image_token).sum())
    if architecture == "llava_onevision":  # one image goes in at any resolution, several at the base one
        assert count_two % 2 == 0 and 0 < count_two < count_one
    else:
        assert count_two == 2 * count_one  # two same-size images, twice the tokens
    [answer] = ask_all(model, [request([images[3], images[1]])])
    assert answer.error is None and answer.text in {"A", "B"}
    assert set(answer.option_logprobs) == {"A", "B"}
    assert answer.usage.prompt_tokens == int(two["attention_mask"].sum())


@pytest.mark.parametrize("architecture", ["qwen2_vl", "llava", "idefics3"])
def test_logprob_scoring_equals_the_first_step_of_generate(tiny_models, images, architecture):
    model = backend(tiny_models[architecture])
    [scored] = ask_all(model, [request([images[0], images[1]])])
    inputs = model._encode([model._prepare(request([images[0], images[1]]))])
    with torch.inference_mode():
        out = model.model.generate(**inputs, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True, pad_token_id=model.tokenizer.pad_token_id)
    first_step = torch.log_softmax(out.logits[0][0].float(), dim=-1)
    for letter in ("A", "B"):
        ids = model._letter_token_ids(letter)
        assert scored.option_logprobs[letter] == pytest.approx(float(torch.logsumexp(first_step[ids], dim=0)), abs=1e-5)
    assert scored.text == max(scored.option_logprobs, key=scored.option_logprobs.get)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_results_do_not_depend_on_batch_size(tiny_models, images, architecture):
    folder = tiny_models[architecture]
    for scoring in ("logprobs", "generate"):
        alone = ask_all(backend(folder, batch_size=1), mixed_requests(images, scoring))
        batched_model = backend(folder, batch_size=4)
        batched = ask_all(batched_model, mixed_requests(images, scoring))
        assert [r.text for r in alone] == [r.text for r in batched]
        assert [r.usage for r in alone] == [r.usage for r in batched]
        if scoring == "logprobs":
            for a, b in zip(alone, batched):
                assert a.option_logprobs.keys() == b.option_logprobs.keys()
                assert all(abs(a.option_logprobs[k] - b.option_logprobs[k]) <= 1e-4 for k in a.option_logprobs)


def test_questions_about_one_image_are_batched_together():
    def pending(image: str) -> _Pending:
        return _Pending(GenerateRequest(messages=[ChatMessage(content=[ImagePart(path=image), TextPart(text="q")])]), None, (image,))  # type: ignore[arg-type]

    queue = [pending(name) for name in ["a", "b", "a", "c", "b", "a", "c"]]
    assert [p.images[0] for p in group_by_images(queue, 4)] == ["a", "a", "a", "b"]
    assert [p.images[0] for p in group_by_images(queue, 7)] == ["a", "a", "a", "b", "b", "c", "c"]


def test_a_bad_image_or_an_overlong_prompt_costs_only_its_own_sample(tiny_models, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    model = backend(tiny_models["qwen2_vl"], batch_size=4)
    overlong = "defect " * 5000  # > the tiny model's 4,096-token context
    answers = ask_all(model, [request([images[0]]), request([broken]), request([images[1]], overlong + QUESTION), request([images[2]])])
    assert answers[0].error is None and answers[3].error is None
    assert answers[1].error.startswith("ImageDecodeError") and "broken.png" in answers[1].error
    assert answers[2].error.startswith("ContextLengthError") and "4096" in answers[2].error


def test_out_of_memory_halves_the_batch_and_fails_only_at_batch_size_one(tiny_models, images, monkeypatch):
    model = backend(tiny_models["llava"], batch_size=8)
    model._load()
    forward = model.model.forward
    poisoned = str(images[5])

    def limited_forward(*args, **kwargs):  # a GPU that holds 2 prompts, and one prompt too big for it
        batch = kwargs["input_ids"].shape[0]
        if batch > 2 or limited_forward.poison:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    limited_forward.poison = False
    monkeypatch.setattr(model.model, "forward", limited_forward)
    original_answer = model._answer_prepared

    def answer(batch):
        limited_forward.poison = any(item.request.messages[0].content[0].path == poisoned for item in batch)
        return original_answer(batch)

    monkeypatch.setattr(model, "_answer_prepared", answer)
    answers = ask_all(model, [request([images[i]]) for i in range(6)])
    assert all(a.error is None for a in answers[:5])
    assert answers[5].error.startswith("OutOfMemoryError") and "batch size 1" in answers[5].error
    assert model._batch_cap == 1  # halved on every failure, remembered for later batches


def test_sampled_decoding_is_seeded_per_sample(tiny_models, images):
    folder = tiny_models["qwen2_vl"]

    def sampled(seed: int) -> GenerateRequest:
        r = request([images[0]], scoring="generate", max_new_tokens=8)
        return r.model_copy(update={"decoding": DecodingSpec(max_new_tokens=8, temperature=1.5), "sample_seed": seed})

    first = ask_all(backend(folder, batch_size=4), [sampled(s) for s in range(4)])
    again = ask_all(backend(folder, batch_size=1), [sampled(s) for s in reversed(range(4))])
    assert [r.text for r in first] == [r.text for r in reversed(again)]
    assert len({r.text for r in first}) > 1  # temperature really samples


def test_a_folder_without_safetensors_is_refused_unless_pickle_is_allowed(tiny_models, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_models["llava"] / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="safetensors"):
        backend(folder).ready()
    backend(folder, allow_pickle_weights=True).ready()
    with pytest.raises(ConfigError, match="not a model folder"):
        backend(tmp_path).ready()


def _samples(run: Path) -> dict[str, dict]:
    return {s["question_id"]: s for s in map(json.loads, (run / "samples.jsonl").read_text().splitlines())}


@pytest.mark.slow  # 6 s: a local model at three batch sizes and in two processes
def test_cli_runs_at_any_batch_size_and_in_two_processes_with_the_same_answers(tiny_models, tmp_path, capsys):
    model = f"hf/{tiny_models['qwen2_vl']}"
    common = ["eval", "--model", model, "--limit", "24", "--runs-dir", str(tmp_path), "--choice-scoring", "logprobs", "--no-cache", "--quiet"]
    assert main([*common, "--run-id", "one", "--batch-size", "1"]) == 0
    assert main([*common, "--run-id", "eight", "--batch-size", "8"]) == 0
    assert main([*common, "--run-id", "sharded", "--batch-size", "3", "--num-processes", "2"]) == 0
    one, eight, sharded = (_samples(tmp_path / name) for name in ("one", "eight", "sharded"))
    assert len(one) == 24 and one.keys() == eight.keys() == sharded.keys()
    assert len((tmp_path / "sharded" / "samples.jsonl").read_text().splitlines()) == 24  # none lost, none twice
    assert not (tmp_path / "sharded" / "shards").exists()  # merged and cleaned up
    for other in (eight, sharded):
        for key, sample in one.items():
            assert other[key]["parsed"] == sample["parsed"]
            assert all(math.isclose(other[key]["option_logprobs"][k], v, abs_tol=1e-4) for k, v in sample["option_logprobs"].items())
    spec = json.loads((tmp_path / "sharded" / "spec.json").read_text())
    assert spec["model_options"]["trust_remote_code"] is False and spec["choice_scoring"] == "logprobs"
    assert {"torch", "transformers", "accelerate"} <= spec["versions"].keys()
    from harness.models.hf_processors import torchvision_available

    one_spec = json.loads((tmp_path / "one" / "spec.json").read_text())
    assert spec["notes"] == one_spec["notes"] and (torchvision_available() or spec["notes"])  # the shards' notes, as one process records them
    summary = json.loads((tmp_path / "sharded" / "summary.json").read_text())
    assert summary["n_samples"] == 24 and summary["image_metrics"]["scored"] > 0  # P(Yes) kept as the anomaly score


@pytest.mark.slow  # 5 s: two processes, one interrupted
def test_an_interrupted_sharded_run_merges_what_its_processes_finished(tiny_models, tmp_path):
    from harness.run.runlog import RunFolder

    model = f"hf/{tiny_models['llava']}"
    common = ["eval", "--model", model, "--limit", "10", "--runs-dir", str(tmp_path), "--no-cache", "--quiet", "--max-new-tokens", "4"]
    assert main([*common, "--run-id", "ref"]) == 0
    reference = (tmp_path / "ref" / "samples.jsonl").read_text().splitlines()
    run = tmp_path / "cut"
    assert main([*common, "--run-id", "cut", "--limit", "10"]) == 0
    # Pretend a data-parallel run was killed: some answers only in a shard file, one also merged.
    lines = (run / "samples.jsonl").read_text().splitlines()
    (run / "samples.jsonl").write_text("\n".join(lines[:3]) + "\n")
    (run / "shards").mkdir()
    (run / "shards" / "1-of-2.jsonl").write_text("\n".join(lines[2:6]) + "\n" + lines[6][:20])  # a cut last line
    (run / "summary.json").unlink()
    assert main(["eval", "--resume", str(run), "--quiet", "--num-processes", "2"]) == 0
    merged = RunFolder(run).read_samples()
    assert sorted(s.question_id for s in merged) == sorted(json.loads(line)["question_id"] for line in reference)
    assert {s.question_id: s.reply for s in merged} == {json.loads(x)["question_id"]: json.loads(x)["reply"] for x in reference}


def test_a_chat_template_that_writes_bos_gets_no_second_one(tiny_models, images):
    model = backend(tiny_models["gemma3"])
    model._load()
    prepared = model._prepare(request([images[1]]))
    assert prepared.text.startswith("<bos>")
    ids = model._encode([prepared])["input_ids"][0].tolist()
    bos = model.tokenizer.bos_token_id
    assert ids.count(bos) == 1 and (ids[0] == bos or model.tokenizer.padding_side == "left")
