"""`iadbench audit` and `iadbench review`: a key the evidence contradicts is found, a right one is not
flagged, the verdicts leave out questions through `eval --errata`, and the review page's marks export
as an errata file that does the same."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from question_gen.attributes import DefectAttributes
from question_gen.audit.claims import claims, contradictions
from question_gen.audit.locations import region
from question_gen.audit.run import audit_records, audit_set, read_set


@pytest.mark.parametrize("phrase, rows, cols", [
    ("Top left.", {0}, {0}), ("The top left of the image.", {0}, {0}), ("Center.", {1}, {1}), ("Around the center of the image.", {1}, {1}),
    ("The middle right of the image.", {1}, {2}), ("The top center of the image.", {0}, {1}), ("Left side.", {0, 1, 2}, {0}),
    ("In the lower right corner.", {2}, {2}),
])
def test_location_phrases_are_regions(phrase, rows, cols):
    found = region(phrase)
    assert found is not None and set(found.rows) == rows and set(found.cols) == cols


def test_part_names_and_everywhere_are_no_region():
    for phrase in ("On the cap.", "Near the thread of the screw.", "Multiple locations.", "Throughout the surface.", "Upper part of the bottle."):
        assert region(phrase) is None, phrase
    edges = region("Around the edges.")
    assert edges is not None and edges.edge
    pixels = edges.pixels((100, 100))
    assert pixels[0, 50] and pixels[50, 0] and not pixels[50, 50]  # a band on all four sides, not the middle
    bottom = region("Along the bottom edge.").pixels((100, 100))
    assert bottom[95, 50] and not bottom[5, 50] and not bottom[50, 50]


def _attributes(**measures) -> DefectAttributes:
    base = {"luminance_delta": -0.2, "colour_shift": 0.01, "axis_ratio": 1.1, "solidity": 0.97, "relative_area": 0.2, "tightness": 1.0}
    base.update(measures)
    return DefectAttributes(((0,) * 3,) * 3, None, base["relative_area"], "large", "round", 1, "darker", measures=base)


def test_claims_contradicted_only_past_the_margins():
    measured = _attributes()
    assert contradictions(claims("A single large, round area, darker than its surroundings."), measured) == []
    wrong = contradictions(claims("Several small, elongated marks, brighter than their surroundings."), measured)
    assert [w.split(",")[0] for w in wrong] == ["count 3", "size small", "shape elongated", "tone brighter"]
    # a discoloured area that is also darker: "with a different colour" is not contradicted when the colour moved too
    tinted = _attributes(colour_shift=0.3)
    assert contradictions(claims("A large area with a different colour from its surroundings."), tinted) == []
    # near a boundary nothing is ruled out: 0.1 relative area is between medium and large
    assert contradictions(claims("A medium area."), _attributes(relative_area=0.1)) == []
    assert contradictions(claims("A large area."), _attributes(relative_area=0.1)) == []


def _plant(mmad: dict, share: float, seed: int = 0) -> set[str]:
    """Move the key of about `share` of the questions to another option; their ids."""
    rng, planted = random.Random(seed), set()
    for key, record in mmad.items():
        for index, question in enumerate(record["conversation"]):
            if rng.random() < share:
                question["Answer"] = rng.choice([letter for letter in question["Options"] if letter != question["Answer"]])
                planted.add(f"{key}#{index}")
    return planted


def test_planted_wrong_keys_are_found_and_right_ones_are_not_flagged(synthetic_set):
    mmad = read_set(synthetic_set / "mmad.json")
    knowledge = json.loads((synthetic_set / "domain_knowledge.json").read_text())
    # the generator's own set passes the checks that read the generator's measures (the independent
    # ones may disagree with it: tests/test_audit_evidence.py)
    clean = audit_records(mmad, synthetic_set, set_path="clean", kind="synthetic", knowledge=knowledge)
    assert clean.summary()["verdicts"].get("ok", 0) == clean.summary()["questions"]
    planted = _plant(mmad, 0.3)
    report = audit_records(mmad, synthetic_set, set_path="planted", kind="synthetic", knowledge=knowledge)
    found, missed, false = Counter(), Counter(), Counter()
    for row in report.questions:
        if row["id"] in planted:
            (found if row["verdict"] == "likely wrong" else missed)[row["subtask"]] += 1
        elif row["verdict"] != "ok":
            false[row["subtask"]] += 1
    total_planted = sum(found.values()) + sum(missed.values())
    assert total_planted > 100 and len(found) == 7  # every subtask has planted keys, and each is found
    assert sum(found.values()) / total_planted >= 0.95, (found, missed)
    assert sum(false.values()) / (len(report.questions) - total_planted) <= 0.02, false


def _mmad_tree(root: Path) -> dict:
    """A two-category MMAD-shaped tree (DS-MVTec layout, RGB masks spelled rbg_mask, MVTec AD
    templates) with questions worded as MMAD's, each key right."""
    size = 96
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - 24) ** 2 + (xx - 24) ** 2 <= 20 ** 2  # a round defect in the top left cell
    normal = np.full((size, size, 3), 150, dtype=np.uint8)
    broken = normal.copy()
    broken[disk] = 60
    for path, pixels in {"DS-MVTec/bottle/image/broken_large/000.png": broken, "DS-MVTec/screw/image/good/000.png": normal,
                         "MVTec-AD/bottle/train/good/000.png": normal, "MVTec-AD/screw/train/good/000.png": normal}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / path)
    mask = np.zeros((size, size, 3), dtype=np.uint8)
    mask[disk] = (255, 255, 255)
    (root / "DS-MVTec/bottle/rbg_mask/broken_large").mkdir(parents=True)
    Image.fromarray(mask).save(root / "DS-MVTec/bottle/rbg_mask/broken_large/000_rbg_mask.png")
    questions = [
        ("Is there any defect in the object?", {"A": "Yes.", "B": "No."}, "A", "Anomaly Detection"),
        ("There is a defect in the object. What is the type of the defect?", {"A": "Scratch.", "B": "Broken large.", "C": "Contamination."}, "B", "Defect Classification"),
        ("There is a defect in the object. Where is the defect?", {"A": "Top left.", "B": "Center.", "C": "Bottom right.", "D": "On the bottle cap."}, "A", "Defect Localization"),
        ("Which best describes the defect?", {"A": "A large, round area, darker than its surroundings.", "B": "A small elongated scratch, brighter than the glass."}, "A", "Defect Description"),
        ("What is the object?", {"A": "Bottle.", "B": "Cable.", "C": "Screw."}, "A", "Object Classification"),
    ]
    mmad = {
        "DS-MVTec/bottle/image/broken_large/000.png": {
            "conversation": [{"Question": q, "Options": o, "Answer": a, "type": t, "annotation": True} for q, o, a, t in questions],
            "mask_path": "rbg_mask/broken_large/000_rbg_mask.png", "similar_templates": ["MVTec-AD/bottle/train/good/000.png"], "random_templates": ["MVTec-AD/bottle/train/good/000.png"]},
        "DS-MVTec/screw/image/good/000.png": {
            "conversation": [{"Question": "Is there any defect in the object?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "B", "type": "Anomaly Detection"}],
            "mask_path": "", "similar_templates": ["MVTec-AD/screw/train/good/000.png"], "random_templates": ["MVTec-AD/screw/train/good/000.png"]},
    }
    (root / "mmad.json").write_text(json.dumps(mmad))
    return mmad


def test_mmad_worded_questions_right_keys_pass_wrong_keys_are_named(tmp_path):
    mmad = _mmad_tree(tmp_path)
    rows = {row["id"]: row for row in audit_set(tmp_path / "mmad.json").questions}
    assert [rows[f"DS-MVTec/bottle/image/broken_large/000.png#{i}"]["verdict"] for i in range(5)] == ["ok"] * 5
    assert rows["DS-MVTec/screw/image/good/000.png#0"]["verdict"] == "ok"
    wrong = {0: "B", 1: "A", 2: "C", 3: "B", 4: "C"}  # No., Scratch., Bottom right., the small bright scratch, Screw.
    for index, letter in wrong.items():
        mmad["DS-MVTec/bottle/image/broken_large/000.png"]["conversation"][index]["Answer"] = letter
    mmad["DS-MVTec/bottle/image/broken_large/000.png"]["conversation"][2]["Answer"] = "C"
    (tmp_path / "mmad.json").write_text(json.dumps(mmad))
    rows = {row["id"]: row for row in audit_set(tmp_path / "mmad.json").questions}
    evidence = {i: rows[f"DS-MVTec/bottle/image/broken_large/000.png#{i}"] for i in range(5)}
    assert all(row["verdict"] == "likely wrong" for row in evidence.values()), evidence
    assert "folder 'broken_large'" in evidence[0]["findings"][0]["evidence"]
    assert "A 53%" in evidence[2]["findings"][0]["evidence"] and "C 0%" in evidence[2]["findings"][0]["evidence"]
    assert "size small" in evidence[3]["findings"][0]["evidence"] and "tone brighter" in evidence[3]["findings"][0]["evidence"]
    # a part name is no region: with the key on "On the bottle cap." the location is not judged
    mmad["DS-MVTec/bottle/image/broken_large/000.png"]["conversation"][2]["Answer"] = "D"
    (tmp_path / "mmad.json").write_text(json.dumps(mmad))
    assert {row["id"]: row for row in audit_set(tmp_path / "mmad.json").questions}["DS-MVTec/bottle/image/broken_large/000.png#2"]["verdict"] == "not checked"


def test_audit_errata_leaves_the_flagged_questions_out_of_a_run(tmp_path, capsys):
    mmad = _mmad_tree(tmp_path / "set")
    mmad["DS-MVTec/bottle/image/broken_large/000.png"]["conversation"][1]["Answer"] = "A"  # Scratch.: wrong
    (tmp_path / "set/mmad.json").write_text(json.dumps(mmad))
    assert main(["audit", str(tmp_path / "set"), "--out", str(tmp_path / "audit.json"), "--errata", str(tmp_path / "errata.toml")]) == 0
    out = capsys.readouterr().out
    assert "likely wrong: DS-MVTec/bottle/image/broken_large/000.png#1 (Defect Classification): class vs folder" in out
    audit = json.loads((tmp_path / "audit.json").read_text())
    assert audit["summary"]["by_subtask"]["Defect Classification"] == {"likely wrong": 1}
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--errata", str(tmp_path / "errata.toml"),
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "e", "--quiet"]) == 0
    summary = json.loads((tmp_path / "runs/e/summary.json").read_text())
    assert summary["n_questions"] == 5  # six questions, one left out
    assert [r["record"] for r in summary["skipped_records"]] == ["DS-MVTec/bottle/image/broken_large/000.png#1"]
    assert "class vs folder" in summary["skipped_records"][0]["reason"]


