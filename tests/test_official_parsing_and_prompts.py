"""The official parsers on real-looking replies, the LLaVA and numbered-Qwen prompt texts, data
releases and errata."""

import json

import pytest

from harness.cli import main
from harness.data.releases import load_errata, release_for
from harness.models.base import GenerateResponse, ImagePart, TextPart
from harness.protocols import load_protocol, protocol_for_model, protocol_names
from harness.schema import ImageRecord, Question, Subtask
from harness.tasks.mcq.official import CallPlan, official_answer, official_request, parse_in_call, shown_options

YES_NO = {"A": "Yes.", "B": "No."}
KINDS = {"A": "Crack", "B": "Broken", "C": "Stain", "D": "Scratch"}
PLACES = {"A": "Top left.", "B": "Center.", "C": "Bottom right."}
OBJECTS = {"A": "Bottle.", "B": "Cable.", "C": "Capsule."}
SURFACES = {"A": "Scratch on the surface.", "B": "Contamination on the surface.", "C": "A missing screw."}
EFFECTS = {"A": "Leaks.", "B": "Nothing.", "C": "Shines.", "D": "Floats."}

# (reply, options, what MMAD's Qwen script records): the last standalone A–E, else difflib's closest
# option text with cutoff 0 (which always picks one, even for an empty or contrary reply).
QWEN_TABLE = [
    ("B", YES_NO, "B"),
    ("Answer: A.", YES_NO, "A"),
    ("A. Yes. On second thought, B.", YES_NO, "B"),
    ("yes", YES_NO, "A"),
    ("No", YES_NO, "B"),
    ("There is a defect in the object.", YES_NO, "A"),
    ("The object looks normal, no defect is visible.", YES_NO, "A"),  # contrary to what it says
    ("", YES_NO, "A"),  # an empty reply is 'Yes.'
    ("I cannot determine this from the image.", YES_NO, "A"),
    ("Crack", KINDS, "A"),
    ("broken", KINDS, "B"),
    ("The defect is a small crack near the rim.", KINDS, "D"),  # 'Scratch' is closer than 'Crack'
    ("A scratch is visible near the rim.", KINDS, "A"),  # the article counts as the letter
    ("top left", PLACES, "A"),
    ("It is located at the bottom right corner of the image.", PLACES, "C"),
    ("the image shows a bottle", OBJECTS, "A"),
    ("cable", OBJECTS, "B"),
    ("contamination on the surface", SURFACES, "B"),
    ("it may leak", EFFECTS, "A"),
    ("E", EFFECTS, "E"),  # a letter not among the options is recorded; the scorer counts it wrong
]


def response(text: str, error: str | None = None) -> GenerateResponse:
    return GenerateResponse(text=text, error=error)


def question(index: int, options: dict[str, str], answer: str = "A", image: str = "DS-MVTec/bottle/image/good/000.png") -> Question:
    return Question(id=f"{image}#{index}", image_id=image, index=index, subtask=Subtask.ANOMALY_DETECTION, mmad_type="Anomaly Detection", text="Is there any defect?", options=options, answer=answer)


@pytest.mark.parametrize("reply, options, expected", QWEN_TABLE)
def test_qwen_official_parser_table(reply, options, expected):
    answer, _ = official_answer(response(reply), options, load_protocol("qwen2.5-vl"), CallPlan((question(0, options),), 0))
    assert answer == expected


def test_letterless_replies_under_each_family():
    plan = CallPlan((question(0, YES_NO),), 0)
    # GPT-4o's script passes no options: no letter crashed it, so nothing is recorded
    assert official_answer(response("The object is fine."), YES_NO, load_protocol("gpt-4o"), plan) == (None, "no letter: the official script would stop here (IndexError)")
    # LLaVA takes the FIRST letter
    assert official_answer(response("B. No, although A looks odd."), YES_NO, load_protocol("llava"), plan)[0] == "B"
    assert official_answer(response("B. No, although A looks odd."), YES_NO, load_protocol("qwen2.5-vl"), plan)[0] == "A"
    # a failed call: '' (the scorer drops it) for one-call scripts; the image is dropped for two-call ones
    assert official_answer(response("", error="APIConnectionError"), YES_NO, load_protocol("gpt-4o"), plan)[0] == ""
    assert official_answer(response("", error="APIConnectionError"), YES_NO, load_protocol("gemini"), plan)[0] is None


