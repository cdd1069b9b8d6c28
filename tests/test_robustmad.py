"""RobustMAD as a second benchmark: a fixture in its JSON shape runs end to end; the prompt of each
family equals the text its scripts build (their facts rendered independently here); the parser
answers as its parse_model_response does; the accuracy CSV equals its compute_and_log_accuracy
(rendered here with pandas from the script's facts) byte for byte; published rows come with the
release they were measured on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.models.base import ImagePart, TextPart
from harness.tasks.robustmad.data import CATEGORIES, read_robustmad
from harness.tasks.robustmad.kind import RobustmadTask, family_for
from harness.tasks.robustmad.scoring import EMPTY, INVALID, parse_answer, parse_answer_last, published_for

INSTRUCTION = ("You are an expert industrial product quality inspector. Given the image(s) and the question below, select the single correct option "
               "and return only the corresponding letter (A, B, C, D, or E). No other open-ended output is allowed.")
PAIRWISE_LEAD = "The first image shows a normal, defect-free reference object. The second image shows the query object for inspection. "
# per image: 4 general, 2 stand-alone, 2 pair-wise, 3 unanswerable questions, as the release has
LAYOUT = ["General Object Understanding"] * 4 + ["Anomaly Understanding and Localization (Stand-alone)"] * 2 + \
         ["Anomaly Understanding and Localization (Pair-wise comparison)"] * 2 + ["Unanswerable or Misleading Query Detection"] * 3


def build_fixture(root: Path, images: int = 12) -> Path:
    """A RobustMAD-shaped file over images written under MVTec-AD/ and VisA/ in `root`."""
    rng = np.random.default_rng(0)
    records, number = [], 0
    for index in range(images):
        dataset, category = ("MVTec-AD", "bottle") if index % 3 else ("VisA", "candle")
        specie = "good" if index % 2 else "broken_large"
        path = f"{dataset}/{category}/test/{specie}/{index:03d}.png"
        reference = f"{dataset}/{category}/test/good/ref{index:03d}.png"
        for relative in (path, reference):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / relative)
        questions = []
        for category_name in LAYOUT:
            number += 1
            text = f"What does question {number} ask?"
            if category_name.endswith("(Pair-wise comparison)"):
                text = PAIRWISE_LEAD + f"Compare the query object to the reference ({number % 2})."
            options = {letter: f"option {letter.lower()} of {number}" for letter in "ABCDE"}
            questions.append({"question_id": number, "robustness_category": category_name, "question_type": "MCQ", "question": text, "options": options,
                              "answer": "ABCDE"[number % 5]})
        records.append({"dataset": dataset, "category": category, "image_id": f"{index:03d}.png", "image_path": path, "specie_name": specie,
                        "anomaly": int(specie != "good"), "difficulty": "domain" if index % 4 == 0 else "general", "reference_image_id": f"ref{index:03d}.png",
                        "reference_image_path": reference, "query_txt_path": path.replace(".png", ".txt"), "reference_txt_path": reference.replace(".png", ".txt"),
                        "questions": questions})
    (root / "RobustMAD_MCQ.json").write_text(json.dumps({"images": records}, indent=4))
    return root / "RobustMAD_MCQ.json"


def _script_prompt(question: str, options: dict[str, str]) -> str:
    """The scripts' prompt text: f"{INSTRUCTION}\\n\\nQuestion: {question}\\nOptions:\\n{A: …}"."""
    return f"{INSTRUCTION}\n\nQuestion: {question}\nOptions:\n" + "\n".join(f"{key}: {value}" for key, value in options.items())


