"""Scoring: the official MMAD scorer reproduced exactly, its CSV layout, and strict scoring."""

import csv
import io
import random
from pathlib import Path

import pytest

from harness.metrics.accuracy import CompatTable, mmad_compat_table, strict_scores
from harness.schema import SampleResult, Subtask
from tests.mmad_reference import reference_mmad_scores

PUBLISHED = Path(__file__).resolve().parents[1] / "harness" / "published"
TYPES = ["Anomaly Detection", "Defect Classification", "Defect Localization", "Defect Description", "Defect Analysis", "Object Classification", "Object Structure", "Object Details"]


def _random_answers(rng: random.Random, n: int, bad_rate: float) -> list[dict]:
    answers = []
    for i in range(n):
        dataset = rng.choice(["DS-MVTec", "MVTec-LOCO", "VisA", "GoodsAD"])
        folder = rng.choice(["good", "broken", "bad"])
        question_type = rng.choice(TYPES)
        gpt = rng.choice("ABCD") if rng.random() > bad_rate else rng.choice(["", "The answer is unclear", "F", None])
        answers.append({"image": f"{dataset}/cat{i % 3}/test/{folder}/{i % 50:03d}.png", "question": {"type": "text", "text": "Q"}, "question_type": question_type, "correct_answer": rng.choice("ABCD"), "gpt_answer": gpt})
    return answers


@pytest.mark.parametrize("seed", range(6))
def test_compat_matches_reference_exactly(seed):
    rng = random.Random(seed)
    answers = _random_answers(rng, 600, bad_rate=0.1)
    answers += [dict(answers[5]) for _ in range(3)]  # duplicates: list.remove takes the first equal one
    ours = mmad_compat_table(answers)
    reference = reference_mmad_scores(answers)
    for dataset, row in reference.items():
        for column, value in row.items():
            assert ours.values[dataset][column] == value, (dataset, column)  # exact, not approx
    assert ours.removed > 0 and ours.skipped > 0


def test_removal_skips_the_next_record():
    good = lambda i, right: {"image": f"VisA/x/test/bad/{i}.png", "question_type": "Defect Classification", "correct_answer": "A", "gpt_answer": "A" if right else "B"}  # noqa: E731
    bad = {"image": "VisA/x/test/bad/9.png", "question_type": "Defect Classification", "correct_answer": "A", "gpt_answer": "no idea"}
    table = mmad_compat_table([good(0, True), bad, good(1, False), good(2, True)])
    # The wrong answer right after the removed record is never counted: 2 of 2, not 2 of 3.
    assert table.values["VisA"]["Defect Classification"] == 100.0
    assert (table.removed, table.skipped) == (1, 1)


def test_balanced_detection_and_case_sensitive_good_rule():
    def det(image, right):
        return {"image": image, "question_type": "Anomaly Detection", "correct_answer": "A", "gpt_answer": "A" if right else "B"}

    answers = [det("GoodsAD/drink/good/1.png", True), det("GoodsAD/drink/good/2.png", True), det("GoodsAD/drink/good/3.png", False),
               det("GoodsAD/drink/deformation/1.png", True)]
    row = mmad_compat_table(answers).values["GoodsAD"]
    # normal 2/3, anomalous 1/1 (the 'GoodsAD' prefix does not make an image normal)
    assert row["Anomaly Detection"] == pytest.approx((2 / 3 + 1) / 2 * 100)
    assert row["Overkill"] == pytest.approx(100 / 3) and row["Miss"] == 0.0
    assert row["Recall"] == 100.0 and row["Precision"] == pytest.approx(50.0)


def _published(name: str) -> tuple[str, CompatTable]:
    text = (PUBLISHED / name).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    columns = rows[0][1:]
    values = {r[0]: {c: float(v) for c, v in zip(columns, r[1:])} for r in rows[1:]}
    return text, CompatTable(rows=[r[0] for r in rows[1:]], columns=columns, values=values, removed=0, skipped=0)


@pytest.mark.parametrize("name", ["answers_1_shot_gpt-4o_accuracy.csv", "answers_1_shot_Qwen2.5-VL-7B-Instruct_accuracy.csv"])
def test_csv_layout_is_byte_identical_to_published(name):
    text, table = _published(name)
    assert table.to_csv() == text


PUBLISHED_FILES = sorted(p.name for p in PUBLISHED.glob("*.csv"))


def test_all_published_tables_are_present():
    assert len(PUBLISHED_FILES) == 22  # guards the parametrized test below against an empty list


@pytest.mark.parametrize("name", PUBLISHED_FILES)
def test_published_averages_follow_our_definition(name):
    """Every published row's Average is the mean of its 7 subtasks. Today's pandas sums left to right
    (our definition, exactly); some published files were written by an older pandas that summed in
    another order, so they may differ in the last bit: 1e-12 allows that and nothing more."""
    _, table = _published(name)
    for dataset in table.rows[:-1]:
        row = table.values[dataset]
        assert row["Average"] == pytest.approx(sum(row[c] for c in table.columns[:7]) / 7, abs=1e-12, rel=0)