def test_strict_answer_in_a_multi_question_call_is_its_numbered_entry():
    three = CallPlan(tuple(question(i, YES_NO) for i in range(3)), 2)
    assert parse_in_call("1. Answer: A.\n2. Answer: B.\n3. Answer: B.", YES_NO, three).letter == "B"
    assert parse_in_call("**3.** Answer: A", YES_NO, three).letter == "A"
    assert parse_in_call("1. A 2. B 3. A", YES_NO, three).letter == "A"
    missing = parse_in_call("1. Answer: A.\n2. Answer: B.", YES_NO, three)
    assert missing.letter is None and missing.status == "unparsable"  # never the last letter by position


def test_llava_prompt_text_and_seeded_shuffle(tmp_path):
    protocol = load_protocol("llava")
    image = ImageRecord(id="DS-MVTec/bottle/image/good/000.png", dataset="DS-MVTec", category="bottle", image_path="DS-MVTec/bottle/image/good/000.png", label="normal",
                        random_templates=("MVTec-AD/bottle/train/good/000.png",))
    options = {"A": "Crack", "B": "Broken", "C": "Stain", "D": "Scratch"}
    q = question(1, options, answer="C")
    request = official_request(q, [question(0, YES_NO), q], image, tmp_path, protocol=protocol, templates=list(image.random_templates), knowledge=None, seed=7)
    parts = request.messages[0].content
    assert [type(p) for p in parts] == [TextPart, ImagePart, TextPart, ImagePart, TextPart]
    shown, answer, order = shown_options(q, protocol, 7)
    instruction = ("\nYou are an industrial inspector who checks products by images. You should judge whether there is a defect in the query image "
                   "and answer the questions about it.\nAnswer with the option's letter from the given choices directly.\n")
    # llava_query.py: hint + '\n' + "Following is 1 image of normal sample:" + "<image>\n" + "Test image: \n" + "<image>" + '\n'
    #                 + "Following is new question list: \n" + "{q} \n" + options (no question number)
    assert parts[0].text == instruction + "\n" + "Following is 1 image of normal sample:"
    assert parts[2].text == "\n" + "Test image: \n"
    assert parts[4].text == "\nFollowing is new question list: \nIs there any defect? \n" + "".join(f"{k}. {v}\n" for k, v in shown.items())
    assert parts[1].role == "template" and parts[1].prep == "cv2-fit" and parts[1].fit == 512
    assert sorted(order) == list(options) and shown[answer] == "Stain" and list(shown) == ["A", "B", "C", "D"]
    assert shown_options(q, protocol, 7) == (shown, answer, order)  # seeded: the same order every time
    assert any(shown_options(q, protocol, seed)[2] != order for seed in range(8))  # and the seed matters
    assert request.decoding.temperature == 0.2 and request.decoding.max_new_tokens == 64 and request.decoding.sampled


def test_numbered_qwen_variant_and_picking_by_model_name(tmp_path):
    image = ImageRecord(id="x/c/a.png", dataset="x", category="c", image_path="x/c/a.png", label="normal")
    q = question(2, YES_NO, image="x/c/a.png")
    conversation = [question(i, YES_NO, image="x/c/a.png") for i in range(3)]
    plain = official_request(q, conversation, image, tmp_path, protocol=load_protocol("qwen2.5-vl"), templates=[], knowledge=None, seed=0)
    numbered = official_request(q, conversation, image, tmp_path, protocol=load_protocol("qwen2.5-vl-numbered"), templates=[], knowledge=None, seed=0)
    assert plain.messages[0].content[-1].text == "Is there any defect? \nA. Yes.\nB. No.\n"
    assert numbered.messages[0].content[-1].text == "Question 3: Is there any defect? \nA. Yes.\nB. No.\n"
    assert plain.chat_template_kwargs == {"add_vision_id": True} and plain.processor_kwargs == {"min_pixels": 50176, "max_pixels": 1003520}
    picks = {
        "hf/Qwen/Qwen2.5-VL-7B-Instruct": "qwen2.5-vl", "hf/Qwen/Qwen2-VL-7B-Instruct": "qwen2-vl", "openai/gpt-4o": "gpt-4o",
        "openai/gpt-4o-2024-08-06": "gpt-4o", "openai/gpt-4o-mini": "gpt-4o-mini", "openai/gemini-1.5-pro": "gemini", "hf/llava-hf/llava-1.5-7b-hf": "llava",
    }
    for model, name in picks.items():
        assert protocol_for_model(model).name == name
    assert "harmonised" in protocol_names() and not load_protocol("harmonised").official


