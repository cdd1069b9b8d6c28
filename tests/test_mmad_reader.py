"""The MMAD reader on a miniature of the real release, and every kind of bad record."""

import json

import pytest

from harness.data.mmad import load_mmad
from harness.errors import DataError
from harness.schema import Subtask


def test_reads_all_nine_types_and_merges_object_questions(mmad_tree):
    question_set = load_mmad(mmad_tree / "mmad.json")
    assert len(question_set.images) == 4 and len(question_set.questions) == 12
    types = {q.mmad_type for q in question_set.questions}
    assert {"Object Structure", "Object Details", "Object Analysis"} <= types
    merged = [q for q in question_set.questions if q.mmad_type in {"Object Structure", "Object Details"}]
    assert all(q.subtask is Subtask.OBJECT_ANALYSIS for q in merged)
    assert set(q.subtask for q in question_set.questions) == set(Subtask)


def test_records_carry_dataset_category_label_masks_and_templates(mmad_tree):
    images = load_mmad(mmad_tree / "mmad.json").images
    broken = images["DS-MVTec/bottle/image/broken_large/000.png"]
    assert (broken.dataset, broken.category, broken.label, broken.defect_type) == ("DS-MVTec", "bottle", "anomaly", "broken_large")
    assert broken.mask_paths == ("DS-MVTec/bottle/rbg_mask/broken_large/000_rgb_mask.png",)
    assert broken.random_templates[0] == "MVTec-AD/bottle/train/good/000.png"
    assert images["DS-MVTec/bottle/image/good/001.png"].label == "normal"
    loco = images["MVTec-LOCO/breakfast_box/test/logical_anomalies/000.png"]
    assert loco.mask_paths == (
        "MVTec-LOCO/breakfast_box/ground_truth/logical_anomalies/000/000.png",
        "MVTec-LOCO/breakfast_box/ground_truth/logical_anomalies/000/001.png",
    )


def test_question_ids_are_key_and_index(mmad_tree):
    questions = load_mmad(mmad_tree / "mmad.json").questions
    assert questions[0].id == "DS-MVTec/bottle/image/broken_large/000.png#0"
    assert [q.index for q in questions[:5]] == [0, 1, 2, 3, 4]


def _corrupt(root, key, change):
    data = json.loads((root / "mmad.json").read_text())
    change(data, key)
    (root / "mmad.json").write_text(json.dumps(data))


BROKEN = "DS-MVTec/bottle/image/broken_large/000.png"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d, k: d[k]["conversation"][1].update(Answer="F"), "answer 'F' is not among the options"),
        (lambda d, k: d[k]["conversation"][1].update(type="Defect Colour"), "unknown question type"),
        (lambda d, k: d[k]["conversation"][1].pop("Options"), "'Options' must map"),
        (lambda d, k: d[k].update(conversation=[]), "non-empty list"),
        (lambda d, k: d[k].update(mask_path="rbg_mask/broken_large/404.png"), "does not exist"),
        (lambda d, k: d[k].update(random_templates=["../../etc/passwd"]), "escapes the data root"),
        (lambda d, k: d[k].update(random_templates=["/etc/passwd"]), "absolute path"),
        (lambda d, k: d[k].update(mask_path="../../../outside.png"), "escapes the data root"),
        (lambda d, k: d[k].update(random_templates=["MVTec-AD/bottle/train/good/404.png"]), "does not exist"),
    ],
)
def test_bad_record_is_a_clear_error_naming_it(mmad_tree, change, message):
    _corrupt(mmad_tree, BROKEN, change)
    with pytest.raises(DataError) as raised:
        load_mmad(mmad_tree / "mmad.json")
    assert message in str(raised.value)
    assert BROKEN in str(raised.value) and "--skip-bad" in str(raised.value)


def test_image_key_escaping_root_is_refused(mmad_tree):
    data = json.loads((mmad_tree / "mmad.json").read_text())
    data["../secret.png"] = data[BROKEN]
    (mmad_tree.parent / "secret.png").write_bytes(b"x")
    (mmad_tree / "mmad.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="escapes the data root"):
        load_mmad(mmad_tree / "mmad.json")


def test_symlink_out_of_root_is_refused(mmad_tree, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    (mmad_tree / "DS-MVTec/bottle/image/good/link.png").symlink_to(outside)
    data = json.loads((mmad_tree / "mmad.json").read_text())
    data["DS-MVTec/bottle/image/good/link.png"] = data["DS-MVTec/bottle/image/good/001.png"]
    (mmad_tree / "mmad.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="resolves outside the data root"):
        load_mmad(mmad_tree / "mmad.json")


def test_skip_bad_counts_and_keeps_the_rest(mmad_tree):
    _corrupt(mmad_tree, BROKEN, lambda d, k: d[k]["conversation"][2].update(Answer="Z"))
    question_set = load_mmad(mmad_tree / "mmad.json", skip_bad=True)
    assert [s.record for s in question_set.skipped] == [BROKEN]
    assert "answer 'Z'" in question_set.skipped[0].reason
    assert len(question_set.images) == 3 and len(question_set.questions) == 7


def test_similar_templates_are_retrieved_when_a_record_lists_too_few(mmad_tree):
    question_set = load_mmad(mmad_tree / "mmad.json", templates="similar", shots=2, skip_bad=True)
    bottle = question_set.images["DS-MVTec/bottle/image/good/001.png"]
    assert sorted(bottle.similar_templates) == ["MVTec-AD/bottle/train/good/000.png", "MVTec-AD/bottle/train/good/001.png"]
    # VisA's candle and LOCO's breakfast box know one normal image each: not enough for 2 shots
    assert {s.record for s in question_set.skipped} == {"VisA/candle/test/bad/002.JPG", "MVTec-LOCO/breakfast_box/test/logical_anomalies/000.png"}
    with pytest.raises(DataError, match="needs 2 normal images of VisA/candle"):
        load_mmad(mmad_tree / "mmad.json", templates="similar", shots=2)


def test_shots_need_existing_templates_of_the_chosen_kind(mmad_tree):
    with pytest.raises(DataError, match="--shots 2 needs 2 random templates"):
        load_mmad(mmad_tree / "mmad.json", templates="random", shots=2)
    # Unused templates may be missing (MMAD's hub copy lacks some similar templates).
    _corrupt(mmad_tree, BROKEN, lambda d, k: d[k].update(similar_templates=["MVTec-AD/bottle/train/good/404.png"]))
    assert load_mmad(mmad_tree / "mmad.json", templates="random", shots=1).images


def test_not_json_and_wrong_shape(tmp_path):
    bad = tmp_path / "mmad.json"
    bad.write_text("{oops")
    with pytest.raises(DataError, match="not valid JSON"):
        load_mmad(bad)
    bad.write_text("[]")
    with pytest.raises(DataError, match="keyed by image path"):
        load_mmad(bad)
    with pytest.raises(DataError, match="not found"):
        load_mmad(tmp_path / "missing.json")
