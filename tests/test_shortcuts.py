"""Blind shortcuts (question_gen/shortcuts.py), the set-level filter that removes them
(question_gen/shortcut_filter.py), and the measures that hold on any object (question_gen/foreground.py,
attributes.count_sure), on sets and images built here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from question_gen.attributes import defect_attributes
from question_gen.foreground import foreground_mask
from question_gen.shortcut_filter import TARGET_PERCENT, Item, shortcut_free
from question_gen.shortcuts import LIMIT_PERCENT, shortcut_figures, shortcut_warnings


def _question(options: list[str], answer: int, subtask: str = "Defect Classification", **extra) -> dict:
    letters = "ABCDE"[: len(options)]
    return {"Question": "?", "Options": dict(zip(letters, options)), "Answer": letters[answer], "type": subtask, **extra}


def _set(questions: list[dict]) -> dict:
    return {f"d/c/test/x/{i:03d}.png": {"conversation": [q]} for i, q in enumerate(questions)}


def test_shortest_option_always_right_reports_100_percent_and_warns():
    questions = [_question(["Cut", "Contamination spot", "Wrinkled surface", "Chipped coating"], i % 4) for i in range(24)]
    for i, q in enumerate(questions):  # the short key moves letters, so only length gives it away
        options = ["Contamination spot", "Wrinkled surface", "Chipped coating"]
        options.insert(i % 4, "Cut")
        q["Options"] = dict(zip("ABCD", options))
        q["Answer"] = "ABCD"[i % 4]
    row = shortcut_figures(_set(questions))["Defect Classification"]
    assert row["percent"]["shortest"] == 100.0
    assert row["percent"]["longest"] == 0.0
    assert row["percent"]["position"] == 25.0
    assert any("shortest option is right in 100%" in w for w in shortcut_warnings({"Defect Classification": row}))


def test_a_tie_counts_one_in_k_so_equal_lengths_score_chance():
    questions = [_question(["aaaa", "bbbb", "cccc", "dddd"], i % 4) for i in range(20)]
    row = shortcut_figures(_set(questions))["Defect Classification"]
    assert row["percent"]["shortest"] == pytest.approx(25.0) and row["percent"]["longest"] == pytest.approx(25.0)


def test_most_agreeing_finds_the_key_built_by_varying_it():
    key = "A single small round dark patch"
    distractors = ["Two small round dark patches", "A single large round dark patch", "A single small elongated dark patch"]
    questions = [_question([key, *distractors], 0, "Defect Description") for _ in range(20)]
    assert shortcut_figures(_set(questions))["Defect Description"]["percent"]["most_agreeing"] == 100.0


def test_a_wording_offered_only_as_the_key_is_found_by_the_key_prior():
    cells = ["The top left of the image.", "The top right of the image.", "The bottom left of the image.", "The bottom right of the image."]
    questions = [_question(["The center of the image.", *cells[:3]], 0, "Defect Localization") for _ in range(10)]
    questions += [_question([cells[3], *cells[:3]], 0, "Defect Localization") for _ in range(10)]
    row = shortcut_figures(_set(questions))["Defect Localization"]
    assert row["percent"]["key_prior"] >= 90.0
    assert "key_prior" in row["held"]


def test_detection_is_measured_by_position_only_even_with_four_options():
    # VisA's pcb4 detection questions carry 4 options; length says nothing of a Yes/No answer
    questions = [_question(["Yes", "No", "Not sure", "Cannot tell"], 0, "Anomaly Detection") for _ in range(30)]
    row = shortcut_figures(_set(questions))["Anomaly Detection"]
    assert set(row["percent"]) == {"position"} and row["chance_percent"] == 50.0
    assert row["percent"]["position"] == 100.0 and shortcut_warnings({"Anomaly Detection": row})


def test_a_models_text_only_answer_is_read_from_the_sets_provenance():
    questions = [_question(["w", "x", "y", "z"], 1, provenance={"blind_answer": "x" if i < 15 else "y"}) for i in range(20)]
    assert shortcut_figures(_set(questions))["Defect Classification"]["percent"]["model"] == 75.0
    answers = {(f"d/c/test/x/{i:03d}.png", 0): "A" for i in range(20)}
    assert shortcut_figures(_set(questions), answers)["Defect Classification"]["percent"]["model"] == 0.0


def test_filter_leaves_out_questions_until_shortest_is_under_target():
    # "Cut" is shorter than any name it could be offered with: only leaving questions out helps
    items = [Item("Defect Classification", "Cut", ("Contamination spot", "Wrinkled surface", "Chipped coating"), ("Contamination spot", "Wrinkled surface", "Chipped coating", "Misaligned part")) for _ in range(30)]
    items += [Item("Defect Classification", "Contamination spot", ("Cut", "Wrinkled rubber surface", "Chipped paint coating")) for _ in range(30)]
    dropped = shortcut_free(items, lambda _: np.random.default_rng(0))
    kept = [item for i, item in enumerate(items) if i not in dropped]
    assert dropped and all(items[i].correct == "Cut" for i in dropped)
    figures = shortcut_figures(_set([_question([it.correct, *it.distractors], 0, it.subtask) for it in kept]))
    assert figures["Defect Classification"]["percent"]["shortest"] <= TARGET_PERCENT


def test_filter_draws_other_distractors_from_the_pool_before_leaving_anything_out():
    # the key is the shortest of those drawn, but the pool holds shorter options as true
    items = [Item("Defect Classification", "Scratch", ("Contamination", "Wrinkled surface", "Chipped coating"), ("Contamination", "Wrinkled surface", "Chipped coating", "Cut", "Dent", "Hole")) for _ in range(30)]
    dropped = shortcut_free(items, lambda _: np.random.default_rng(0))
    assert not dropped
    assert all(set(it.distractors) <= set(it.pool) and len(set(it.distractors)) == 3 for it in items)
    figures = shortcut_figures(_set([_question([it.correct, *it.distractors], 0, it.subtask) for it in items]))
    assert figures["Defect Classification"]["percent"]["shortest"] <= TARGET_PERCENT


def test_generated_synthetic_set_has_no_blind_shortcut(synthetic_set):
    figures = shortcut_figures(json.loads((synthetic_set / "mmad.json").read_text()))
    for subtask, row in figures.items():
        for name in row["held"]:
            if name in row["percent"]:
                assert row["percent"][name] <= (row["limit_percent"] if subtask == "Anomaly Detection" else LIMIT_PERCENT), (subtask, name, row)


def _dark_tire(rng: np.random.Generator, size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A dark tread (blocks a few grey levels above a noisy dark table, in grooves as dark as the
    table) and its true extent."""
    image = rng.normal(18, 3, (size, size, 3))
    truth = np.zeros((size, size), bool)
    truth[40:170, 60:140] = True
    for y in range(40, 170, 14):
        for x in range(60, 140, 14):
            image[y + 2 : y + 11, x + 2 : x + 11] = 45 + rng.normal(0, 2, (9, 9, 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def test_dark_object_on_dark_background_is_found():
    image, truth = _dark_tire(np.random.default_rng(1))
    found = foreground_mask(image)
    assert found is not None
    overlap = (found & truth).sum() / (found | truth).sum()
    assert overlap > 0.8, overlap


def test_texture_filling_the_frame_has_no_foreground():
    rng = np.random.default_rng(2)
    weave = (np.add.outer(np.arange(200) % 8 < 4, np.arange(200) % 8 < 4) * 60 + 60 + rng.normal(0, 5, (200, 200))).astype(np.uint8)
    assert foreground_mask(np.stack([weave] * 3, axis=-1)) is None


def test_many_thin_scratches_outlined_as_one_patch_have_no_sure_count():
    rng = np.random.default_rng(3)
    image = np.clip(rng.normal(150, 3, (200, 200, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((200, 200), bool)
    mask[60:140, 60:140] = True  # one patch drawn around dozens of marks
    for k in range(8):
        image[64 + 9 * k : 66 + 9 * k, 64:136] = 40  # parallel thin scratches, apart from each other
    patch = defect_attributes(mask, image, float(200 * 200))
    assert patch.count == 1 and not patch.count_sure
    single = np.zeros((200, 200), bool)
    single[90:110, 90:110] = True
    image2 = np.clip(rng.normal(150, 3, (200, 200, 3)), 0, 255).astype(np.uint8)
    image2[single] = 40
    assert defect_attributes(single, image2, float(200 * 200)).count_sure


def test_crossing_scratches_outlined_as_one_patch_have_no_sure_count():
    rng = np.random.default_rng(4)
    image = np.clip(rng.normal(150, 3, (200, 200, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((200, 200), bool)
    mask[50:150, 50:150] = True
    for k in range(4):  # a lattice of thin lines: one connected part, many scratches
        image[60 + 25 * k : 62 + 25 * k, 55:145] = 40
        image[55:145, 60 + 25 * k : 62 + 25 * k] = 40
    patch = defect_attributes(mask, image, float(200 * 200))
    assert patch.count == 1 and patch.measures["differing_parts"] >= 3 and not patch.count_sure
    blob = np.clip(rng.normal(150, 3, (200, 200, 3)), 0, 255).astype(np.uint8)
    blob[70:130, 60:140] = 40  # a solid rectangle: its skeleton branches, but it is one mark
    solid = np.zeros((200, 200), bool)
    solid[70:130, 60:140] = True
    assert defect_attributes(solid, blob, float(200 * 200)).count_sure


def test_unsure_object_extent_says_no_size():
    image = np.full((100, 100, 3), 120, np.uint8)
    mask = np.zeros((100, 100), bool)
    mask[40:50, 40:50] = True
    image[mask] = 20
    assert defect_attributes(mask, image, None).size is None
    assert defect_attributes(mask, image, 100.0 * 1000).size == "small"


def test_a_knowledge_title_loses_the_words_that_tied_the_object_in():
    from question_gen.knowledge import option_name

    assert option_name("Crack on Bottle", {"bottle"}) == "Crack"
    assert option_name("Hazelnut Shell Hole", {"hazelnut"}) == "Shell hole"
    assert option_name("Hole in the Top of the Can", {"can"}) == "Hole in the top"
    assert option_name("Bottle", {"bottle"}) == "Bottle"  # nothing left: the title as it is


def test_audit_reports_the_same_shortcuts_and_leaves_detection_out_of_option_measures(tmp_path):
    from question_gen.audit.run import audit_records

    questions = [_question(["Yes", "No", "Maybe", "Unclear"], 0, "Anomaly Detection") for _ in range(25)]
    questions += [_question(["Cut", "Contamination spot", "Wrinkled surface", "Chipped coating"], 0) for _ in range(25)]
    mmad = {f"VisA/pcb4/test/bad/{i:03d}.JPG": {"conversation": [q]} for i, q in enumerate(questions)}
    summary = audit_records(mmad, tmp_path, set_path=str(tmp_path / "mmad.json")).summary()
    assert "option_lengths" not in summary
    assert set(summary["shortcuts"]["Anomaly Detection"]["percent"]) == {"position"}
    assert summary["shortcuts"]["Defect Classification"]["percent"]["shortest"] == 100.0
    assert summary["shortcuts"] == shortcut_figures(mmad)


def test_audit_command_prints_the_shortcuts_and_warns(tmp_path, capsys):
    from harness.cli import main

    questions = [_question(["Cut", "Contamination spot", "Wrinkled surface", "Chipped coating"], 0) for _ in range(25)]
    (tmp_path / "mmad.json").write_text(json.dumps({f"D/c/test/x/{i:03d}.png": {"conversation": [q]} for i, q in enumerate(questions)}))
    assert main(["audit", str(tmp_path / "mmad.json"), "--out", str(tmp_path / "audit.json")]) == 0
    out = capsys.readouterr().out
    assert "blind shortcuts, Defect Classification (25 q, chance 25%): shortest 100%" in out
    assert "picking the shortest option is right in 100% of 25 questions" in out
    assert json.loads((tmp_path / "audit.json").read_text())["summary"]["shortcuts"]["Defect Classification"]["worst"] in ("shortest", "position")


def test_a_noun_that_says_its_shape_gets_no_shape_word():
    from question_gen.descriptions import measured

    image = np.full((200, 200, 3), 150, np.uint8)
    mask = np.zeros((200, 200), bool)
    mask[90:110, 90:110] = True  # a sliced-off square of tread: round by its axes, but a slit is long
    image[mask] = 40
    attributes = defect_attributes(mask, image, float(200 * 200 * 10))
    described = measured(attributes, ("slit", "slits"), noun_shaped=True)
    assert described is not None and "slit" in described.correct
    for option in (described.correct, *described.pools[0]):
        assert not {"round", "elongated", "irregular"} & set(option.rstrip(".").replace(",", "").split()), option


def test_a_small_subtask_is_redrawn_to_the_target_and_loses_nothing():
    """16 Localization questions of real photographs kept "pick the shortest" at 44%: a subtask under
    MIN_KEPT questions was held only to the noise bound (50% there), so nothing was drawn again. Its
    distractors are now drawn again down to the target; leaving questions out still waits for the
    noise bound, so none is lost."""
    subtask = "Defect Classification"
    items = [Item(subtask, "Cut", ("Crack", "Stain", "Scratch"), ("Crack", "Stain", "Scratch", "Bruise")) for _ in range(4)]  # nothing shorter: stays
    items += [Item(subtask, "Hole", ("Crack", "Stain", "Scratch"), ("Cut", "Crack", "Stain", "Scratch")) for _ in range(3)]  # the pool holds "Cut"
    items += [Item(subtask, "Crack", ("Hole", "Scratch", "Bruise"), ("Hole", "Scratch", "Bruise", "Stain")) for _ in range(9)]
    figures = lambda: shortcut_figures(_set([_question([it.correct, *it.distractors], 0, it.subtask) for it in items]))[subtask]["percent"]  # noqa: E731
    assert figures()["shortest"] == 100 * 7 / 16
    dropped = shortcut_free(items, lambda _: np.random.default_rng(3))
    assert not dropped and figures()["shortest"] <= TARGET_PERCENT, figures()
    assert all("Cut" in it.distractors for it in items[4:7])
