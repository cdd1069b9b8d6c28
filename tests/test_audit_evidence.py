"""The audit's independent evidence (question_gen/audit/independent.py, judge.py, wording.py,
agreement.py): checks that read what the generator never used can disagree with its keys, MMAD's own
wording is not flagged, Localization is checked against masks under --data-root, absent images are
"not on disk", a judge model's reading is a finding, and a hand audit is compared check by check.
Also eval's data root: a root assembled from links to dataset folders is read, and a mask that is
not on disk stops only a task that reads masks. Every image is drawn here."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig
from question_gen.audit.checks import check_question
from question_gen.audit.run import audit_set, image_facts

SIZE = 128


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _tire(rng: np.random.Generator) -> np.ndarray:
    """A dark tread block (dark on dark: no colour sets it apart from the floor, only its grain)."""
    image = np.full((SIZE, SIZE, 3), 22, dtype=np.float32) + rng.normal(0, 1.0, (SIZE, SIZE, 1))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    tread = (np.abs(yy - 64) < 28) & (np.abs(xx - 64) < 28)
    image[tread] = (30 + 30 * ((xx[tread] // 4 + yy[tread] // 6) % 2))[:, None]
    return np.clip(image, 0, 255)


def _record(questions: list[tuple[str, dict, str, str]], mask_path: str, templates: list[str]) -> dict:
    return {"conversation": [{"Question": q, "Options": o, "Answer": a, "type": t} for q, o, a, t in questions],
            "mask_path": mask_path, "similar_templates": templates, "random_templates": templates}


def _evidence_tree(images: Path) -> dict:
    """Images under `images` (the data root), the question file kept elsewhere. Tire records: a
    large sliced-off block keyed "small", a patch of many marks keyed "a single", a bright patch
    keyed "darker", one whose "defect" no pixel shows (keyed "a different colour" too), and one
    dark blob keyed "several marks"."""
    rng = np.random.default_rng(0)
    normal = _tire(rng)
    _save(images / "MVTec-AD/tire/train/good/000.png", normal)
    mmad, yy, xx = {}, *np.mgrid[:SIZE, :SIZE]

    def add(name: str, pixels: np.ndarray, mask: np.ndarray, questions: list) -> None:
        _save(images / f"DS-MVTec/tire/image/cut/{name}.png", pixels)
        _save(images / f"DS-MVTec/tire/mask/cut/{name}_mask.png", mask.astype(np.uint8) * 255)
        mmad[f"DS-MVTec/tire/image/cut/{name}.png"] = _record(questions, f"mask/cut/{name}_mask.png", ["MVTec-AD/tire/train/good/000.png"])

    describe = "Which best describes the defect?"
    sliced = (np.abs(yy - 64) < 13) & (np.abs(xx - 64) < 13)  # 26×26 of a 56×56 block: large on the object, 4% of the frame
    image = normal.copy()
    image[sliced] = 5
    add("000", image, sliced, [(describe, {"A": "A single small, round slit.", "B": "Several long streaks."}, "A", "Defect Description")])
    patch = (np.abs(yy - 60) < 20) & (np.abs(xx - 60) < 20)
    image = normal.copy()
    for k in range(6):  # six separate marks inside one drawn region
        image[44 + 6 * k : 46 + 6 * k, 46 + 3 * k : 58 + 3 * k] = 200
    add("001", image, patch, [(describe, {"A": "A single large scratch.", "B": "A small round dent."}, "A", "Defect Description")])
    bright = (np.abs(yy - 64) < 8) & (np.abs(xx - 64) < 8)
    image = normal.copy()
    image[bright] = 230
    add("002", image, bright, [(describe, {"A": "A small area, darker than its surroundings.", "B": "Several marks."}, "A", "Defect Description"),
                               ("Is there any defect in the object?", {"A": "Yes.", "B": "No."}, "A", "Anomaly Detection")])
    add("003", normal.copy(), bright, [("Is there any defect in the object?", {"A": "Yes.", "B": "No."}, "A", "Anomaly Detection"),
                                       (describe, {"A": "A small area with a different colour from its surroundings.", "B": "A long crack."}, "A", "Defect Description")])
    image = normal.copy()
    image[bright] = 0
    add("004", image, bright, [(describe, {"A": "Several small, round marks.", "B": "A long crack."}, "A", "Defect Description")])
    return mmad


def test_independent_measures_disagree_with_keys_the_generator_would_keep(tmp_path):
    mmad = _evidence_tree(tmp_path / "images")
    (tmp_path / "set").mkdir()
    (tmp_path / "set/mmad.json").write_text(json.dumps(mmad))
    rows = {row["id"]: row for row in audit_set(tmp_path / "set/mmad.json", data_root=tmp_path / "images").questions}
    finding = lambda qid, check: next(f for f in rows[qid]["findings"] if f["check"] == check)  # noqa: E731
    sliced = finding("DS-MVTec/tire/image/cut/000.png#0", "mask vs wording")
    assert sliced["verdict"] == "likely wrong" and "size small" in sliced["evidence"], sliced  # sized against the tread, not the frame
    marks = finding("DS-MVTec/tire/image/cut/001.png#0", "mask vs wording")
    assert marks["verdict"] == "likely wrong" and "count 1" in marks["evidence"] and "6 marks" in marks["evidence"], marks
    tone = finding("DS-MVTec/tire/image/cut/002.png#0", "mask vs wording")
    assert tone["verdict"] == "likely wrong" and "tone darker" in tone["evidence"], tone
    shows = finding("DS-MVTec/tire/image/cut/002.png#1", "defect vs normal images")
    assert shows["verdict"] == "ok"
    hidden = finding("DS-MVTec/tire/image/cut/003.png#0", "defect vs normal images")
    assert hidden["verdict"] == "ambiguous" and "does not show" in hidden["evidence"], hidden
    colour = finding("DS-MVTec/tire/image/cut/003.png#1", "mask vs wording")
    assert colour["verdict"] == "likely wrong" and "a different colour, but colour and luminance match" in colour["evidence"], colour
    several = finding("DS-MVTec/tire/image/cut/004.png#0", "mask vs wording")
    assert several["verdict"] == "likely wrong" and "count several, the mask is one part" in several["evidence"], several


def _facts(key: str):
    return image_facts(Path("/nonexistent"), key, {"mask_path": "x.png", "conversation": []}, kind=None,
                       categories={"DS-MVTec": ["screw", "cable", "carpet", "zipper"]}, knowledge=None, needs_pixels=False)


@pytest.mark.parametrize("key, subtask, options, answer", [
    ("DS-MVTec/screw/image/thread_side/000.png", "Defect Classification", {"A": "Thread damage.", "B": "Scratch.", "C": "Bent tip."}, "A"),
    ("DS-MVTec/screw/image/thread_top/000.png", "Defect Description", {"A": "Deformed threads near the top.", "B": "A scratch."}, "A"),
    ("DS-MVTec/cable/image/cable_swap/000.png", "Defect Classification", {"A": "Cable swap.", "B": "Poke insulation.", "C": "Bent wire."}, "A"),
    ("DS-MVTec/carpet/image/metal_contamination/000.png", "Defect Description", {"A": "Metal fragment caught in the carpet leaving a hole.", "B": "A fold in the carpet."}, "A"),
    ("DS-MVTec/zipper/image/rough/000.png", "Defect Description", {"A": "Rough texture on the teeth.", "B": "A cut."}, "A"),
])
def test_mmads_own_wording_is_not_flagged(key, subtask, options, answer):
    verdict, findings = check_question({"Question": "What is the defect?", "Options": options, "Answer": answer, "type": subtask}, _facts(key))
    assert verdict in ("ok", "not checked"), findings


def test_the_wording_table_still_flags_a_wrong_kind():
    verdict, findings = check_question({"Question": "What is the type of the defect?", "Options": {"A": "Scratch.", "B": "Thread damage."}, "Answer": "A",
                                        "type": "Defect Classification"}, _facts("DS-MVTec/screw/image/thread_side/000.png"))
    assert verdict == "likely wrong" and "'Thread damage.'" in findings[0].evidence


def _issue_18(images: Path, questions: Path) -> None:
    """MMAD issue #18's bottle: the break sits on the rim at the bottom, keyed "Around the center."."""
    image = np.full((96, 96, 3), 120, dtype=np.uint8)
    mask = np.zeros((96, 96), dtype=np.uint8)
    mask[82:92, 30:66] = 255
    image[mask > 0] = 40
    _save(images / "DS-MVTec/bottle/image/broken_large/016.png", image)
    _save(images / "DS-MVTec/bottle/mask/broken_large/016_mask.png", mask)
    (images / "DS-MVTec/bottle/image/broken_large/017.png").write_bytes(b"not a png")
    where = {"Question": "There is a defect in the object. Where is the defect?", "Options": {"A": "At the bottom.", "B": "Top left.", "C": "Around the center."},
             "Answer": "C", "type": "Defect Localization"}
    record = {"conversation": [where], "mask_path": "mask/broken_large/016_mask.png", "similar_templates": [], "random_templates": []}
    questions.mkdir(parents=True)
    (questions / "mmad.json").write_text(json.dumps({"DS-MVTec/bottle/image/broken_large/016.png": record,
                                                     "DS-MVTec/bottle/image/broken_large/017.png": record,
                                                     "DS-MVTec/bottle/image/broken_large/018.png": record}))


