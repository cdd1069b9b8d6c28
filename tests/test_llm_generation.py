"""LLM-assisted question generation through the real OpenAI client and the test server, with
scripted answers that take every path: accepted, self-check failed, blind-answerable, duplicates."""

import json
import logging
import re

import numpy as np
from PIL import Image

from harness.cli import main
from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig
from question_gen.llm_assist import near_duplicates, parse_json_reply
from tests.conftest import write_mask

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)


def _textured(path, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((63, 63, 3)) * 60 + 100).astype(np.uint8)).save(path)


def _factory(root):
    for i in range(2):
        _textured(root / f"widget/train/good/{i:03d}.png", i)
    _textured(root / "widget/test/good/000.png", 3)
    for seed, defect in enumerate(("scratch", "crack", "hole", "stain")):
        _textured(root / f"widget/test/{defect}/000.png", 10 + seed)
        write_mask(root / f"widget/ground_truth/{defect}/000_mask.png", (25, 25, 37, 37), size=63)


def _options(prompt):
    return dict(re.findall(r"^([A-E])\. (.*)$", prompt, re.M))


FACTS = [
    {"question": "What colour is the widget?", "answer": "Mottled grey", "distractors": ["Bright red", "Deep blue", "Pure white", "Green"]},
    {"question": "How many holes does the widget have?", "answer": "None", "distractors": ["One", "Two", "Three", "Four"]},
    {"question": "What is the widget made of?", "answer": "Stone", "distractors": ["Glass", "Paper", "Rubber", "Cloth"]},
]
FACT_ASKED: dict = {}


def scripted(prompt, images):
    """A generator model whose behaviour depends on the defect it was told about; for the category
    facts, one fact holds on every normal image, one is answered wrong on the second image, one is
    answered right without any image."""
    if '"facts"' in prompt:
        assert images == 2 and "normal, defect-free samples" in prompt  # the category's two normal images
        return json.dumps({"facts": FACTS})
    fact = next((f for f in FACTS if f"Question 1: {f['question']}" in prompt or f"Question: {f['question']}" in prompt), None)
    if fact is not None:
        options = _options(prompt)
        right = next(letter for letter, text in options.items() if text == fact["answer"])
        wrong = next(letter for letter in options if letter != right)
        if "You cannot see the image" in prompt:
            return right if fact is FACTS[2] else wrong
        assert images == 1  # one normal image per check, no template
        FACT_ASKED[fact["question"]] = FACT_ASKED.get(fact["question"], 0) + 1
        return wrong if fact is FACTS[1] and FACT_ASKED[fact["question"]] == 2 else right
    if '"object": "..."' in prompt:
        assert images == (3 if "defect type" in prompt else 2)  # template, query (and the outline)
        kind = re.search(r"defect type: (\w+)", prompt)
        tag = kind.group(1) if kind else "normal"
        return "Here you go:\n```json\n" + json.dumps({"description": f"desc {tag}", "analysis": f"cause {tag}", "object": f"object {tag}"}) + "\n```"
    if '"question"' in prompt:
        text = re.search(r"^(?:Description|Analysis|Note about the object): (.*)$", prompt, re.M).group(1)
        tag = text.split()[-1]
        distractors = ["Shiny paint", "shiny paint!", "A dent"] if tag == "contamination" else [f"Rust {tag}", f"Bent pin {tag}", f"Torn foil {tag}"]
        return json.dumps({"question": f"What is true of this {tag} part?", "correct": text, "distractors": distractors})
    options = _options(prompt)
    right = next(letter for letter, text in options.items() if text.startswith(("desc", "cause", "object")))
    wrong = next(letter for letter in options if letter != right)
    tag = next(text for text in options.values() if text.startswith(("desc", "cause", "object"))).split()[-1]
    if "You cannot see the image" in prompt:
        assert images == 0
        return right if tag == "hole" else wrong
    assert images == 2 and "Following is the question list" in prompt
    return wrong if tag == "crack" else right


