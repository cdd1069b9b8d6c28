"""RobustMAD's open questions (`--task open`): answers asked as its oe_*.py scripts ask them, each
scored by a judge model with its published guidelines (utils/judge_OE_MSLM_response.py), over real
HTTP; the judge's calls cached, resumable, priced, its raw verdicts kept; its score CSV."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.tasks.robustmad.judge import SCORE_COLUMNS, guidelines, parse_verdict
from tests.test_robustmad import build_fixture

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

OE_INSTRUCTION = ("You are an expert industrial product quality inspector. Given the image(s) and the question below, provide a clear, concise, accurate, and helpful answer."
                  "Answer should be in complete sentences. Avoid bullet points, parentheses, slashes, or Unicode dashes in the text. Colon, semi-colon, and commas if needed are fine."
                  "Answer should not be more than 50 words.")
GUIDELINES_SHA256 = "e146e5308c2fbdc435bd7527a508f02bc17c7281e12fdd0f4492056060177f2c"  # the script's judge_guidelines string, as published


def build_open_fixture(root: Path, images: int = 3) -> Path:
    """The fixture in RobustMAD_OE.json's shape: no options, a written answer per question."""
    data = json.loads(build_fixture(root, images=images).read_text())
    for image in data["images"]:
        for question in image["questions"]:
            question.pop("options")
            question["question_type"] = "OE"
            question["answer"] = f"The {image['category']} answer number {question['question_id']}."
    path = root / "RobustMAD_OE.json"
    path.write_text(json.dumps(data))
    return path


def verdict(overall: int) -> str:
    scores = {"technical_accuracy": overall, "comprehensiveness": overall, "relevance": overall, "style_and_clarity": 5}
    return json.dumps({"dimension_scores": scores, "overall_score": overall, "is_accurate": int(overall >= 3), "explanation": "fixture"})


def judging(prompt: str, images: int) -> str:
    """A judge: 5 when the generated answer is the ground truth, else 1; a candidate: a fixed sentence."""
    if "GENERATED_ANSWER:" not in prompt:
        return "The object is a bottle with no visible defect."
    # the guidelines' own examples hold these labels too: the question's are the last ones
    generated = re.findall(r"\nGENERATED_ANSWER: (.*)\n", prompt)[-1]
    truth = re.findall(r"\nGROUND_TRUTH_ANSWER: (.*)\n", prompt)[-1]
    if "number 7." in truth:
        return "I would rate it a 3."  # one verdict that is not JSON
    return verdict(5 if generated == truth else 1)


def data_url(path: Path) -> str:
    mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def script_judge_body(root: Path, image: dict, question: dict, generated: str) -> dict:
    """judge_answer: guidelines + the five fields, then the query; the reference inserted at 1."""
    prompt = GUIDELINES
    prompt += f"\nROBUSTNESS_CATEGORY: {question['robustness_category']}\n"
    prompt += f"\nCATEGORY: {image['category']}\n"
    prompt += f"\nQUESTION: {question['question']}\n"
    prompt += f"\nGENERATED_ANSWER: {generated}\n"
    prompt += f"\nGROUND_TRUTH_ANSWER: {question['answer']}\n"
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": data_url(root / image["image_path"])}}]
    if "Pair-wise comparison" in question["robustness_category"] and image["reference_image_path"]:
        content.insert(1, {"type": "image_url", "image_url": {"url": data_url(root / image["reference_image_path"])}})
    return {"model": "gpt-5", "messages": [{"role": "user", "content": content}], "reasoning_effort": "medium", "verbosity": "low"}


def script_answer_body(root: Path, image: dict, question: dict) -> dict:
    """oe_gpt5nano.py: f"{INSTRUCTION}\\n\\nQuestion: {question}", text first, verbosity and reasoning medium."""
    content = [{"type": "text", "text": f"{OE_INSTRUCTION}\n\nQuestion: {question['question']}"}, {"type": "image_url", "image_url": {"url": data_url(root / image["image_path"])}}]
    if "Pair-wise comparison" in question["robustness_category"]:
        content.insert(1, {"type": "image_url", "image_url": {"url": data_url(root / image["reference_image_path"])}})
        content[0]["text"] = "First image: reference (normal). Second image: query.\n" + content[0]["text"]
    return {"model": "gpt-5-nano", "messages": [{"role": "user", "content": content}], "verbosity": "medium", "reasoning_effort": "medium"}