def test_generation_drops_what_its_audit_flags(tmp_path):
    """A knowledge file whose sentence about one defect names another object of the set: any
    question offering it is a giveaway, dropped and counted."""
    assert main(["synth", "--out", str(tmp_path / "data"), "--size", "64"]) == 0
    (tmp_path / "data" / "synthetic.json").unlink()  # read as a folder of one's own in MVTec's layout, with MVTec's knowledge
    texts = {folder: f" <{folder.title()}>\n Description: The defect on the brick shows a dark spot shaped like a {word}.\n"
             for folder, word in (("crack", "star"), ("hole", "ring"), ("stain", "washer"), ("fold", "cross"), ("print", "wave"), ("thread", "line"))}
    (tmp_path / "k.json").write_text(json.dumps({"MVTec": {"brick": texts}}))
    assert main(["generate", "--source", f"mvtec:{tmp_path / 'data'}", "--out", str(tmp_path / "set"), "--knowledge", str(tmp_path / "k.json")]) == 0
    report = json.loads((tmp_path / "set/generation_report.json").read_text())
    dropped = {reason: n for reason, n in report["skipped"].items() if ": audit: " in reason}
    assert dropped == {"Defect Description: audit: giveaway (options vs objects)": report["audit"]["dropped"]} and report["audit"]["dropped"] > 0
    mmad = json.loads((tmp_path / "set/mmad.json").read_text())
    offered = [text for key, r in mmad.items() if "/brick/" in key for q in r["conversation"] for text in q["Options"].values()]
    assert offered and not any("washer" in text for text in offered)
    assert report["questions"] == sum(len(r["conversation"]) for r in mmad.values())