def test_llm_questions_are_verified_and_carry_provenance(tmp_path, capsys):
    _factory(tmp_path / "src")
    with RunningServer(FakeOpenAI(ServerConfig(responder=scripted))) as server:
        command = ["generate", "--source", f"mvtec:{tmp_path / 'src'}", "--out", str(tmp_path / "set"), "--llm", "openai/writer", "--base-url", server.base_url, "--report"]
        assert main(command) == 0
        requests = server.app.state.requests
    report = json.loads((tmp_path / "set/generation_report.json").read_text())
    llm = report["llm"]
    assert llm["accepted"] == {"Defect Description": 1, "Defect Analysis": 1, "Object Analysis": 2}  # scratch, and the normal image
    discarded = llm["discarded"]
    assert sum(v for k, v in discarded.items() if "self-check failed" in k) == 3  # crack
    assert sum(v for k, v in discarded.items() if "blind-answerable" in k) == 3  # hole
    assert sum(v for k, v in discarded.items() if "near-duplicate" in k) == 3  # stain
    assert llm["blind_answerability"] == {"checked": 7, "blind_answerable": 3, "rate_percent": 300 / 7}
    # 5 images written; 13 questions proposed; 10 self-checked; 7 blind-checked
    assert llm["requests"] == 5 + 13 + 10 + 7
    # category facts: 1 write; the kept fact 2 checks + 1 blind; the second fails on its 2nd check; the third is blind-answerable
    facts = report["llm_facts"]
    assert facts["requests"] == 1 + 3 + 2 + 3 and requests == llm["requests"] + facts["requests"]
    assert facts["written"] == 3 and facts["kept"] == {"widget": 1}
    assert facts["discarded"] == {"answered wrong on a normal image (the fact does not hold for every sample)": 1, "blind-answerable (answered right without an image)": 1}
    assert report["quality"]["blind_answerability"]["blind_answerable"] == 3
    assert "blind-answerable" in capsys.readouterr().out
    mmad = json.loads((tmp_path / "set/mmad.json").read_text())
    scratch = mmad["src/widget/test/scratch/000.png"]["conversation"]
    written = [q for q in scratch if "generator" in q.get("provenance", {})]
    assert {q["type"] for q in written} == {"Defect Description", "Defect Analysis", "Object Analysis"}
    for question in written:
        assert question["Options"][question["Answer"]].endswith("scratch")
        assert question["provenance"]["generator"] == "openai/writer" and question["provenance"]["self_answer"] == question["Options"][question["Answer"]]
        assert question["provenance"]["blind_answer"] != question["Options"][question["Answer"]] and len(question["provenance"]["prompts"]) == 12
    crack = mmad["src/widget/test/crack/000.png"]["conversation"]
    assert not any("generator" in q.get("provenance", {}) for q in crack)  # rejected: the template questions stay
    assert {"Defect Classification", "Defect Localization"} <= {q["type"] for q in crack}
    # the hole's written questions were blind-answerable: its template Description stays (the crack's
    # outline is a box on plain texture, whose pixels confirm no line: no measured description of it)
    hole = mmad["src/widget/test/hole/000.png"]["conversation"]
    assert any(q["type"] == "Defect Description" and "generator" not in q.get("provenance", {}) for q in hole)
    # the crack image's Object Analysis is the verified category fact
    fact_question = next(q for q in crack if q["type"] == "Object Analysis")
    assert fact_question["Question"] == FACTS[0]["question"] and fact_question["Options"][fact_question["Answer"]] == "Mottled grey"
    assert fact_question["provenance"] == {"knowledge": "llm:openai/writer verified on 2 normal images"}
    # The set evaluates like any other (extra fields are ignored by the reader).
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0


def test_reply_checks():
    assert parse_json_reply('Sure! {"question": "q", "correct": "c", "distractors": ["a"]} hope it helps', ("question",))["correct"] == "c"
    for bad in ("no json here", '{"question": ""}', "{broken"):
        try:
            parse_json_reply(bad, ("question",))
        except Exception as error:
            assert "unparsable" in str(error)
        else:
            raise AssertionError(bad)
    assert near_duplicates(["A crack near the rim", "a crack near the rim."])
    assert near_duplicates(["Scratch on the left side", "Scratch on the left sides"])
    assert not near_duplicates(["Scratch", "Crack", "Hole", "Stain"])


def test_a_local_model_can_be_the_generator(tmp_path, tiny_models):
    """Any backend writes questions; a random tiny model writes no JSON, so every LLM question is
    discarded as unparsable and the template questions stay."""
    _factory(tmp_path / "src")
    command = ["generate", "--source", f"mvtec:{tmp_path / 'src'}", "--out", str(tmp_path / "set"), "--llm", f"hf/{tiny_models['qwen2_vl']}"]
    assert main(command) == 0
    llm = json.loads((tmp_path / "set/generation_report.json").read_text())["llm"]
    assert llm["accepted"] == {} and llm["requests"] == 5  # one write request per image, nothing further
    facts = json.loads((tmp_path / "set/generation_report.json").read_text())["llm_facts"]
    assert facts["requests"] == 1 and facts["kept"] == {"widget": 0}  # the category's facts request, unparsable
    assert all("unparsable reply" in reason for reason in llm["discarded"])