GUIDELINES = guidelines()


def test_the_judges_guidelines_are_the_published_text():
    assert hashlib.sha256(GUIDELINES.encode()).hexdigest() == GUIDELINES_SHA256
    assert GUIDELINES.startswith("\n### Role and Objective ###\nYou are an expert visual question answer (VQA) judge")
    # not an f-string in the script: its doubled braces reach the judge as written
    assert GUIDELINES.count('{{\n  "dimension_scores": {{"technical_accuracy": x') == 1
    assert "###  15 Few-Shot Examples with Human Feedback" in GUIDELINES


@pytest.mark.parametrize("reply, scores, problem", [
    (verdict(4), 4, None), ("  " + verdict(2) + "\n", 2, None),
    ("```json\n" + verdict(4) + "\n```", None, "not JSON"), ('{"dimension_scores": {}, "overall_score": 4, "is_accurate": 1}', None, "not an integer 1-5"),
    (verdict(4).replace('"overall_score": 4', '"overall_score": 6'), None, "overall_score not an integer 1-5"), ("", None, "not JSON"),
])
def test_a_verdict_is_read_as_the_script_reads_it(reply, scores, problem):
    parsed, why = parse_verdict(reply)
    assert (parsed["scores"]["overall_score"] if parsed else None) == scores
    assert (problem in why) if problem else why is None


