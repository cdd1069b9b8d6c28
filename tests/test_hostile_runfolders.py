"""Hostile run folders and question sets: real run folders made by real CLI runs, then tampered with
as a person (or another program) could: links to outside files, paths in samples leading out,
edited answers and settings. Nothing outside is read, written or embedded; a score never trusts a
stored verdict; a folder whose answers and settings do not belong together is refused with the
reason; exit 0 means at least one answer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_hostile_inputs import run_cli


def _run(tmp_path: Path, capsys, model: str = "random", run_id: str = "r", *extra: str) -> Path:
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--model", model, "--limit", "20", "--runs-dir", str(runs), "--run-id", run_id, "--quiet", *extra)
    assert code == 0, err
    return runs / run_id


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def _write_lines(folder: Path, lines: list[dict]) -> None:
    (folder / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


# -- 1. nothing outside the folder is read, written or embedded -------------------------------------


def test_a_samples_file_linked_outside_is_never_appended_to(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys)
    outside = tmp_path / "outside.jsonl"
    lines = (folder / "samples.jsonl").read_text().splitlines(keepends=True)
    outside.write_text("".join(lines[:5]))  # a resume would append the 15 missing answers here
    before = outside.read_bytes()
    (folder / "samples.jsonl").unlink()
    (folder / "samples.jsonl").symlink_to(outside)
    for command in (["eval", "--resume", str(folder), "--quiet"], ["score", str(folder)], ["report", str(folder), "--out", str(tmp_path / "r.html")]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and "samples.jsonl: is a symbolic link" in err and "start a new run" in err
    assert outside.read_bytes() == before
    assert not (tmp_path / "r.html").exists()


def test_a_samples_file_hard_linked_outside_is_never_appended_to(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys)
    lines = (folder / "samples.jsonl").read_text().splitlines(keepends=True)
    (folder / "samples.jsonl").write_text("".join(lines[:5]))
    outside = tmp_path / "outside.jsonl"
    os.link(folder / "samples.jsonl", outside)
    before = outside.read_bytes()
    code, _, err = run_cli(capsys, "eval", "--resume", str(folder), "--quiet")
    assert code == 2 and "other hard link" in err
    assert outside.read_bytes() == before
    code, _, err = run_cli(capsys, "score", str(folder))  # reading it is harmless
    assert code == 0, err


def test_a_dangling_lock_link_is_never_created(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys)
    target = tmp_path / "created-by-lock"
    (folder / ".lock").unlink(missing_ok=True)
    (folder / ".lock").symlink_to(target)
    for command in (["report", str(folder), "--out", str(tmp_path / "r.html")], ["score", str(folder)]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and ".lock: is a symbolic link" in err
    assert not os.path.lexists(target)


def test_a_linked_subfolder_or_file_anywhere_in_the_run_is_refused(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (folder / "agent").symlink_to(outside, target_is_directory=True)  # artifacts would be written through it
    code, _, err = run_cli(capsys, "eval", "--resume", str(folder), "--quiet")
    assert code == 2 and "agent: is a symbolic link" in err
    assert list(outside.iterdir()) == []


def _coloured_png(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.fromarray(np.full((48, 48, 3), colour, dtype=np.uint8)).save(path)
    return path


def test_an_edited_image_id_is_not_embedded_in_the_gallery(tmp_path, synthetic_set, capsys):
    from harness.report.media import thumbnail

    folder = _run(tmp_path, capsys)
    secret = _coloured_png(tmp_path / "secret.png", (255, 0, 255))
    lines = _lines(folder)
    wrong = [line for line in lines if not line["correct"]]
    assert wrong
    for line, image_id in zip(wrong, [str(secret), "../../secret.png"] * len(wrong)):
        line["image_id"] = image_id
    _write_lines(folder, lines)
    out = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", str(folder), "--out", str(out))
    assert code == 0, err
    html = out.read_text()
    assert thumbnail(secret) not in html and str(secret) not in html
    assert "data:image/jpeg;base64," in html  # the gallery still shows the questions' own images


def test_an_edited_overlay_path_costs_that_image_not_the_report(tmp_path, synthetic_set, capsys):
    from harness.report.media import thumbnail

    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--task", "bbox", "--model", "random", "--limit", "6", "--runs-dir", str(runs), "--run-id", "b", "--quiet")
    assert code == 0, err
    folder = runs / "b"
    secret = _coloured_png(tmp_path / "secret.png", (0, 255, 255))
    lines = _lines(folder)
    for line in lines:
        line["image_iou"], line["overlay_path"] = 0.0, str(secret)  # every line in the gallery, each naming the outside file
    lines[1]["overlay_path"] = "../../secret.png"
    _write_lines(folder, lines)
    out = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", str(folder), "--out", str(out))
    assert code == 0, err
    assert thumbnail(secret) not in out.read_text()
    assert "a path outside it" in err and "left out of the report" in err


def test_convert_refuses_a_knowledge_file_linked_outside(tmp_path, capsys):
    from tests.conftest import build_mmad_tree

    build_mmad_tree(tmp_path / "set")
    source = tmp_path / "set" / "mmad.json"
    secret = tmp_path / "secret.json"
    secret.write_text('{"private": "not for the copy"}')
    (source.parent / "domain_knowledge.json").symlink_to(secret)
    out = tmp_path / "converted"
    code, _, err = run_cli(capsys, "convert", f"mmad:{source}", "--out", str(out))
    assert code == 2 and "domain_knowledge.json" in err and "outside" in err
    assert not any(b"not for the copy" in p.read_bytes() for p in out.rglob("*") if p.is_file())


# -- 2. tampered answers and settings ---------------------------------------------------------------


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_score_recomputes_every_verdict_from_the_replies(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys)
    honest = _summary(folder)["strict"]
    code, _, err = run_cli(capsys, "score", str(folder), "--mmad-compat", "--csv", str(tmp_path / "honest.csv"))
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", str(folder), "--out", str(tmp_path / "honest.json"))
    lines = _lines(folder)
    flipped = [line for line in lines if not line["correct"]]
    assert flipped
    for line in flipped:
        line["correct"] = True
        line["answer"] = line["parsed"]  # the verdict and the right answer edited, the reply left as the model wrote it
    _write_lines(folder, lines)
    code, _, err = run_cli(capsys, "score", str(folder), "--mmad-compat", "--csv", str(tmp_path / "after.csv"))
    assert code == 0, err
    assert _summary(folder)["strict"] == honest
    assert (tmp_path / "after.csv").read_text() == (tmp_path / "honest.csv").read_text()
    code, _, err = run_cli(capsys, "export", str(folder), "--out", str(tmp_path / "after.json"))
    assert code == 0, err
    assert (tmp_path / "after.json").read_text() == (tmp_path / "honest.json").read_text()


def test_a_robustmad_score_and_export_recompute_flipped_verdicts(tmp_path, capsys):
    from tests.test_robustmad import build_fixture

    path = build_fixture(tmp_path / "rm", images=3)
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--runs-dir", str(runs), "--run-id", "r", "--quiet")
    assert code == 0, err
    folder = runs / "r"
    honest = _summary(folder)["metrics"]["overall"]
    code, _, err = run_cli(capsys, "export", str(folder), "--out", str(tmp_path / "honest.csv"))
    lines = _lines(folder)
    assert any(not line["correct"] for line in lines)
    for line in lines:
        line["correct"] = True
    _write_lines(folder, lines)
    for command in (["score", str(folder)], ["export", str(folder), "--out", str(tmp_path / "after.csv")]):
        code, _, err = run_cli(capsys, *command)
        assert code == 0, err
    assert _summary(folder)["metrics"]["overall"] == honest < 1
    assert (tmp_path / "after.csv").read_text() == (tmp_path / "honest.csv").read_text()


def test_lines_that_are_not_questions_of_the_set_are_not_counted(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys, "oracle")
    lines = _lines(folder)
    stranger = dict(lines[0], question_id="Synthetic/none/never.png#0")
    lines[2]["question_id"], lines[3]["question_id"] = lines[3]["question_id"], lines[2]["question_id"]  # swapped between lines
    _write_lines(folder, lines + [stranger])
    code, out, err = run_cli(capsys, "score", str(folder))
    assert code == 0, err
    summary = _summary(folder)
    assert summary["n_samples"] == 18 and summary["n_questions"] == 20  # never "21/20 answered"
    assert "18/20" in out and "not questions of the run's question set" in err and "ids edited or swapped" in err


def test_a_box_run_counts_only_images_of_its_set(tmp_path, synthetic_set, capsys):
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--task", "bbox", "--model", "random", "--limit", "4", "--runs-dir", str(runs), "--run-id", "b", "--quiet")
    assert code == 0, err
    folder = runs / "b"
    lines = _lines(folder)
    _write_lines(folder, lines + [dict(lines[0], question_id="Synthetic/none/never.png")])
    code, out, err = run_cli(capsys, "score", str(folder))
    assert code == 0, err
    assert _summary(folder)["n_samples"] == 4 and "4/4 images answered" in out and "not questions of the run's question set" in err


def test_a_model_changed_in_the_spec_with_its_record_deleted_is_refused(tmp_path, synthetic_set, capsys):
    folder = _run(tmp_path, capsys)
    lines = (folder / "samples.jsonl").read_text().splitlines(keepends=True)
    (folder / "samples.jsonl").write_text("".join(lines[:8]))  # a resume would ask 12 more, of the other model
    spec = json.loads((folder / "spec.json").read_text())
    spec["model"] = "oracle"
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "answers_config.json").unlink()
    for command in (["eval", "--resume", str(folder), "--quiet"], ["score", str(folder)], ["report", str(folder), "--out", str(tmp_path / "r.html")]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and "made under other settings" in err and "'random'" in err and "'oracle'" in err
    assert len((folder / "samples.jsonl").read_text().splitlines()) == 8


# -- 3. exit 0 means at least one answer ------------------------------------------------------------


def test_errata_that_remove_every_question_are_an_error(tmp_path, synthetic_set, capsys):
    keys = list(json.loads((synthetic_set / "mmad.json").read_text()))
    errata = tmp_path / "all.toml"
    errata.write_text('name = "all"\ndescription = "every record"\nsource = "a test"\nrecords = [' + ", ".join(json.dumps(k) for k in keys) + "]\n")
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--model", "random", "--errata", str(errata), "--runs-dir", str(runs), "--quiet")
    assert code == 2 and "no question is left to ask" in err and f"the errata removed {len(keys)}" in err
    assert not runs.exists()


def test_skip_bad_skipping_every_record_is_an_error(tmp_path, synthetic_set, capsys):
    moved = tmp_path / "elsewhere" / "mmad.json"  # the file without its images: every path misses
    moved.parent.mkdir()
    moved.write_bytes((synthetic_set / "mmad.json").read_bytes())
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--model", "random", "--data", f"mmad:{moved}", "--skip-bad", "--runs-dir", str(runs), "--quiet")
    assert code == 2 and "--skip-bad skipped all" in err and "--data-root" in err
    assert not runs.exists()


# -- 4. --skip-bad with RobustMAD ---------------------------------------------------------------------


def test_skip_bad_skips_bad_robustmad_records_with_a_note(tmp_path, capsys):
    from tests.test_robustmad import build_fixture

    path = build_fixture(tmp_path / "rm", images=3)
    data = json.loads(path.read_text())
    missing = data["images"][1]["image_path"]
    (tmp_path / "rm" / missing).unlink()
    path.write_text(json.dumps(data))
    runs = tmp_path / "runs"
    base = ["eval", "--task", "robustmad", "--model", "oracle", "--data", f"robustmad:{path}", "--runs-dir", str(runs), "--quiet"]
    code, _, err = run_cli(capsys, *base, "--run-id", "strict")
    assert code == 2 and missing in err
    code, _, err = run_cli(capsys, *base, "--run-id", "skip", "--skip-bad")
    assert code == 0, err
    assert f"left out 1 RobustMAD image records: {missing}" in err
    spec = json.loads((runs / "skip" / "spec.json").read_text())
    assert any(missing in note for note in spec["notes"])
    answered = {line["question_id"].split("#")[0] for line in _lines(runs / "skip")}
    assert missing not in answered and len(answered) == 2
    code, _, err = run_cli(capsys, "score", str(runs / "skip"))  # scored again over the same questions
    assert code == 0, err


def test_skip_bad_skipping_every_robustmad_record_is_an_error(tmp_path, capsys):
    from tests.test_robustmad import build_fixture

    path = build_fixture(tmp_path / "rm", images=2)
    for image in (tmp_path / "rm").rglob("*.png"):
        image.unlink()
    runs = tmp_path / "runs"
    code, _, err = run_cli(capsys, "eval", "--task", "robustmad", "--model", "oracle", "--data", f"robustmad:{path}", "--skip-bad", "--runs-dir", str(runs), "--quiet")
    assert code == 2 and "no question is left to ask" in err and "--skip-bad skipped all 2" in err
    assert not runs.exists()


@pytest.mark.slow  # 2 s: a Chromium start
def test_a_tampered_run_reads_harmless_in_a_real_browser(tmp_path, synthetic_set, capsys):
    """The page a tampered run folder makes, as a browser renders it: no image or link of an outside
    file, no element a reply or an edited line tried to add, no script run."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed for this test: apt-get install -y chromium (bash tests/run.sh does, as root)"
    folder = _run(tmp_path, capsys)
    secret = _coloured_png(tmp_path / "secret.png", (255, 0, 255))
    lines = _lines(folder)
    wrong = [line for line in lines if not line["correct"]]
    for line in wrong:
        line["image_id"] = str(secret)
        line["reply"] = '<img src=x onerror="document.title=\'pwned\'"><script>document.body.dataset.pwned=1</script>\x1b]0;title\x07'
    _write_lines(folder, lines)
    out = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", str(folder), "--out", str(out))
    assert code == 0, err
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<title>iadbench report</title>" in dom and "pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert str(secret) not in dom and "file://" + str(tmp_path) + "/secret" not in dom
    images = [src for src in __import__("re").findall(r'<img[^>]* src="([^"]*)"', dom)]
    assert images and all(src.startswith("data:image/") for src in images)  # only the page's own, inline