def test_releases_and_errata(tmp_path, mmad_tree, capsys):
    assert release_for("639343b491bc67b2abb3c5d719f221ce27f83b2ed97948f4e88055aaa31f1c1e").questions == 39670
    assert release_for("0" * 64) is None
    errata = load_errata("mmad-ds-mvtec-pill")
    assert len(errata.records) == 22 and "DS-MVTec/pill/image/good/021.png" in errata.records and "#15" in errata.source
    own = tmp_path / "own.toml"
    own.write_text('name = "mine"\ndescription = "a wrong label"\nsource = "me"\nrecords = ["DS-MVTec/bottle/image/good/001.png"]\n')
    code = main(["eval", "--model", "oracle", "--data", f"mmad:{mmad_tree / 'mmad.json'}", "--errata", str(own), "--runs-dir", str(tmp_path / "runs"), "--run-id", "e", "--quiet"])
    assert code == 0
    summary = json.loads((tmp_path / "runs/e/summary.json").read_text())
    spec = json.loads((tmp_path / "runs/e/spec.json").read_text())
    assert summary["n_questions"] == 9 and summary["skipped_records"][0]["record"] == "DS-MVTec/bottle/image/good/001.png"
    assert "errata mine: a wrong label (me)" in summary["skipped_records"][0]["reason"]
    assert spec["errata"] == [str(own)] and spec["data_release"] is None and len(spec["data_digest"]) == 64
    code = main(["eval", "--model", "oracle", "--data", f"mmad:{mmad_tree / 'mmad.json'}", "--errata", "nope", "--dry-run"])
    assert code != 0 and "unknown errata" in capsys.readouterr().err


def test_published_row_beside_a_run_on_the_official_release(tmp_path, mmad_tree):
    from harness.report.reference import comparison_lines, published_row_for
    from harness.run.runlog import RunFolder
    from harness.schema import RunSpec, RunSummary

    assert published_row_for("hf/Qwen/Qwen2.5-VL-7B-Instruct", 1).averages["Average"] == pytest.approx(72.19, abs=0.01)
    assert published_row_for("hf/llava-hf/llava-1.5-7b-hf", 1).model == "llava-v1.5-7b"
    assert published_row_for("openai/gpt-4o-2024-08-06", 1).model == "gpt-4o" and published_row_for("openai/my-model", 1) is None
    assert main(["eval", "--model", "random", "--data", f"mmad:{mmad_tree / 'mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--run-id", "p", "--quiet"]) == 0
    folder = RunFolder(tmp_path / "runs/p")
    spec = RunSpec.model_validate_json((folder.path / "spec.json").read_text()).model_copy(update={"model": "openai/gpt-4o", "protocol": "gpt-4o"})
    summary = RunSummary.model_validate_json((folder.path / "summary.json").read_text())
    lines = comparison_lines(spec, summary, folder)
    assert any("no difference shown: this question file is not the official MMAD release" in line for line in lines)
    official = spec.model_copy(update={"data_release": "MMAD (official, jiang-cc/MMAD @ c4ed190)"})
    assert any(f"no difference shown: subset ({summary.n_questions} of 39,670 questions): not comparable" in line for line in comparison_lines(official, summary, folder))
    whole = summary.model_copy(update={"n_questions": 39670})  # as a run over the whole release records it
    line = next(line for line in comparison_lines(official, whole, folder) if "yours − published" in line)
    ours = summary.mmad_compat["values"]["Average"]["Average"]
    low, high = (float(x) for x in line.split("[", 1)[1].split("]")[0].split(", "))
    assert f"{ours - 74.31:+.2f}" in line and low <= ours - 74.31 <= high and low < high
    assert main(["report", str(folder.path), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    assert "## Runs: how each was asked and scored" in (tmp_path / "r.md").read_text() and "protocol harmonised" in (tmp_path / "r.md").read_text()


def test_the_qwen2_vl_protocol_sends_what_the_qwen25_script_sent(tmp_path):
    """The published Qwen2-VL rows used the same layout: the two protocols differ only in the names."""
    image = ImageRecord(id="x/c/a.png", dataset="x", category="c", image_path="x/c/a.png", label="normal", random_templates=("x/c/t.png",))
    conversation = [question(i, YES_NO, image="x/c/a.png") for i in range(2)]
    requests = [official_request(conversation[1], conversation, image, tmp_path, protocol=load_protocol(name), templates=["x/c/t.png"], knowledge=None, seed=0)
                for name in ("qwen2-vl", "qwen2.5-vl")]
    assert requests[0] == requests[1]