def run(tmp_path, running, model, *extra, run_id="r", expect=0) -> Path:
    path = tmp_path / "rm" / "RobustMAD_OE.json"
    code = main(["eval", "--task", "open", "--data", f"robustmad:{path}", "--model", model, "--base-url", running.base_url, "--judge", "openai/gpt-5",
                 "--judge-base-url", running.base_url, "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, "--quiet", "--max-connections", "2", *extra])
    assert code == expect
    return tmp_path / "runs" / run_id


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_open_answers_judged_end_to_end(tmp_path, server, monkeypatch, capsys):
    monkeypatch.setenv("IADBENCH_CACHE", str(tmp_path / "cache"))
    path = build_open_fixture(tmp_path / "rm")
    records = json.loads(path.read_text())["images"]
    running = server(responder=judging)
    # the oracle answers the written ground truth: the judge gives 5 everywhere but the one bad verdict
    folder = run(tmp_path, running, "oracle", run_id="oracle")
    summary = json.loads((folder / "summary.json").read_text())["metrics"]
    assert summary["answers"] == 33 and summary["judged"] == 32 and summary["unparsable_verdicts"] == 1
    assert {c: row["scores"]["overall_score"] for c, row in summary["categories"].items()} == dict.fromkeys(["general", "pairwise", "standalone", "unanswerable"], 5.0)
    judgements = lines(folder / "judgements.jsonl")
    bad = next(j for j in judgements if j["parse_status"] == "unparsable")
    assert bad["reply"] == "I would rate it a 3." and "not JSON" in bad["parse_reason"]  # the raw verdict kept beside the parse
    out = capsys.readouterr().out
    assert "RobustMAD open answers judged by openai/gpt-5 (scores 1-5; not exact)" in out and "32/33 answers judged" in out
    # every judge body equals the script's payload for that answer
    bodies = [b for b in running.app.state.bodies if b["model"] == "gpt-5"]
    expected = sorted(json.dumps(script_judge_body(path.parent, image, q, q["answer"]), sort_keys=True) for image in records for q in image["questions"])
    assert sorted(json.dumps(b, sort_keys=True) for b in bodies) == expected
    # a model answering through the API: its bodies are oe_gpt5nano.py's; the judge gives it 1
    before = len(running.app.state.bodies)
    folder = run(tmp_path, running, "openai/gpt-5-nano", run_id="nano")
    answers = [b for b in running.app.state.bodies[before:] if b["model"] == "gpt-5-nano"]
    expected = sorted(json.dumps(script_answer_body(path.parent, image, q), sort_keys=True) for image in records for q in image["questions"])
    assert sorted(json.dumps(b, sort_keys=True) for b in answers) == expected
    metrics = json.loads((folder / "summary.json").read_text())["metrics"]
    assert metrics["overall"] == 1.0 and metrics["judge_cached"] == 0
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["judge"] == "openai/gpt-5" and spec["protocol"] == "robustmad-open-gpt" and spec["judge_base_url"] == running.base_url
    # resumable: a judgement lost to a kill is asked again, only it
    judgements_file = folder / "judgements.jsonl"
    kept = judgements_file.read_text().splitlines()
    judgements_file.write_text("\n".join(kept[:-1]) + "\n")
    assert main(["eval", "--resume", str(folder), "--base-url", running.base_url, "--quiet"]) == 0
    resumed = lines(judgements_file)
    assert len(resumed) == 33 and len({j["question_id"] for j in resumed}) == 33
    assert json.loads((folder / "summary.json").read_text())["metrics"]["judge_cached"] == 1  # only it asked again (its answer cached)
    # cached: the same run again asks the judge nothing
    before = len(running.app.state.bodies)
    folder = run(tmp_path, running, "openai/gpt-5-nano", run_id="again")
    assert len(running.app.state.bodies) == before
    assert json.loads((folder / "summary.json").read_text())["metrics"]["judge_cached"] == 33
    # its score CSV
    csv = tmp_path / "score.csv"
    assert main(["export", str(tmp_path / "runs" / "oracle"), "--out", str(csv)]) == 0
    rows = csv.read_text().splitlines()
    assert rows[0] == ",".join(SCORE_COLUMNS)
    assert "general,,Average_by_Robustness_category,,,5.0,5.0,5.0,5.0,5.0" in rows
    assert any(row.startswith("pairwise,") and "The first image shows" not in row for row in rows)


def test_open_runs_need_a_judge_and_a_dry_run_says_what_it_leaves_out(tmp_path, capsys):
    path = build_open_fixture(tmp_path / "rm")
    assert main(["eval", "--task", "open", "--data", f"robustmad:{path}", "--model", "openai/gpt-5-nano", "--judge", "openai/gpt-5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "requests: 33" in out and "+ 2,310 completion" in out and "plus one call of the judge openai/gpt-5 per answer" in out
    assert main(["eval", "--task", "open", "--data", f"robustmad:{path}", "--model", "oracle", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "pass --judge MODEL (RobustMAD's rows used openai/gpt-5)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # a judge without its key stops the run before anything is asked or a folder exists
    assert main(["eval", "--task", "open", "--data", f"robustmad:{path}", "--model", "oracle", "--judge", "openai/gpt-5", "--judge-api-key-env", "NO_SUCH_KEY_VAR",
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "the environment variable NO_SUCH_KEY_VAR is not set" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_a_published_open_row_only_on_its_release_protocol_and_judge(tmp_path, server, monkeypatch, capsys):
    from harness.data import releases as releases_module
    from harness.data.releases import Release
    from harness.storage.files import file_git_blob

    monkeypatch.setenv("IADBENCH_CACHE", str(tmp_path / "cache"))
    path = build_open_fixture(tmp_path / "rm")
    table = list(releases_module.releases()) + [Release(name="fixture as RobustMAD_OE.json", questions=33, official=True, git_blob=file_git_blob(path), label="robustmad-open")]
    monkeypatch.setattr(releases_module, "releases", lambda: table)
    running = server(responder=judging)
    folder = run(tmp_path, running, "openai/gpt-5-nano", run_id="paired")
    metrics = json.loads((folder / "summary.json").read_text())["metrics"]
    assert metrics["release"] == "robustmad-open"  # known by its git blob id
    assert metrics["published"]["general"]["all"]["overall_score"] == 3.332317073170732  # results/OE_gpt_5_nano_s0/score_gpt_5_nano_s0.csv
    out = capsys.readouterr().out
    assert "published general" in out and "general: overall yours − published -2.33 (95% interval" in out
    # another judge: its scores are not comparable with gpt-5's, so no published row
    folder = run(tmp_path, running, "openai/gpt-5-nano", "--judge", "openai/gpt-4o", run_id="other-judge")
    metrics = json.loads((folder / "summary.json").read_text())["metrics"]
    assert metrics["published"] is None and "judged by gpt-5, this run by openai/gpt-4o" in metrics["published_note"]
    assert "judged by gpt-5, this run by openai/gpt-4o: not comparable, none shown" in capsys.readouterr().out