def test_localization_is_checked_under_data_root_and_absent_is_not_unreadable(tmp_path, capsys):
    _issue_18(tmp_path / "MMAD", tmp_path / "questions")
    out = tmp_path / "audit.json"
    assert main(["audit", str(tmp_path / "questions"), "--data-root", str(tmp_path / "MMAD"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    audit = json.loads(out.read_text())
    row = next(r for r in audit["questions"] if r["id"] == "DS-MVTec/bottle/image/broken_large/016.png#0")
    assert row["verdict"] == "likely wrong" and row["findings"][0]["evidence"] == "share of the mask in each option's region: A 100%, B 0%, C 0%"
    assert audit["summary"]["missing_evidence"] == {"image not readable": 1, "image not on disk": 1}
    assert "image not on disk (1 images)" in printed and "image not readable (1 images)" in printed
    # without --data-root the images are looked for beside the question file: nothing is checked
    assert main(["audit", str(tmp_path / "questions"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["missing_evidence"] == {"image not on disk": 3}
    assert main(["audit", str(tmp_path / "questions"), "--data-root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_a_judge_model_reads_each_question_without_its_key(tmp_path, capsys):
    _issue_18(tmp_path / "MMAD", tmp_path / "questions")
    seen = []

    def judge(prompt: str, images: int) -> str:
        seen.append((prompt, images))
        return "A"  # "At the bottom.": the judge sees the break on the rim

    with RunningServer(FakeOpenAI(ServerConfig(responder=judge))) as server:
        assert main(["audit", str(tmp_path / "questions"), "--data-root", str(tmp_path / "MMAD"), "--out", str(tmp_path / "audit.json"),
                     "--judge", "openai/judge", "--base-url", server.base_url]) == 0
    rows = {r["id"]: r for r in json.loads((tmp_path / "audit.json").read_text())["questions"]}
    judged = next(f for f in rows["DS-MVTec/bottle/image/broken_large/016.png#0"]["findings"] if f["check"] == "judge vs key")
    assert judged == {"check": "judge vs key", "verdict": "likely wrong", "evidence": "the judge chose A 'At the bottom.', not the key C (openai/judge)"}
    # one request per question whose image is on disk (the unreadable one too: the backend says it cannot read it)
    assert 1 <= len(seen) <= 2 and all(images == 1 for _, images in seen)
    assert all("Around the center." in prompt and "key" not in prompt.lower() for prompt, _ in seen)


@pytest.mark.parametrize("reply, verdict", [("B", "ok"), ("NONE", "likely wrong"), ("SEVERAL", "ambiguous"), ("C", "likely wrong"), ("I cannot tell", None)])
def test_a_judges_reply_is_read_as_a_verdict(reply, verdict):
    from question_gen.audit.judge import reading

    found = reading(reply, {"A": "Top left.", "B": "Center.", "C": "Bottom."}, "B")
    assert (found[0] if found else None) == verdict


def test_a_hand_audit_is_compared_check_by_check(tmp_path, capsys):
    _issue_18(tmp_path / "MMAD", tmp_path / "questions")
    hand = {"format": "iadbench-hand-audit/1", "questions": {
        "DS-MVTec/bottle/image/broken_large/016.png#0": {"mark": "flawed", "reason": "the break is on the rim at the bottom"},
        "DS-MVTec/bottle/image/broken_large/017.png#0": {"mark": "flawed", "reason": "the image is broken"},
        "DS-MVTec/bottle/image/broken_large/018.png#0": {"mark": "ok"}, "elsewhere.png#0": {"mark": "ok"}}}
    (tmp_path / "hand.json").write_text(json.dumps(hand))
    assert main(["audit", str(tmp_path / "questions"), "--data-root", str(tmp_path / "MMAD"), "--out", str(tmp_path / "audit.json"), "--hand", str(tmp_path / "hand.json")]) == 0
    printed = capsys.readouterr().out
    assert "agreement with the hand audit (2 flawed, 1 ok questions judged by hand; 1 ids of the file are not in the set; each check on the subtasks it reads)" in printed
    assert re.search(r"location vs mask\s+1\s+0\s+1\s+50%\s+0\.0%", printed), printed
    assert re.search(r"audit \(any check\)\s+1\s+0\s+1\s+50%", printed), printed
    agreement = json.loads((tmp_path / "audit.json").read_text())["summary"]["agreement"]
    assert {"check": "location vs mask", "true_flags": 1, "false_flags": 0, "misses": 1, "found": 0.5, "false_flag_rate": 0.0} in agreement
    hand["questions"]["DS-MVTec/bottle/image/broken_large/018.png#0"]["mark"] = "fine"
    (tmp_path / "hand.json").write_text(json.dumps(hand))
    assert main(["audit", str(tmp_path / "questions"), "--out", str(tmp_path / "audit.json"), "--hand", str(tmp_path / "hand.json")]) == 2
    assert "mark 'fine' is not one of flawed, ok" in capsys.readouterr().err


def test_eval_reads_a_root_of_links_and_needs_masks_only_where_they_are_read(tmp_path, synthetic_set, monkeypatch):
    monkeypatch.setenv("IADBENCH_NO_QUESTION_CACHE", "1")
    root = tmp_path / "root"
    root.mkdir()
    mmad = json.loads((synthetic_set / "mmad.json").read_text())
    first = next(iter(mmad)).split("/")[0]
    os.symlink(synthetic_set / first, root / first)  # the user's own link to where the dataset lives
    run = ["eval", "--model", "oracle", "--data", f"mmad:{synthetic_set / 'mmad.json'}", "--limit", "20", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main([*run, "--data-root", str(root), "--run-id", "linked"]) == 0
    os.symlink(root, tmp_path / "alias")  # the root itself reached through a link
    assert main([*run, "--data-root", str(tmp_path / "alias"), "--run-id", "alias"]) == 0
    # a link deeper down, to outside, is still refused
    copy = tmp_path / "copy"
    key = next(k for k, r in mmad.items() if r.get("mask_path"))
    category = "/".join(key.split("/")[:2])
    (copy / category).mkdir(parents=True)
    for entry in (synthetic_set / category).iterdir():
        os.symlink(entry, copy / category / entry.name)
    assert main([*run, "--data-root", str(copy), "--run-id", "deep"]) == 2
    # a mask not on disk: multiple choice runs, the box task (which scores against masks) refuses
    for record in mmad.values():
        if record.get("mask_path"):
            record["mask_path"] = "ground_truth/absent/000_mask.png"
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks/mmad.json").write_text(json.dumps(mmad))
    absent = ["--data", f"mmad:{tmp_path / 'masks/mmad.json'}", "--data-root", str(synthetic_set), "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(["eval", "--model", "oracle", *absent, "--limit", "20", "--run-id", "nomask"]) == 0
    assert main(["eval", "--task", "bbox", "--model", "oracle", *absent, "--limit", "2", "--run-id", "nomaskbox"]) == 2


def test_only_reads_follow_the_roots_own_links(tmp_path):
    """A data root's top-level link to a dataset is followed to read; nothing is written through one,
    and a link deeper down may never lead out."""
    from harness.errors import DataError
    from harness.storage.paths import resolve_in_data_root, resolve_inside

    (tmp_path / "datasets/mvtec/bottle").mkdir(parents=True)
    (tmp_path / "root/own").mkdir(parents=True)
    os.symlink(tmp_path / "datasets/mvtec", tmp_path / "root/MVTec-AD")
    os.symlink(tmp_path / "datasets", tmp_path / "root/own/deeper")
    assert resolve_in_data_root(tmp_path / "root", "MVTec-AD/bottle/000.png", what="image") == (tmp_path / "datasets/mvtec/bottle/000.png").resolve()
    for resolve, relative in ((resolve_inside, "MVTec-AD/bottle/000.png"), (resolve_in_data_root, "own/deeper/mvtec/bottle/000.png"),
                              (resolve_in_data_root, "MVTec-AD/../../etc/passwd")):
        with pytest.raises(DataError):
            resolve(tmp_path / "root", relative, what="image")


def test_a_lines_size_is_not_judged_by_its_area():
    """A winding 2-pixel crack is a line (its size is its length); a round blob of the same area is not."""
    from question_gen.audit.independent import _thin

    crack = np.zeros((256, 256), dtype=bool)
    for x in range(40, 200):
        y = int(128 + 20 * np.sin(x / 15))
        crack[y : y + 2, x] = True
    yy, xx = np.mgrid[:256, :256]
    blob = (yy - 128) ** 2 + (xx - 128) ** 2 <= (crack.sum() / np.pi)
    assert _thin(crack) and not _thin(blob)


def _mmad_sentences() -> list[tuple[str, str]]:
    rows = [line.rstrip("\n").split("\t") for line in (Path(__file__).parent / "data/mmad_knowledge_roles.tsv").read_text().splitlines() if not line.startswith("#")]
    return [(entry, sentence) for role, entry, sentence, _ in (r for r in rows if len(r) == 4 and r[0] != "role")]


def test_an_option_about_another_kind_of_object_is_a_giveaway():
    """The hand audit of real tire photographs: every Defect Analysis question offered distractors no
    tire can have (a package's count, contents that escape, a board's contacts), and no check flagged
    one. The audit now reads each option against what the set says of the object (audit_topics.toml),
    not against the generator's occurs_on table; MMAD's own knowledge sentences (170, quoted in
    tests/data, each offered about its own category) are never flagged. The lexicon was adjusted once
    after its first reading of them flagged 7 (a grid's "frayed" threads, a cut's "markings", a bottle
    drink's "freshness")."""
    from question_gen.audit.topics import foreign_topic

    tire = image_facts(Path("/nonexistent"), "mvtec/tire/test/hole/000.png", {"conversation": []}, kind=None, categories={"mvtec": ["tire"]}, knowledge=None, needs_pixels=False)
    key = "Lost strength where the material has been pierced through"
    question = lambda *distractors: {"Options": dict(zip("ABCD", (key, *distractors))), "Answer": "A", "type": "Defect Analysis"}  # noqa: E731
    foreign = ["Unusable items and the wrong count of them in each package", "The contents are exposed and may spoil or be contaminated",
               "Surplus material that can bridge two contacts on the board", "A burnt taste or texture that spoils the food for its buyer",
               "Fraying that spreads and weakens the whole fabric over time", "An unreadable or wrong marking that can mislead its user"]
    fits = ["Contact with a hard or sharp object in handling or transport", "Stray debris, dirt, fibres or residue that reached the product",
            "A colour outside the specification, rejected at inspection"]
    for first, second in zip(foreign, foreign[1:] + foreign[:1]):
        finding = foreign_topic(question(first, second, fits[2]), tire)  # two of three foreign: the key stands with one other
        assert finding is not None and finding.verdict == "giveaway" and "option B" in finding.evidence and "option C" in finding.evidence, (first, second)
    # one odd distractor leaves three plausible options: judged fair by a hand audit of held-out categories
    assert foreign_topic(question(foreign[0], *fits[:2]), tire) is None
    assert foreign_topic(question(*fits), tire) is None
    # the same package sentences about a package are no giveaway
    box = image_facts(Path("/nonexistent"), "goodsad/food_box/test/surface_damage/000.png", {"conversation": []}, kind="goodsad", categories={"goodsad": ["food_box"]}, knowledge=None, needs_pixels=False)
    assert foreign_topic(question(foreign[0], foreign[1], fits[0]), box) is None
    kinds = {"MVTec": "mvtec-ad", "VisA": "visa", "MVTec-LOCO": "loco", "GoodsAD": "goodsad"}
    flagged = []
    for entry, sentence in _mmad_sentences():
        dataset, category, folder = entry.split("/")
        facts = image_facts(Path("/nonexistent"), f"{dataset}/{category}/test/{folder}/000.png", {"conversation": []}, kind=kinds[dataset],
                            categories={dataset: [category]}, knowledge=None, needs_pixels=False)
        if foreign_topic({"Options": {"A": "x", "B": sentence, "C": sentence + " (again)"}, "Answer": "A"}, facts) is not None:
            flagged.append((entry, sentence))
    assert len(_mmad_sentences()) == 170 and flagged == [], flagged


def test_description_options_a_look_cannot_tell_apart_are_ambiguous():
    """From the hand audit of real capsules: "A single medium opening" beside "A single large
    opening" (no scale in the image), "similar in tone" beside "with a different colour". Options
    that differ in anything else, or by two size classes, are not flagged."""
    facts = _facts("DS-MVTec/screw/image/thread_side/000.png")
    ask = lambda options, answer="A": check_question({"Question": "Describe the defect.", "Options": options, "Answer": answer, "type": "Defect Description"}, facts)  # noqa: E731
    verdict, findings = ask({"A": "A single medium opening, brighter than its surroundings.", "B": "Several small openings, brighter than their surroundings.",
                             "C": "A single large opening, brighter than its surroundings."})
    assert verdict == "ambiguous" and "option C differs from the key only in size (large against medium)" in findings[0].evidence, findings
    verdict, findings = ask({"A": "A single small opening, similar in tone to its surroundings.", "B": "A single small opening, with a different colour from its surroundings."})
    assert verdict == "ambiguous" and "tone (discoloured against similar)" in findings[0].evidence, findings
    assert ask({"A": "A single small opening, darker than its surroundings.", "B": "A single large opening, darker than its surroundings.",
                "C": "Two small openings, brighter than their surroundings."})[0] in ("ok", "not checked")
    assert ask({"A": "A small round dent near the rim.", "B": "A large scratch across the thread."})[0] in ("ok", "not checked")
