"""RobustMAD's protocols as its scripts run them, checked where they leave iadbench: the JSON bodies
an API receives over real HTTP (evaluation/mcq_gpt5nano.py, mcq_gemini3flash.py), and for Qwen
the chat text, token ids, pixels and grids a real processor produces (mcq_qwen2_5_vl_3b.py,
mcq_qwen3_vl_4b.py) on tiny models of the real architectures. Each expected value is built here
from the scripts' facts, independently of iadbench's code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.cli import main
from harness.models.base import ModelOptions
from harness.models.hf import HFModel
from harness.models.hf_processors import load_processor
from harness.tasks.robustmad.data import read_robustmad
from harness.tasks.robustmad.kind import RobustmadTask, family_for
from harness.testing.tiny_vlms import build_tiny_vlm
from tests.test_official_qwen_protocol import import_qwen_vl_utils
from tests.test_robustmad import INSTRUCTION, build_fixture

PAIRWISE = "Anomaly Understanding and Localization (Pair-wise comparison)"


def real_fixture(root: Path) -> Path:
    """The fixture with MVTec AD's PNG and VisA's JPG files at sizes qwen-vl-utils must resize; the
    first PNG query is RGBA with random colour under zero, partial and full alpha (the Qwen scripts'
    convert('RGB') keeps that colour where qwen-vl-utils alone would paint it white)."""
    path = build_fixture(root, images=3)
    data = json.loads(path.read_text())
    rng = np.random.default_rng(7)
    transparent = None
    for index, record in enumerate(data["images"]):
        for key in ("image_path", "reference_image_path"):
            old = root / record[key]
            old.unlink(missing_ok=True)
            if record["dataset"] == "VisA":
                record[key] = record[key].replace(".png", ".JPG")
            size = [(130, 90), (75, 61), (300, 210)][index] if key == "image_path" else (100, 100)
            image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
            if transparent is None and key == "image_path" and record[key].endswith(".png"):
                alpha = np.tile(np.linspace(0, 255, size[0]).astype(np.uint8), (size[1], 1))
                image.putalpha(Image.fromarray(alpha))
                transparent = record[key]
            image.save(root / record[key], **({"quality": 90} if record[key].endswith(".JPG") else {}))
    assert transparent is not None and Image.open(root / transparent).mode == "RGBA"
    path.write_text(json.dumps(data))
    return path


def script_prompt(question: dict) -> str:
    options = "\n".join(f"{key}: {value}" for key, value in question["options"].items())
    return f"{INSTRUCTION}\n\nQuestion: {question['question']}\nOptions:\n{options}"


def data_url(path: Path) -> str:
    """mcq_gpt5nano.py: base64 of the file's bytes, image/jpeg for .jpg/.jpeg else image/png."""
    mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("utf-8")


def api_body(root: Path, record: dict, question: dict, model: str, fields: dict) -> dict:
    """mcq_gpt5nano.py's generate_answer: text, then the query; a pair-wise question gets the
    reference inserted at 1 and its text prefixed; create(model, messages, verbosity, reasoning_effort).
    mcq_gemini3flash.py builds the same parts (text, then reference and query as inline data)."""
    content = [{"type": "text", "text": script_prompt(question)}, {"type": "image_url", "image_url": {"url": data_url(root / record["image_path"])}}]
    if "Pair-wise comparison" in question["robustness_category"]:
        content.insert(1, {"type": "image_url", "image_url": {"url": data_url(root / record["reference_image_path"])}})
        content[0]["text"] = "First image: reference (normal). Second image: query.\n" + content[0]["text"]
    return {"model": model, "messages": [{"role": "user", "content": content}], **fields}


# (model, the script's extra fields, the family, the letter its parser takes from the reply below)
API_FAMILIES = [
    ("gpt-5-nano", {"verbosity": "low", "reasoning_effort": "medium"}, "gpt", "B"),
    # Gemini's thinking_level='medium' reaches its OpenAI-compatible endpoint as reasoning_effort
    ("gemini-3-flash-preview", {"reasoning_effort": "medium"}, "gemini", "D"),
]
REPLY = "The defect looks like answer B.\nFinal assessment: D"