def test_published_derived_columns_follow_our_definitions():
    """F1, Miss and the Average row of a published table, recomputed our way."""
    _, table = _published("answers_1_shot_gpt-4o_accuracy.csv")
    for dataset in table.rows[:-1]:
        row = table.values[dataset]
        assert row["F1"] == pytest.approx(2 * row["Precision"] * row["Recall"] / (row["Precision"] + row["Recall"]), abs=1e-9)
        assert row["Miss"] == pytest.approx(100 - row["Recall"], abs=1e-9)
    assert table.values["Average"]["Average"] == pytest.approx(74.30601238404245, abs=1e-12)


def _sample(i, subtask, label, correct, status="ok", options=2, dataset="D"):
    letters = "ABCD"[:options]
    return SampleResult(
        question_id=f"q{i}", ordinal=i, image_id=f"{dataset}/c/{label}/{i}.png", dataset=dataset, category="c", label=label,
        subtask=subtask, mmad_type=subtask.value, question="?", options={k: k for k in letters}, answer="A", model="m",
        request_digest="x", reply="A" if correct else "B", parsed=("A" if correct else None) if status == "ok" else None,
        parse_status=status, correct=correct,
    )


def test_strict_scores_balance_detection_and_count_unanswered():
    samples = [
        _sample(0, Subtask.ANOMALY_DETECTION, "normal", True),
        _sample(1, Subtask.ANOMALY_DETECTION, "anomaly", True),
        _sample(2, Subtask.ANOMALY_DETECTION, "anomaly", True),
        _sample(3, Subtask.ANOMALY_DETECTION, "anomaly", False, status="unparsable"),
        _sample(4, Subtask.DEFECT_CLASSIFICATION, "anomaly", True, options=4),
        _sample(5, Subtask.DEFECT_CLASSIFICATION, "anomaly", False, status="error", options=4),
    ]
    scores = strict_scores(samples)
    row = scores["accuracy"]["D"]
    assert row["Anomaly Detection"] == pytest.approx((1.0 + 2 / 3) / 2 * 100)
    assert row["Defect Classification"] == 50.0  # the failed sample counts as wrong
    assert row["Defect Localization"] is None  # empty: shown as '-', left out of the average
    assert row["Average"] == pytest.approx((row["Anomaly Detection"] + 50.0) / 2)
    assert scores["chance"]["D"]["Anomaly Detection"] == 50.0 and scores["chance"]["D"]["Defect Classification"] == 25.0
    assert scores["counts"]["D"]["Anomaly Detection"]["not_answered"] == 1
    assert scores["detection"]["D"]["Overkill"] == 0.0 and scores["detection"]["D"]["Miss"] == pytest.approx(100 / 3)
    assert scores["by_category"]["D/c"]["Defect Classification"] == 50.0


def test_a_line_that_rescores_to_itself_is_kept_as_it_is(tmp_path, synthetic_set, monkeypatch):
    """`score` re-scores every reply (a stored verdict is never trusted); a line whose reply parses to
    its own stored verdict against its question is kept without building objects for it (40,000
    lines: 2.6 s → 2.0 s). Whatever the path, the samples are the same, and an edited verdict is
    still re-scored."""
    import json

    from harness.cli import main
    from harness.run.runlog import RunFolder
    from harness.schema import RunSpec
    from harness.tasks.mcq.task import McqTask
    from harness.tasks.registry import task_kind

    assert main(["eval", "--model", "random", "--limit", "80", "--runs-dir", str(tmp_path), "--run-id", "r", "--quiet"]) == 0
    folder = RunFolder.open(tmp_path / "r")
    lines = (folder.path / "samples.jsonl").read_text().splitlines()
    edited = json.loads(lines[3])
    edited["correct"] = not edited["correct"]  # a verdict edited by hand
    lines[3] = json.dumps(edited)
    (folder.path / "samples.jsonl").write_text("\n".join(lines) + "\n")
    spec = RunSpec.model_validate_json((folder.path / "spec.json").read_text())
    kind = task_kind(spec.task)
    samples = folder.read_samples()
    quick = kind.rescored(spec, folder, samples, None)
    monkeypatch.setattr(McqTask, "unchanged", lambda self, ordinal, sample: False)
    full = kind.rescored(spec, folder, samples, None)
    assert [s.model_dump() for s in quick] == [s.model_dump() for s in full] and len(quick) == 80
    fixed = next(s for s in quick if s.question_id == edited["question_id"])
    assert fixed.correct == (not edited["correct"])  # the edit did not stick