def test_each_family_puts_the_question_as_its_script_does(tmp_path):
    items, _ = read_robustmad(build_fixture(tmp_path, images=2))
    pairwise = next(i for i in items if i.short_category == "pairwise")
    single = next(i for i in items if i.short_category == "general")
    qwen = RobustmadTask(items, tmp_path, family_for("hf/Qwen/Qwen2.5-VL-3B-Instruct"), 0)
    assert family_for("hf/Qwen/Qwen3-VL-8B-Instruct").name == "qwen3" and family_for("hf/Qwen/Qwen2.5-VL-3B-Instruct").name == "qwen2_5" and family_for("openai/gpt-5-nano").name == "gpt" and family_for("random").name == "default"
    parts = qwen.build_request(items.index(pairwise)).messages[0].content
    # Qwen: reference, query, then the prompt with its trailing newline (f"Question: {prompt}\n")
    assert [type(p) for p in parts] == [ImagePart, ImagePart, TextPart]
    assert (parts[0].path, parts[1].path) == (str(tmp_path / pairwise.reference_path), str(tmp_path / pairwise.image_path))
    assert parts[2].text == _script_prompt(pairwise.question, pairwise.options) + "\n"
    request = qwen.build_request(items.index(single))
    assert [type(p) for p in request.messages[0].content] == [ImagePart, TextPart] and request.decoding.max_new_tokens == 10 and request.decoding.temperature == 0.0
    # GPT-5 nano: the text first, a pair-wise question prefixed, then reference and query; no limits sent
    gpt = RobustmadTask(items, tmp_path, family_for("openai/gpt-5-nano"), 0)
    request = gpt.build_request(items.index(pairwise))
    text, reference, query = request.messages[0].content
    assert text.text == "First image: reference (normal). Second image: query.\n" + _script_prompt(pairwise.question, pairwise.options)
    assert reference.path.endswith(pairwise.reference_path) and query.path.endswith(pairwise.image_path)
    assert request.decoding.sampling == "model-default" and request.decoding.max_tokens_field == "none"
    assert [type(p) for p in gpt.build_request(items.index(single)).messages[0].content] == [TextPart, ImagePart]


@pytest.mark.parametrize("reply, letter", [
    ("B", "B"), ("The answer is C.", "C"), ("(D)", "D"), ("**E**", "E"), ("Option a", "A"), ("answer: b", "B"),
    ("bad", "B"),  # no pattern matches: the first A-E anywhere, as the script's last resort
    ("xyz", INVALID), ("", EMPTY), (None, EMPTY), ("  c  ", "C"),
])
def test_the_parser_answers_as_the_scripts_do(reply, letter):
    assert parse_answer(reply) == letter


@pytest.mark.parametrize("reply, letter", [
    ("B", "B"), ("The answer is C. Final assessment: D", "D"),  # every match collected, the one starting last wins
    ("**A** looks right, but [E]", "E"), ("Choice: b.", "B"), ("I pick A; I would not pick c", "C"),
    ("bad", "D"),  # a letter ending the reply is a candidate (the first-match parser's last resort says B)
    ("xyz", INVALID), ("", EMPTY), (None, EMPTY),
])
def test_geminis_post_hoc_parser_answers_as_its_script_does(reply, letter):
    """results/gemini3flash_s0/robust_parsing_gemini3flash.py (Gemini 3 Flash's published answers)."""
    assert parse_answer_last(reply) == letter


def _script_csv(samples: list[dict]) -> str:
    """compute_and_log_accuracy's CSV, rendered with pandas from the script's facts."""
    import pandas as pd

    short = {k: v for k, v in CATEGORIES.items()}
    df = pd.DataFrame(samples)
    df["correct"] = df.apply(lambda row: row["mslm_answer"] == row["answer"], axis=1)
    df["object_specie_pair"] = df["image_path"].apply(lambda x: "-".join([x.split("/")[1], x.split("/")[3]]))
    df["robustness_category"] = df["robustness_category"].map(lambda x: short.get(x, x))
    df["question"] = df["question"].str.replace(PAIRWISE_LEAD, "", regex=False)
    rows, totals = [], {}
    for (category, pair, question), group in df.groupby(["robustness_category", "object_specie_pair", "question"]):
        correct = group["correct"].sum()
        rows.append({"robustness_category": category, "difficulty": group["difficulty"].unique()[0], "object_specie_pair": pair, "num_questions": len(group),
                     "question": question, "correct_questions": correct, "incorrect_questions": len(group) - correct, "accuracy_per_pair": correct / len(group),
                     "average_per_category": None})
        total = totals.setdefault(category, [0, 0])
        total[0] += correct
        total[1] += len(group)
    for category, (correct, count) in totals.items():
        rows.append({"robustness_category": category, "difficulty": "", "object_specie_pair": "Average", "num_questions": count, "question": "",
                     "correct_questions": correct, "incorrect_questions": count - correct, "accuracy_per_pair": "", "average_per_category": correct / count})
    by_difficulty = {key: (group["correct"].sum(), len(group)) for key, group in df.groupby(["robustness_category", "difficulty"])}
    for category in sorted({c for c, _ in by_difficulty}):
        for difficulty in ["general", "domain"]:
            correct, count = by_difficulty.get((category, difficulty), (0, 0))
            rows.append({"robustness_category": category, "difficulty": difficulty, "object_specie_pair": "Average_by_Difficulty", "num_questions": count,
                         "question": "", "correct_questions": correct, "incorrect_questions": count - correct, "accuracy_per_pair": "",
                         "average_per_category": correct / count if count else 0.0})
    out = io.StringIO()
    pd.DataFrame(rows).to_csv(out, index=False)
    return out.getvalue()