@pytest.mark.parametrize("model,fields,family,letter", API_FAMILIES)
def test_api_bodies_equal_the_scripts_payloads(tmp_path, server, model, fields, family, letter):
    path = real_fixture(tmp_path / "rm")
    running = server(responder=lambda prompt, images: REPLY)
    code = main(["eval", "--task", "robustmad", "--data", f"robustmad:{path}", "--model", f"openai/{model}", "--base-url", running.base_url,
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", "--quiet", "--no-cache", "--max-connections", "2"])
    assert code == 0
    records = json.loads(path.read_text())["images"]
    expected = sorted(json.dumps(api_body(path.parent, record, question, model, fields), sort_keys=True) for record in records for question in record["questions"])
    got = sorted(json.dumps(body, sort_keys=True) for body in running.app.state.bodies)
    assert len(got) == 33 and got == expected
    assert any('"data:image/jpeg;base64,/9j/' in body for body in got) and any('"data:image/png;base64,iVBOR' in body for body in got)
    spec = json.loads((tmp_path / "runs" / "r" / "spec.json").read_text())
    assert spec["protocol"] == f"robustmad-{family}"
    # GPT's script takes the first pattern's match (B); Gemini's rows were re-parsed: the last match (D)
    parsed = {json.loads(line)["parsed"] for line in (tmp_path / "runs" / "r" / "samples.jsonl").read_text().splitlines()}
    assert parsed == {letter}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-qwen")
    return {arch: build_tiny_vlm(arch, folder / arch) for arch in ("qwen2_5_vl", "qwen3_vl")}


def script_inputs(processor, root: Path, record: dict, question: dict, qwen3: bool):
    """mcq_qwen*_vl*.py's generate_answer: Pillow RGB images (reference first), then
    f"{INSTRUCTION}\\n\\nQuestion: {question}\\nOptions:\\n{options}\\n"; the chat template; qwen-vl-utils'
    process_vision_info (image_patch_size=16 for Qwen3-VL); the processor (do_resize=False for Qwen3-VL)."""
    paths = [record["reference_image_path"], record["image_path"]] if question["robustness_category"] == PAIRWISE else [record["image_path"]]
    images = [Image.open(root / p).convert("RGB") for p in paths]
    options = "\n".join(f"{key}: {value}" for key, value in question["options"].items())
    full_prompt = f"{INSTRUCTION}\n\nQuestion: {question['question']}\nOptions:\n{options}\n"
    messages = [{"role": "user", "content": [{"type": "image", "image": image} for image in images] + [{"type": "text", "text": full_prompt}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    utils = import_qwen_vl_utils()
    image_inputs, video_inputs = utils.process_vision_info(messages, image_patch_size=16) if qwen3 else utils.process_vision_info(messages)
    extra = {"do_resize": False} if qwen3 else {}
    return text, processor(text=[text], images=image_inputs, videos=video_inputs, padding=True, return_tensors="pt", **extra)


@pytest.mark.parametrize("arch,model_name", [("qwen2_5_vl", "Qwen2.5-VL-3B-Instruct"), ("qwen3_vl", "Qwen3-VL-4B-Instruct")])
def test_qwen_inputs_equal_the_scripts_pipeline(tmp_path, tiny, arch, model_name):
    path = real_fixture(tmp_path / "rm")
    items, _ = read_robustmad(path)
    records = json.loads(path.read_text())["images"]
    by_id = {f"{record['image_path']}#{q['question_id']}": (record, q) for record in records for q in record["questions"]}
    family = family_for(f"hf/Qwen/{model_name}")
    task = RobustmadTask(items, path.parent, family, 0)
    model = HFModel(f"hf/{tiny[arch]}", seed=0, options=ModelOptions(device="cpu"))
    reference_processor, _ = load_processor(str(tiny[arch]))
    checked = set()
    for ordinal, item in enumerate(items):
        record, question = next(v for k, v in by_id.items() if k.startswith(item.image_path + "#") and v[1]["question"] == item.question)
        if (item.image_path, item.short_category == "pairwise") in checked:
            continue
        checked.add((item.image_path, item.short_category == "pairwise"))
        ours = model.render_request(task.build_request(ordinal))
        text, reference = script_inputs(reference_processor, path.parent, record, question, qwen3=arch == "qwen3_vl")
        assert ours["text"] == text
        for key in ("input_ids", "image_grid_thw", "pixel_values"):
            assert torch.equal(ours["inputs"][key], reference[key]), key
    assert len(checked) == 6  # three images (PNG and JPG, three sizes), alone and beside their reference
    assert any(Image.open(path.parent / image).mode == "RGBA" for image, _ in checked)  # transparency among them
    # 130×90: Qwen2.5-VL 140×84 in 14-px patches (6×10), Qwen3-VL 128×96 in 16-px patches (6×8)
    first = model.render_request(task.build_request(0))
    grid = first["inputs"]["image_grid_thw"][0].tolist()
    assert grid == ([1, 6, 8] if arch == "qwen3_vl" else [1, 6, 10])


def test_dry_run_dumps_the_scripts_payloads_and_sends_nothing(tmp_path, capsys):
    path = real_fixture(tmp_path / "rm")
    dump = tmp_path / "dump"
    assert main(["eval", "--suite", "robustmad", "--data", f"robustmad:{path}", "--model", "openai/gpt-5-nano", "--dry-run", "--dump-requests", str(dump),
                 "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "requests: 33" in out and "distinct images (queries and templates): 6" in out and "estimated cost: $" in out
    records = json.loads(path.read_text())["images"]
    expected = sorted(json.dumps(api_body(path.parent, r, q, "gpt-5-nano", API_FAMILIES[0][1]), sort_keys=True) for r in records for q in r["questions"])
    files = sorted(dump.iterdir())
    assert sorted(json.dumps(json.loads(f.read_text()), sort_keys=True) for f in files) == expected
    assert files[0].name == "00001-VisA_candle_test_broken_large_000.JPG_1.json"  # the question's id, whole
    assert not (tmp_path / "runs").exists()  # no run folder


@pytest.mark.parametrize("arch,family", [("qwen2_5_vl", "qwen2_5"), ("qwen3_vl", "qwen3")])
def test_a_run_under_each_qwen_protocol_end_to_end(tmp_path, tiny, arch, family):
    """The family comes from the model's name (the tiny folders are named like the checkpoints);
    the run answers, parses and scores every question with the real processor and model."""
    path = real_fixture(tmp_path / "rm")
    assert main(["eval", "--task", "robustmad", "--data", f"robustmad:{path}", "--model", f"hf/{tiny[arch]}", "--device", "cpu", "--limit", "12",
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", "--quiet"]) == 0
    folder = tmp_path / "runs" / "r"
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["protocol"] == f"robustmad-{family}" and spec["decoding"]["max_new_tokens"] == 10
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and all(s["parse_status"] in ("ok", "unparsable") and s["error"] is None for s in samples)
    assert {s["robustness_category"] for s in samples} == {"general", "standalone", "pairwise", "unanswerable"}


def test_perturbing_the_originals_equals_running_the_low_release(tmp_path, server):
    """--perturb robustmad-low on RobustMAD_MCQ.json sends exactly what a run on a low file whose
    images generate_LoQ_images.py wrote (dir/KIND/stem_KIND.ext, cv2.imwrite) sends, and scores the same."""
    import cv2

    from harness.tasks.robustmad.loq import assignment, degrade

    path = real_fixture(tmp_path / "rm")
    data = json.loads(path.read_text())
    split = dict(zip(list(dict.fromkeys(r["image_path"] for r in data["images"])), assignment(len(data["images"]))))
    for record in data["images"]:
        kind = split[record["image_path"]]
        for key in ("image_path", "reference_image_path"):
            source = Path(record[key])
            target = source.parent / kind / f"{source.stem}_{kind}{source.suffix}"
            (path.parent / target).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path.parent / target), degrade(cv2.imread(str(path.parent / source)), kind))
            record[key] = str(target)
    low = path.parent / "RobustMAD_MCQ_low.json"
    low.write_text(json.dumps(data))
    running = server(responder=lambda prompt, images: "ABCDE"[len(prompt) % 5])
    summaries = []
    for run_id, extra in (("perturbed", ["--data", f"robustmad:{path}", "--perturb", "robustmad-low"]), ("low", ["--data", f"robustmad:{low}"])):
        before = len(running.app.state.bodies)
        assert main(["eval", "--task", "robustmad", "--model", "openai/gpt-5-nano", "--base-url", running.base_url, "--runs-dir", str(tmp_path / "runs"),
                     "--run-id", run_id, "--quiet", "--no-cache", *extra]) == 0
        summaries.append((sorted(json.dumps(b, sort_keys=True) for b in running.app.state.bodies[before:]),
                          json.loads((tmp_path / "runs" / run_id / "summary.json").read_text())["metrics"]["categories"]))
    assert len(summaries[0][0]) == 33 and summaries[0] == summaries[1]