def test_review_page_is_audited_by_hand_in_chromium(tmp_path):
    """A person's walk through the page in a real headless Chromium (DevTools protocol: clicks, keys,
    typing, the wheel): blind answer, zoom, raw view, a filter, marks with reasons, both exports;
    the exports are then read by `eval --errata` and `audit --hand`."""
    from tests.chromium_pipe import Browser

    mmad = _mmad_tree(tmp_path / "set")
    mmad["DS-MVTec/bottle/image/broken_large/000.png"]["conversation"][4]["Options"]["B"] = "<script>alert(1)</script>"
    (tmp_path / "set/mmad.json").write_text(json.dumps(mmad))
    assert main(["audit", str(tmp_path / "set"), "--out", str(tmp_path / "audit.json")]) == 0
    assert main(["review", str(tmp_path / "set"), "--audit", str(tmp_path / "audit.json"), "--out", str(tmp_path / "review.html")]) == 0
    page = (tmp_path / "review.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the set's text is escaped
    assert "data:image" not in page and page.count('loading="lazy"') >= 6  # images are files beside the page, loaded lazily
    files = tmp_path / "review_files"
    assert max(Image.open(p).size[0] for p in files.glob("????.jpg")) <= 384 and list(files.glob("*-outline.png"))

    browser = Browser(tmp_path / "profile")
    try:
        browser.open((tmp_path / "review.html").as_uri())
        card = "#card-0"
        shown = lambda selector: browser.value(f"getComputedStyle(document.querySelector({json.dumps(selector)})).display") != "none"  # noqa: E731
        key_colour = f"getComputedStyle(document.querySelector('{card} button.option[data-letter=A]')).backgroundColor"
        # blind: neither the key nor the audit's verdict shows until the reviewer answers
        assert browser.value(key_colour) == browser.value(f"getComputedStyle(document.querySelector('{card} button.option[data-letter=B]')).backgroundColor")
        assert not shown(f"{card} .audit")
        browser.click(f"{card} button.option[data-letter=B]")  # "No.": the reviewer answers wrong
        assert browser.value(f"document.querySelector('{card} .outcome').textContent") == "Your answer: B; the key is A"
        assert shown(f"{card} .audit") and browser.value(key_colour) != browser.value(f"getComputedStyle(document.querySelector('{card} button.option[data-letter=B]')).backgroundColor")
        # zoom: a click opens the full view, the wheel magnifies it; raw view takes the outline away
        browser.click(f"{card} .frame.query")
        browser.wait_for("document.getElementById('zoom-image').complete && document.getElementById('zoom-image').naturalWidth > 0")
        before = browser.value("document.querySelector('#zoom .stage').getBoundingClientRect().width")
        browser.wheel("#zoom", -120)
        browser.wheel("#zoom", -120)
        assert browser.value("document.querySelector('#zoom .stage').getBoundingClientRect().width") > 1.5 * before
        browser.key("Escape")
        assert not shown("#zoom")
        assert shown(f"{card} .frame.query .overlay")
        browser.key("r")
        assert not shown(f"{card} .frame.query .overlay")
        browser.key("r")
        browser.screenshot(tmp_path / "shot.png")
        # a reason typed into the card's field, then the key marked wrong (w moves on)
        browser.click(f"{card} textarea.reason")
        browser.type("the break is plain to see; <b>no</b> doubt")
        browser.key("Escape")
        browser.key("w")
        browser.key("2")  # card 1, blind: answer B, then mark it ok
        browser.key("o")
        # a filter: Defect Localization only (keyboard on the select, as a person would)
        browser.click("#filter-type")
        for _ in range(4):  # all, Anomaly Detection, Defect Classification, Defect Description, Defect Localization
            browser.key("ArrowDown")
        browser.key("Enter")
        assert browser.value("document.getElementById('filter-type').value") == "Defect Localization"
        assert browser.value("document.getElementById('position').textContent") == "1 / 1 (filtered from 6)"
        browser.key("Escape")  # leave the select (keys typed there choose options, not marks)
        browser.key("a")  # the localization question, ambiguous
        browser.click("#export")
        browser.click("#export-hand")
        errata = browser.value("document.getElementById('errata-text').textContent")
        hand = browser.value("document.getElementById('hand-text').textContent")
    finally:
        browser.close()
    pixels = np.asarray(Image.open(tmp_path / "shot.png").convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"
    first = "DS-MVTec/bottle/image/broken_large/000.png"
    assert f'"{first}#0",' in errata and f'"{first}#2"' not in errata.split("[reasons]")[0]  # ambiguous is left out unless asked for
    assert f'"{first}#0" = "the break is plain to see; <b>no</b> doubt"' in errata
    assert json.loads(hand)["questions"] == {f"{first}#0": {"mark": "flawed", "reason": "the break is plain to see; <b>no</b> doubt"},
                                             f"{first}#1": {"mark": "ok", "reason": ""},
                                             f"{first}#2": {"mark": "flawed", "reason": "marked ambiguous in review"}}
    (tmp_path / "review-errata.toml").write_text(errata)
    (tmp_path / "hand-audit.json").write_text(hand)
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{tmp_path / 'set/mmad.json'}", "--errata", str(tmp_path / "review-errata.toml"),
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", "--quiet"]) == 0
    summary = json.loads((tmp_path / "runs/r/summary.json").read_text())
    assert summary["n_questions"] == 5 and [r["record"] for r in summary["skipped_records"]] == [f"{first}#0"]
    assert main(["audit", str(tmp_path / "set"), "--out", str(tmp_path / "audit2.json"), "--hand", str(tmp_path / "hand-audit.json")]) == 0
    agreement = json.loads((tmp_path / "audit2.json").read_text())["summary"]["agreement"]
    assert {"check": "audit (any check)", "true_flags": 0, "false_flags": 0, "misses": 2, "found": 0.0, "false_flag_rate": 0.0} in agreement


def test_review_images_are_bounded_files_and_only_its_own_folder_is_replaced(tmp_path, capsys):
    """A 2,000-pixel photograph becomes a 384-pixel thumbnail and a 1,280-pixel full view; the page
    replaces only an image folder it wrote itself."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    mask = np.zeros((1500, 2000), dtype=np.uint8)
    mask[700:710, 900:910] = 255  # a 10-pixel blob
    (tmp_path / "set/DS-MVTec/tire/image/cut").mkdir(parents=True)
    (tmp_path / "set/DS-MVTec/tire/mask/cut").mkdir(parents=True)
    Image.fromarray(photo).save(tmp_path / "set/DS-MVTec/tire/image/cut/000.png")
    Image.fromarray(mask).save(tmp_path / "set/DS-MVTec/tire/mask/cut/000_mask.png")
    record = {"conversation": [{"Question": "Is there any defect in the object?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "A", "type": "Anomaly Detection"}],
              "mask_path": "mask/cut/000_mask.png", "similar_templates": [], "random_templates": []}
    (tmp_path / "set/mmad.json").write_text(json.dumps({"DS-MVTec/tire/image/cut/000.png": record}))
    (tmp_path / "page_files").mkdir()
    (tmp_path / "page_files/mine.txt").write_text("a person's own file")
    assert main(["review", str(tmp_path / "set"), "--out", str(tmp_path / "page.html")]) == 2
    assert "is not a review page's image folder" in capsys.readouterr().err and (tmp_path / "page_files/mine.txt").is_file()
    for _ in range(2):  # written again: its own folder is replaced
        assert main(["review", str(tmp_path / "set"), "--out", str(tmp_path / "review.html")]) == 0
    files = tmp_path / "review_files"
    assert Image.open(files / "0001.jpg").size == (384, 288) and Image.open(files / "0001-full.jpg").size == (1280, 960)
    outline = np.asarray(Image.open(files / "0001-outline.png"))
    assert outline.shape[:2] == (960, 1280) and outline[..., 3].any() and not outline[449:453, 577:581, 3].any() and outline[440:462, 568:590, 3].any()  # around the blob, not over it
    assert (tmp_path / "review.html").stat().st_size < 20_000


def test_mmad_issue_18_a_rim_break_keyed_around_the_center(tmp_path):
    """MMAD's own wording (jam-cc/MMAD issue #18, bottle broken_large/016.png): the break sits on the
    rim at the bottom of the frame, the key says "Around the center". The audit names it, with the
    share of the mask each option's region holds; with the key on "At the bottom" the question is
    still ambiguous, since "Around the edges" holds the break as well."""
    size = 96
    image = np.full((size, size, 3), 120, dtype=np.uint8)
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[82:92, 30:66] = 255
    image[mask > 0] = 40
    (tmp_path / "DS-MVTec/bottle/image/broken_large").mkdir(parents=True)
    (tmp_path / "DS-MVTec/bottle/mask/broken_large").mkdir(parents=True)
    Image.fromarray(image).save(tmp_path / "DS-MVTec/bottle/image/broken_large/016.png")
    Image.fromarray(mask).save(tmp_path / "DS-MVTec/bottle/mask/broken_large/016_mask.png")
    question = {"Question": "There is a defect in the object. Where is the defect?", "Options": {"A": "At the bottom", "B": "Around the edges", "C": "Around the center"},
                "Answer": "C", "type": "Defect Localization"}
    record = {"conversation": [question], "mask_path": "mask/broken_large/016_mask.png", "similar_templates": [], "random_templates": []}
    (tmp_path / "mmad.json").write_text(json.dumps({"DS-MVTec/bottle/image/broken_large/016.png": record}))
    (row,) = audit_set(tmp_path / "mmad.json").questions
    assert row["verdict"] == "likely wrong" and row["findings"][0]["evidence"] == "share of the mask in each option's region: A 100%, B 100%, C 0%"
    question["Answer"] = "A"
    (tmp_path / "mmad.json").write_text(json.dumps({"DS-MVTec/bottle/image/broken_large/016.png": record}))
    (row,) = audit_set(tmp_path / "mmad.json").questions
    assert row["verdict"] == "ambiguous"
