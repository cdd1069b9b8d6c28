"""MMAD's official API protocols, checked on the wire: the bodies the test server receives equal the
official scripts' payloads, built here independently from the facts read from the scripts
(jam-cc/MMAD evaluation/examples/GPT4/gpt4o.py, gpt4o-mini.py, Gemini/gemini_query.py)."""

import base64
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.cli import main

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

GPT4O_INSTRUCTION = (
    "\nYou are an industrial inspector who checks products by images. You should judge whether there is a defect in the query image "
    "and answer the questions about it.\nAnswer with the option's letter from the given choices directly!\n\n"
    "Finally, you should output a list of answer, such as:\n1. Answer: B.\n2. Answer: B.\n3. Answer: A.\n...\n"
)
MINI_INSTRUCTION = GPT4O_INSTRUCTION.replace("directly!", "directly.")
GEMINI_INSTRUCTION = MINI_INSTRUCTION.replace("output a list of answer, such as", "output a answer list of every question, such as") + "\n"
REFUSALS = ["please", "sorry", "today", "cannot assist"]

QUESTIONS = [
    ("Is there any defect in the object?", {"A": "Yes.", "B": "No."}, "A", "Anomaly Detection"),
    ("What type of defect?", {"A": "Crack", "B": "Broken", "C": "Stain"}, "B", "Defect Classification"),
    ("Where is the defect?", {"A": "Top left.", "B": "Center."}, "A", "Defect Localization"),
    ("Describe it.", {"A": "Large break.", "B": "Small dot."}, "A", "Defect Description"),
    ("What follows?", {"A": "Leaks.", "B": "Nothing.", "C": "Shines.", "D": "Floats."}, "A", "Defect Analysis"),
]
FIVE = "DS-MVTec/bottle/image/broken_large/000.png"  # 5 questions, a 40×30 PNG query
SMALL = "VisA/candle/test/bad/002.JPG"  # 1 question, a 200×150 JPEG query
LARGE = "DS-MVTec/bottle/image/good/001.png"  # 2 questions, a 700×600 PNG query


def textured(path: Path, width: int, height: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90) if path.suffix.lower() == ".jpg" else Image.fromarray(pixels).save(path)