def test_a_fixture_runs_end_to_end_and_its_csv_is_the_scripts(tmp_path, capsys):
    path = build_fixture(tmp_path / "robustmad")
    runs = tmp_path / "runs"
    assert main(["eval", "--task", "robustmad", "--model", "oracle", "--data", f"robustmad:{path}", "--runs-dir", str(runs), "--run-id", "o"]) == 0
    out = capsys.readouterr().out
    assert "RobustMAD accuracy %" in out and "not a published release" in out
    summary = json.loads((runs / "o/summary.json").read_text())
    assert summary["task"] == "robustmad" and summary["protocol"] == "robustmad-default" and summary["n_questions"] == 132
    assert {c: row["accuracy"] for c, row in summary["metrics"]["categories"].items()} == {"general": 1.0, "pairwise": 1.0, "standalone": 1.0, "unanswerable": 1.0}
    assert main(["eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--runs-dir", str(runs), "--run-id", "r", "--quiet"]) == 0
    random_overall = json.loads((runs / "r/summary.json").read_text())["metrics"]["overall"]
    assert 0.1 < random_overall < 0.32  # five options: 20%
    assert main(["score", str(runs / "r")]) == 0 and "RobustMAD accuracy %" in capsys.readouterr().out
    assert main(["export", str(runs / "r"), "--out", str(tmp_path / "accuracy.csv")]) == 0
    samples = [json.loads(line) for line in (runs / "r/samples.jsonl").read_text().splitlines()]
    raw = json.loads(path.read_text())["images"]
    by_id = {f"{image['image_path']}#{q['question_id']}": (image, q) for image in raw for q in image["questions"]}
    script_rows = [{"image_path": by_id[s["question_id"]][0]["image_path"], "difficulty": by_id[s["question_id"]][0]["difficulty"],
                    "robustness_category": by_id[s["question_id"]][1]["robustness_category"], "question": by_id[s["question_id"]][1]["question"],
                    "answer": s["answer"], "mslm_answer": s["parsed"]} for s in samples]
    assert (tmp_path / "accuracy.csv").read_text() == _script_csv(script_rows)
    assert main(["report", str(runs / "o"), str(runs / "r"), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "RobustMAD: accuracy per robustness category" in page and page.count("<h2>RobustMAD: ") == 2 and "not a published release" in page
    assert main(["report", str(runs / "o"), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    assert "| general | 100.0 |" in (tmp_path / "r.md").read_text()


def test_bad_records_are_named_and_paths_stay_inside(tmp_path, capsys):
    path = build_fixture(tmp_path / "robustmad", images=2)
    data = json.loads(path.read_text())
    data["images"][1]["image_path"] = "../outside.png"
    path.write_text(json.dumps(data))
    assert main(["eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "images[1]" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    data["images"][1]["image_path"] = data["images"][0]["image_path"]
    data["images"][1]["questions"][0]["answer"] = "F"
    path.write_text(json.dumps(data))
    assert main(["eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "images[1].questions[0]: answer 'F' is not among the options" in capsys.readouterr().err


def test_published_rows_are_the_release_figures_of_the_same_model():
    qwen = published_for("hf/Qwen/Qwen2.5-VL-3B-Instruct", "robustmad")
    assert qwen is not None and qwen["general"]["all"] == pytest.approx(1518 / 1640) and qwen["pairwise"]["domain"] == pytest.approx(88 / 160)
    assert published_for("hf/Qwen/Qwen2.5-VL-3B-Instruct", None) is None and published_for("random", "robustmad") is None
    assert published_for("openai/gpt-5-nano", "robustmad-low") is not None
    # its script's MODEL_NAME gemini-3-flash-preview wrote to results/gemini3flash_s0/
    assert published_for("openai/gemini-3-flash-preview", "robustmad")["general"]["all"] == pytest.approx(1616 / 1640)


def test_a_run_on_a_release_shows_its_published_row_and_the_difference(tmp_path, monkeypatch, capsys):
    """With the fixture registered as the release and the run's model one with a published row,
    the table puts that row beside the run's, with yours − published and its interval."""
    from harness.run.runlog import RunFolder
    from harness.results.run_table import results_table
    from harness.tasks.robustmad import data as robustmad_data
    from harness.tasks.registry import task_kind
    from harness.tasks.robustmad.kind import RobustSample

    path = build_fixture(tmp_path / "robustmad")
    runs = tmp_path / "runs"
    assert main(["eval", "--task", "robustmad", "--model", "oracle", "--data", f"robustmad:{path}", "--runs-dir", str(runs), "--run-id", "o", "--quiet"]) == 0
    folder = RunFolder.open(runs / "o")
    digest = folder.spec().data_digest
    monkeypatch.setitem(robustmad_data.RELEASES, digest, "robustmad")
    spec = folder.spec().model_copy(update={"model": "hf/Qwen/Qwen2.5-VL-3B-Instruct", "data_release": "robustmad"})
    kind = task_kind("robustmad")
    summary = kind.summarise(spec, folder.read_samples(sample_type=RobustSample), kind.load(spec), folder, None, None)
    table = results_table(summary, spec)
    assert "published general" in table and "release robustmad" in table
    assert "general: yours − published +7.4 points" in table  # 100% against the published 1518/1640 = 92.6%
    assert summary.metrics["published"]["general"]["all"] == pytest.approx(1518 / 1640)


def test_the_low_quality_split_and_pixels_are_the_scripts():
    """generate_LoQ_images.py's split over the release's 410 images (the published low file's, by its
    fingerprint) and its two degradations, against a numpy rendering of the script's facts."""
    import hashlib

    from harness.tasks.robustmad.loq import assignment, degrade

    split = assignment(410)
    # the folders of RobustMAD_MCQ_low.json's 410 image paths, in order (en-research/RobustMAD @ 4918cd5)
    assert hashlib.sha256(",".join(split).encode()).hexdigest() == "3d23bb0fd743d88935aad3752bea16141983d834c0953e25bda3913469c5a249"
    assert split[:8] == ["blur", "blur", "blur", "blur", "light", "light", "blur", "light"] and split.count("light") == split.count("blur") == 205
    image = np.random.default_rng(3).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    # low light: |0.6 x - 10| rounded and saturated (no value lands on .5: 0.6x = n + 0.5 has no integer x)
    assert np.array_equal(degrade(image, "light"), np.clip(np.rint(np.abs(image * 0.6 - 10)), 0, 255).astype(np.uint8))
    # motion blur: the kernel's ones sit on row 5 of 12, its anchor at (6, 6): each output pixel is the
    # mean of input row y-1, columns x-6..x+5, edges mirrored without repeating the edge pixel
    padded = np.pad(image.astype(np.int64), ((1, 0), (6, 5), (0, 0)), mode="reflect")
    sums = sum(padded[:-1, j : j + image.shape[1]] for j in range(12))
    expected = np.rint(sums / 12.0)
    got = degrade(image, "blur").astype(np.int64)
    ties = sums % 12 == 6  # a mean ending in .5: the library's float rounding may go either way there
    assert np.all(got[~ties] == expected[~ties]) and np.all(np.abs(got[ties] - expected[ties]) <= 1)


def test_a_run_with_robustmads_own_degradation_shows_the_degraded_pair(tmp_path, capsys):
    from harness.run.runlog import RunFolder
    from harness.tasks.registry import task_kind
    from harness.tasks.robustmad.loq import assignment

    path = build_fixture(tmp_path / "robustmad")
    runs = tmp_path / "runs"
    assert main(["eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--perturb", "robustmad-low",
                 "--runs-dir", str(runs), "--run-id", "low", "--quiet"]) == 0
    folder = RunFolder.open(runs / "low")
    spec = folder.spec()
    assert spec.perturb == ["robustmad-low"]
    task, items = task_kind("robustmad").build(spec, folder, None)
    split = dict(zip(list(dict.fromkeys(i.image_path for i in items)), assignment(12)))
    pairwise = next(i for i in items if i.short_category == "pairwise")
    reference, query, _ = task.build_request(items.index(pairwise)).messages[0].content
    kind = split[pairwise.image_path]
    assert query.path.endswith(f"_{kind}.png") and reference.path.endswith(f"_{kind}.png")  # the pair gets one degradation, as in the script
    assert Path(query.path).is_file() and not Path(query.path).is_relative_to(tmp_path / "robustmad")  # copies, never written over the data
    assert main(["eval", "--task", "mcq", "--model", "random", "--perturb", "robustmad-low", "--runs-dir", str(runs)]) == 2
