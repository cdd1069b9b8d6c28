"""Question generation: attributes from masks, the subtask rules, balance, MMAD format, determinism."""

import json

import numpy as np
import pytest

from harness.data.mmad import load_mmad
from harness.schema import Subtask
from question_gen.attributes import adjacent_cells, cell_name, defect_attributes, grid_cell_shares
from question_gen.balance import arrange_options, balanced_positions
from question_gen.generate import generate_question_set
from question_gen.shortcut_filter import SHORTCUT_SKIP
from question_gen.synthetic.writer import SyntheticCounts, write_synthetic_dataset


def _mask(box, size=90):
    mask = np.zeros((size, size), dtype=bool)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = True
    return mask


def _gray(size=90, value=128):
    return np.full((size, size, 3), value, dtype=np.uint8)


@pytest.mark.parametrize(
    ("box", "cell"),
    [((2, 2, 12, 12), (0, 0)), ((40, 40, 50, 50), (1, 1)), ((70, 75, 85, 88), (2, 2)), ((5, 40, 10, 50), (0, 1)), ((40, 70, 50, 80), (1, 2))],
)
def test_main_cell_of_a_box(box, cell):
    attributes = defect_attributes(_mask(box), _gray(), object_area=90 * 90)
    assert attributes.main_cell == cell


def test_defect_across_cells_has_no_main_cell():
    # A bar spanning the full width has a third of its area in each of three cells.
    attributes = defect_attributes(_mask((40, 0, 44, 90)), _gray(), object_area=90 * 90)
    assert attributes.main_cell is None
    assert np.allclose(np.asarray(attributes.cell_shares)[1], [1 / 3] * 3, atol=0.02)


def test_size_shape_count_and_tone():
    image = _gray()
    image[40:42, 10:30] = 20  # a dark bar of 40 px: 0.5% of the object (small is < 1%, said below 1%/1.4)
    bar = defect_attributes(_mask((40, 10, 42, 30)), image, object_area=90 * 90)
    assert (bar.shape, bar.size, bar.count, bar.tone) == ("elongated", "small", 1, "darker")

    ys, xs = np.mgrid[0:90, 0:90]
    disc = (ys - 45) ** 2 + (xs - 45) ** 2 <= 18**2  # 12.6% of the object: large (said from 8% × 1.4)
    bright = _gray()
    bright[disc] = 230
    round_ = defect_attributes(disc, bright, object_area=90 * 90)
    assert (round_.shape, round_.size, round_.tone) == ("round", "large", "brighter")

    two = _mask((5, 5, 10, 10)) | _mask((70, 70, 75, 75))
    assert defect_attributes(two, _gray(), object_area=90 * 90).count == 2
    speck = _mask((5, 5, 10, 10)) | _mask((70, 70, 71, 72))  # 2 px: a speck, not a second defect
    assert defect_attributes(speck, _gray(), object_area=90 * 90).count == 1

    tinted = _gray()
    tinted[40:60, 40:60] = (160, 128, 90)  # same brightness, other colour
    assert defect_attributes(_mask((40, 40, 60, 60)), tinted, 90 * 90).tone == "discoloured"


def test_values_near_a_class_boundary_are_not_said():
    """An attribute a person could read either way is unknown: neither keyed nor a distractor."""
    boundary = _mask((10, 10, 19, 19))  # 81 px: 1.0% of the object, the small/medium boundary
    assert defect_attributes(boundary, _gray(), object_area=90 * 90).size is None
    faint = _gray()
    faint[40:50, 40:50] = 128 - 18  # 0.07 darker: between "similar" (≤ 0.04) and "darker" (≥ 0.08)
    assert defect_attributes(_mask((40, 40, 50, 50)), faint, 90 * 90).tone is None
    plain = _gray()
    plain[40:50, 40:50] = 128 - 25  # 0.098 darker: said
    assert defect_attributes(_mask((40, 40, 50, 50)), plain, 90 * 90).tone == "darker"


def test_a_coarse_mask_gives_no_shape_and_the_core_decides_size_and_tone():
    """A round mask drawn well around a small jagged dark hole (as annotators do): the band inside
    its outline looks like the intact surface, so its round outline says nothing of the defect's
    shape; size and tone come from the core."""
    size = 120
    image = np.full((size, size, 3), 150, np.uint8)
    ys, xs = np.mgrid[0:size, 0:size]
    hole = (abs(ys - 60) + abs(xs - 60) <= 12) | ((ys - 60) ** 2 <= 4) & (abs(xs - 60) <= 20)
    image[hole] = 30
    coarse = (ys - 60) ** 2 + (xs - 60) ** 2 <= 26**2
    attributes = defect_attributes(coarse, image, object_area=size * size)
    assert attributes.shape is None and attributes.tightness < 0.45
    assert attributes.tone == "darker"
    assert attributes.relative_area < coarse.sum() / size**2  # the core, not the whole outline
    tight = defect_attributes(hole, image, object_area=size * size)
    assert tight.tightness >= 0.45 and tight.shape == "irregular"