@pytest.fixture
def official_tree(tmp_path) -> Path:
    root = tmp_path / "MMAD"
    textured(root / FIVE, 40, 30, 1)
    textured(root / SMALL, 200, 150, 2)
    textured(root / LARGE, 700, 600, 3)
    textured(root / "MVTec-AD/bottle/train/good/000.png", 64, 48, 4)
    textured(root / "VisA/candle/train/good/010.JPG", 90, 60, 5)
    conversation = [{"Question": q, "Options": o, "Answer": a, "type": t} for q, o, a, t in QUESTIONS]
    good = [{"Question": "Is there any defect in the object?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "B", "type": "Anomaly Detection"},
            {"Question": "What is it?", "Options": {"A": "Bottle.", "B": "Cable."}, "Answer": "A", "type": "Object Classification"}]
    mmad = {
        FIVE: {"conversation": conversation, "mask_path": "", "similar_templates": [], "random_templates": ["MVTec-AD/bottle/train/good/000.png"]},
        SMALL: {"conversation": conversation[:1], "mask_path": "", "similar_templates": [], "random_templates": ["VisA/candle/train/good/010.JPG"]},
        LARGE: {"conversation": good, "mask_path": "", "similar_templates": [], "random_templates": ["MVTec-AD/bottle/train/good/000.png"]},
    }
    (root / "mmad.json").write_text(json.dumps(mmad))
    return root




def official_image(path: Path) -> str:
    """The scripts' encode_image_to_base64: cv2 read, fit 512×512 with int() truncation, INTER_AREA, .jpg."""
    image = cv2.imread(str(path))
    height, width = image.shape[:2]
    scale = min(512 / width, 512 / height)
    resized = cv2.resize(image, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
    return base64.b64encode(cv2.imencode(".jpg", resized)[1]).decode("utf-8")


def mime_by_extension(path: str, default: str) -> str:
    lower = path.lower()
    return "image/png" if lower.endswith(".png") else "image/jpeg" if lower.endswith((".jpg", ".jpeg")) else default


def image_part(root: Path, relative: str, mime: str, detail: str | None = "low") -> dict:
    url = {"url": f"data:{mime};base64,{official_image(root / relative)}"}
    if detail:
        url["detail"] = detail
    return {"type": "image_url", "image_url": url}


def question_text(index: int, numbering: str) -> str:
    question, options, _, _ = QUESTIONS[index]
    prefix = {"plain": "Question: ", "index": f"Question {index + 1}: "}[numbering]
    return f"{prefix}{question} \n" + "".join(f"{k}. {v}\n" for k, v in options.items())


def one_text_body(model: str, root: Path, query: str, template: str, instruction: str, questions: list[str], *, mime, detail, max_tokens) -> dict:
    text = instruction + "The first 1 image is the normal sample, which can be used as a template to compare." + "The last image is the query image"
    text += "Following is the question list: " + "\n" + "".join(q + "\n" for q in questions)
    body = {"model": model, "messages": [{"role": "user", "content": [image_part(root, template, mime(template), detail), image_part(root, query, mime(query), detail), {"type": "text", "text": text}]}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    return body


def run(tmp_path, root, model, running, *extra, expect=0) -> Path:
    code = main(["eval", "--model", model, "--suite", "mmad-official", "--data", f"mmad:{root / 'mmad.json'}", "--base-url", running.base_url,
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", "--quiet", "--no-cache", "--max-connections", "1", *extra])
    assert code == expect
    return tmp_path / "runs" / "r"


def samples(folder: Path) -> dict[str, dict]:
    return {s["question_id"]: s for s in map(json.loads, (folder / "samples.jsonl").read_text().splitlines())}


def test_gpt4o_bodies_equal_the_official_cumulative_payloads(tmp_path, official_tree, server):
    letters = ["A", "B", "A", "A", "A"]
    running = server(responder=lambda prompt, images: "\n".join(f"{k + 1}. Answer: {letters[k]}." for k in range(prompt.count("Question: "))))
    folder = run(tmp_path, official_tree, "openai/gpt-4o", running)
    bodies = running.app.state.bodies
    png_or_jpeg = lambda path: mime_by_extension(path, "image/jpeg")  # noqa: E731
    expected = [one_text_body("gpt-4o", official_tree, FIVE, "MVTec-AD/bottle/train/good/000.png", GPT4O_INSTRUCTION, [question_text(k, "plain") for k in range(i + 1)],
                              mime=png_or_jpeg, detail="low", max_tokens=200) for i in range(5)]
    expected.append(one_text_body("gpt-4o", official_tree, SMALL, "VisA/candle/train/good/010.JPG", GPT4O_INSTRUCTION, [question_text(0, "plain")], mime=png_or_jpeg, detail="low", max_tokens=200))
    five = [b for b in bodies if b in expected[:5]]
    assert len(bodies) == 5 + 1 + 2 and len(five) == 5, "one call per question, cumulative"
    for body in expected:
        assert body in bodies, json.dumps(body)[:300]
    # no temperature (the API default), max_tokens rather than max_completion_tokens, PNG label on JPEG bytes
    assert all("temperature" not in b and "top_p" not in b and b["max_tokens"] == 200 for b in bodies)
    first = expected[0]["messages"][0]["content"][1]["image_url"]["url"]
    assert first.startswith("data:image/png;base64,/9j/")  # JPEG bytes labelled PNG, as the script did
    # small images are enlarged to fit 512 (40×30 → 512×384), large ones shrunk (700×600 → 512×438)
    sizes = {Image.open(__import__("io").BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]))).size
             for b in bodies for p in b["messages"][0]["content"] if p["type"] == "image_url"}
    assert {(512, 384), (512, 438), (512, 341)} <= sizes
    # the last letter of call i answers question i; both answers are kept
    got = samples(folder)
    assert [got[f"{FIVE}#{i}"]["official_answer"] for i in range(5)] == ["A", "B", "A", "A", "A"]
    assert [got[f"{FIVE}#{i}"]["parsed"] for i in range(5)] == ["A", "B", "A", "A", "A"]  # strict: the numbered entry i
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["protocol"] == "gpt-4o" and spec["protocol_differences"] and spec["decoding"]["sampling"] == "model-default"


def test_gpt4o_mini_one_question_per_call_numbered(tmp_path, official_tree, server):
    running = server()
    run(tmp_path, official_tree, "openai/gpt-4o-mini", running)
    bodies = running.app.state.bodies
    expected = [one_text_body("gpt-4o-mini", official_tree, FIVE, "MVTec-AD/bottle/train/good/000.png", MINI_INSTRUCTION, [question_text(i, "index")],
                              mime=lambda path: "image/jpeg", detail="low", max_tokens=600) for i in range(5)]
    assert len(bodies) == 8
    for body in expected:
        assert body in bodies


def test_refusal_words_are_asked_again_then_recorded_as_failed(tmp_path, official_tree, server):
    running = server(responder=lambda prompt, images: "Sorry, please provide a clearer image.")
    folder = run(tmp_path, official_tree, "openai/gpt-4o-mini", running, expect=4)  # every question failed
    assert len(running.app.state.bodies) == 8 * 3  # 3 tries each, as gpt4o-mini.py
    sample = samples(folder)[f"{SMALL}#0"]
    assert sample["error"].startswith("RefusalRetriesExhausted") and sample["official_answer"] == ""


def test_gemini_two_calls_per_image_letters_by_position(tmp_path, official_tree, server):
    def reply(prompt: str, images: int) -> str:
        return "B" if "Is there any defect" in prompt else "1. Answer: B.\n2. Answer: A." if "Where is" not in prompt else "1. B 2. A 3. A 4. A"

    running = server(responder=reply)
    folder = run(tmp_path, official_tree, "openai/gemini-1.5-flash", running)
    bodies = running.app.state.bodies
    assert len(bodies) == 2 + 1 + 2, "the detection question alone, then the rest in ONE call (asked once)"
    rest = one_text_body("gemini-1.5-flash", official_tree, FIVE, "MVTec-AD/bottle/train/good/000.png", GEMINI_INSTRUCTION, [question_text(k, "plain") for k in range(1, 5)],
                         mime=lambda path: mime_by_extension(path, "image/png"), detail=None, max_tokens=None)
    assert rest in bodies
    got = samples(folder)
    assert [got[f"{FIVE}#{i}"]["official_answer"] for i in range(5)] == ["B", "B", "A", "A", "A"]
    assert [got[f"{FIVE}#{i}"]["cached"] for i in range(1, 5)].count(False) == 1  # one paid call for four questions
    # the two-question image's second reply has 2 letters for 1 question: the official script dropped the image
    assert got[f"{LARGE}#1"]["official_answer"] is None and "dropped" in got[f"{LARGE}#1"]["official_reason"]
    answers = json.loads((folder / "summary.json").read_text())["mmad_compat"]
    assert answers["unrecorded"] == 2  # both records of that image


def test_dry_run_dumps_the_exact_bodies(tmp_path, official_tree, server, capsys):
    dump = tmp_path / "dump"
    code = main(["eval", "--model", "openai/gpt-4o", "--suite", "mmad-official", "--data", f"mmad:{official_tree / 'mmad.json'}", "--base-url", "http://127.0.0.1:9/v1",
                 "--dry-run", "--dump-requests", str(dump)])
    assert code == 0
    files = sorted(dump.glob("*.json"))
    assert len(files) == 8 and "requests: 8" in capsys.readouterr().out
    first = json.loads(files[0].read_text())
    assert first == one_text_body("gpt-4o", official_tree, FIVE, "MVTec-AD/bottle/train/good/000.png", GPT4O_INSTRUCTION, [question_text(0, "plain")],
                                  mime=lambda path: mime_by_extension(path, "image/jpeg"), detail="low", max_tokens=200)


def test_official_protocols_refuse_flags_that_change_them(tmp_path, official_tree, capsys):
    code = main(["eval", "--model", "openai/gpt-4o", "--suite", "mmad-official", "--data", f"mmad:{official_tree / 'mmad.json'}", "--temperature", "0", "--dry-run"])
    assert code != 0 and "--temperature" in capsys.readouterr().err
    code = main(["eval", "--model", "openai/my-model", "--suite", "mmad-official", "--data", f"mmad:{official_tree / 'mmad.json'}", "--dry-run"])
    err = capsys.readouterr().err
    assert code != 0 and "--protocol" in err and "qwen2.5-vl" in err


def test_qwen_protocol_through_an_openai_compatible_server(tmp_path, official_tree, server):
    running = server()
    run(tmp_path, official_tree, "openai/my-vllm-qwen", running, "--protocol", "qwen2.5-vl")
    body = running.app.state.bodies[0]
    content = body["messages"][0]["content"]
    assert [p["type"] for p in content] == ["text", "text", "text", "image_url", "text", "image_url", "text", "text"]
    assert content[1]["text"] == "Answer with the option's letter from the given choices directly! " and content[-1]["text"] == "Is there any defect in the object? \nA. Yes.\nB. No.\n"
    assert body["chat_template_kwargs"] == {"add_vision_id": True} and body["mm_processor_kwargs"] == {"min_pixels": 50176, "max_pixels": 1003520}
    assert body["max_tokens"] == 128 and "temperature" not in body
    image = Image.open(__import__("io").BytesIO(base64.b64decode(content[5]["image_url"]["url"].split(",", 1)[1])))
    assert content[5]["image_url"]["url"].startswith("data:image/png;base64,") and image.size == (84, 56)  # 40×30 is below 4 tiles: scaled up to 84×56, as qwen-vl-utils rounds