def test_grid_names_and_adjacency():
    assert cell_name(0, 0) == "top left" and cell_name(1, 1) == "center" and cell_name(2, 1) == "bottom center"
    assert adjacent_cells(1, 1) == {(0, 1), (2, 1), (1, 0), (1, 2)}
    assert adjacent_cells(0, 0) == {(0, 1), (1, 0)}
    assert grid_cell_shares(_mask((0, 0, 30, 30))).sum() == pytest.approx(1.0)


def test_balanced_positions_are_even_per_option_count():
    counts = [2] * 101 + [4] * 203
    positions = balanced_positions(counts, np.random.default_rng(0))
    two = np.bincount([p for p, n in zip(positions, counts) if n == 2], minlength=2)
    four = np.bincount([p for p, n in zip(positions, counts) if n == 4], minlength=4)
    assert two.max() - two.min() <= 1 and four.max() - four.min() <= 1
    options, answer = arrange_options("right", ("w1", "w2", "w3"), 2, np.random.default_rng(0))
    assert answer == "C" and options["C"] == "right" and set(options.values()) == {"right", "w1", "w2", "w3"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    write_synthetic_dataset(root / "source", seed=1, size=128, counts=SyntheticCounts(train_good=3, test_good=2, per_defect=2))
    report = generate_question_set(root / "source", root / "out", dataset_name="Synth", knowledge_key="synthetic", seed=4)
    return root, report


def test_mmad_format_and_every_subtask(generated):
    root, report = generated
    data = json.loads((root / "out/mmad.json").read_text())
    assert all(key.startswith("Synth/") for key in data)
    types = {q["type"] for entry in data.values() for q in entry["conversation"]}
    assert types == {s.value for s in Subtask}
    for key, entry in data.items():
        assert list(entry) == ["conversation", "mask_path", "similar_templates", "random_templates"]
        first = entry["conversation"][0]
        assert first["type"] == "Anomaly Detection" and set(first["Options"].values()) == {"Yes.", "No."}
        for question in entry["conversation"]:
            # MMAD's four keys, and where a question came from (an extra key MMAD's readers ignore)
            assert list(question)[:4] == ["Question", "Options", "Answer", "type"] and set(question) <= {"Question", "Options", "Answer", "type", "provenance"}
            if question["type"] not in ("Anomaly Detection", "Defect Localization", "Defect Description"):
                assert question["provenance"]["knowledge"].split("#")[0] in ("taxonomy.toml", "defects.toml", "objects.toml")
            assert question["Answer"] in question["Options"]
            assert len(set(question["Options"].values())) == len(question["Options"])  # no duplicate options
        subtasks = {q["type"] for q in entry["conversation"]}
        if "/good/" in key:
            assert subtasks == {"Anomaly Detection", "Object Classification", "Object Analysis"} and entry["mask_path"] == ""
        else:
            # Description only where the pixels say for sure; a question a blind strategy would
            # answer, with no distractors that stop it, is left out and counted
            missing = {"Defect Classification", "Defect Analysis"} - subtasks
            assert all(report.skipped[f"{m}: {SHORTCUT_SKIP}"] for m in missing), (key, missing)
            assert entry["mask_path"].startswith("ground_truth/")
        assert len(entry["random_templates"]) == 3 and all("/train/good/" in t for t in entry["random_templates"])
        assert sorted(entry["similar_templates"]) == sorted(entry["random_templates"])  # all 3 train images, ranked
    assert sum(report.questions_by_subtask.values()) == sum(len(e["conversation"]) for e in data.values())
    anomalous = [e for k, e in data.items() if "/good/" not in k]
    described = sum(any(q["type"] == "Defect Description" for q in e["conversation"]) for e in anomalous)
    # half at least: faint lines whose pixels confirm no count, and sizes or tones a look cannot tell
    # from the key's, are left out since a hand audit of real capsules (was 60%)
    assert described >= 0.5 * len(anomalous)
    assert sum(v for k, v in report.skipped.items() if k.startswith("Defect Description")) == len(anomalous) - described  # each one skipped is counted


def test_generated_set_is_readable_and_self_contained(generated):
    root, _ = generated
    question_set = load_mmad(root / "out/mmad.json")  # validates every path inside out/
    assert len(question_set.questions) > 100 and not question_set.skipped


def test_answers_are_true_by_construction(generated):
    root, _ = generated
    data = json.loads((root / "out/mmad.json").read_text())
    for key, entry in data.items():
        by_type = {q["type"]: q for q in entry["conversation"]}
        detection = by_type["Anomaly Detection"]
        assert detection["Options"][detection["Answer"]] == ("No." if "/good/" in key else "Yes.")
        if "Defect Classification" in by_type:
            question = by_type["Defect Classification"]
            defect = key.split("/")[-2]
            expected = {"scratch": "Scratch", "crack": "Crack", "hole": "Hole", "stain": "Contamination", "discoloration": "Discoloration", "missing_part": "Missing part"}[defect]
            assert question["Options"][question["Answer"]] == expected
        if "Defect Localization" in by_type:
            from PIL import Image

            question = by_type["Defect Localization"]
            mask = np.asarray(Image.open(root / "out" / "/".join(key.split("/")[:2]) / entry["mask_path"])) > 0
            shares = grid_cell_shares(mask)
            row, col = np.unravel_index(shares.argmax(), shares.shape)
            assert question["Options"][question["Answer"]] == f"The {cell_name(row, col)} of the image."


def test_answer_positions_balanced_across_the_set(generated):
    root, report = generated
    data = json.loads((root / "out/mmad.json").read_text())
    for subtask in {q["type"] for e in data.values() for q in e["conversation"]}:  # dealt per subtask: "always A" scores chance in each
        letters = [q["Answer"] for e in data.values() for q in e["conversation"] if q["type"] == subtask]
        counts = np.bincount([ord(a) - 65 for a in letters], minlength=len(next(q["Options"] for e in data.values() for q in e["conversation"] if q["type"] == subtask)))
        assert counts.max() - counts.min() <= 1, (subtask, counts)
    four = [q["Answer"] for e in data.values() for q in e["conversation"] if len(q["Options"]) == 4]  # and over the whole set
    counts = np.bincount([ord(a) - 65 for a in four], minlength=4)
    assert counts.max() - counts.min() <= 1, counts


def test_same_seed_same_set_other_seed_other_order(tmp_path, generated):
    root, _ = generated
    generate_question_set(root / "source", tmp_path / "again", dataset_name="Synth", knowledge_key="synthetic", seed=4)
    generate_question_set(root / "source", tmp_path / "other", dataset_name="Synth", knowledge_key="synthetic", seed=5)
    original = (root / "out/mmad.json").read_text()
    assert (tmp_path / "again/mmad.json").read_text() == original
    assert (tmp_path / "other/mmad.json").read_text() != original


def test_two_worker_processes_write_the_same_set(tmp_path, generated, monkeypatch):
    import question_gen.generate as generate

    monkeypatch.setattr(generate, "PARALLEL_MIN_IMAGES", 0)  # the small fixture set is worth two processes here
    root, _ = generated
    report = generate_question_set(root / "source", tmp_path / "parallel", dataset_name="Synth", knowledge_key="synthetic", seed=4, workers=2)
    assert (tmp_path / "parallel/mmad.json").read_text() == (root / "out/mmad.json").read_text()
    assert json.loads((tmp_path / "parallel/generation_report.json").read_text()) == json.loads((root / "out/generation_report.json").read_text())
    assert report.images > 0


def test_missing_mask_is_named(tmp_path):
    from harness.errors import DataError

    write_synthetic_dataset(tmp_path / "src", seed=0, size=96, counts=SyntheticCounts(1, 1, 1))
    (tmp_path / "src/washer/ground_truth/crack/000_mask.png").unlink()
    with pytest.raises(DataError, match="washer/test/crack/000.png: anomalous image without its mask"):
        generate_question_set(tmp_path / "src", tmp_path / "out", dataset_name="S", knowledge_key="synthetic")


def test_change_against_the_template_is_read_at_the_same_pixels():
    from question_gen.attributes import change_against_template

    mask = _mask((30, 30, 60, 60))
    template = _gray(value=128)
    darker, brighter, tinted = _gray(value=128), _gray(value=128), _gray(value=128)
    darker[mask] = 90
    brighter[mask] = 170
    tinted[mask] = (160, 113, 113)  # same luminance, a red shift past COLOUR_SHIFT and its margin
    assert change_against_template(darker, template, mask) == "darker"
    assert change_against_template(brighter, template, mask) == "brighter"
    assert change_against_template(tinted, template, mask) == "discoloured"
    assert change_against_template(template.copy(), template, mask) == "similar"
    assert change_against_template(darker, _gray(size=64), _mask((1, 1, 5, 5), size=90)) is None  # no pixel correspondence
    assert defect_attributes(mask, darker, 90 * 90, template).tone_vs_template == "darker"
