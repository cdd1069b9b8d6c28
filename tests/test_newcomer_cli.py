"""What a newcomer stumbles on at the command line: each mistake is one line that says what to do,
and each command says what it did once."""

import json

import pytest

from harness.cli import main


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_names_its_run_folder_once_and_the_task_in_it(tmp_path, synthetic_set, capsys):
    code, out, err = _run(capsys, "eval", "--model", "random", "--limit", "5", "--runs-dir", str(tmp_path), "--quiet")
    assert code == 0 and (out + err).count("run folder:") == 1
    code, out, err = _run(capsys, "eval", "--task", "bbox", "--model", "random", "--limit", "3", "--runs-dir", str(tmp_path), "--quiet")
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any("_bbox_" in name for name in names) and any("_bbox_" not in name for name in names)


def test_a_local_baselines_dry_run_estimates_no_tokens(tmp_path, synthetic_set, capsys):
    code, out, _ = _run(capsys, "eval", "--model", "random", "--dry-run", "--limit", "4")
    assert code == 0 and "local baseline" in out and "tokens and cost: none" in out and "unknown" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "robustmad:/nowhere/RobustMAD_MCQ.json"], "--task robustmad (--suite robustmad)"),
    (["--perturb", "robustmad-low"], "--task robustmad (--suite robustmad)"),
    (["--perturb", "blur:2"], "robustmad-low with --task robustmad"),
])
def test_another_kinds_data_or_degradation_names_that_kind(tmp_path, synthetic_set, capsys, args, message):
    code, _, err = _run(capsys, "eval", "--model", "random", "--runs-dir", str(tmp_path), *args)
    assert code == 2 and message in err and "unknown source" not in err
    assert not list(tmp_path.iterdir())


def test_list_perturbations_names_the_benchmarks_own(capsys):
    code, out, _ = _run(capsys, "list", "perturbations")
    assert code == 0 and "robustmad-low" in out and "--task robustmad" in out


def test_score_of_nothing_names_what_it_takes_and_keeps_mmads_csv(tmp_path, capsys):
    code, _, err = _run(capsys, "score", str(tmp_path / "nope"))
    assert code == 2 and "no such run folder or file" in err and "MMAD answers .json" in err
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([{"image": "MVTec-AD/bottle/test/good/000.png", "question_type": "Anomaly Detection", "correct_answer": "A", "gpt_answer": "A"}]))
    official = tmp_path / "answers_accuracy.csv"
    official.write_text("what MMAD's own scorer wrote\n")
    code, out, _ = _run(capsys, "score", str(answers))
    assert code == 0 and official.read_text() == "what MMAD's own scorer wrote\n"  # never overwritten
    assert (tmp_path / "answers_accuracy.iadbench.csv").is_file()


def test_generate_says_its_counts_in_one_line(tmp_path, capsys, isolated_cache):
    code, out, _ = _run(capsys, "generate", "--source", "synthetic", "--size", "64", "--out", str(tmp_path / "set"))
    assert code == 0 and not out.lstrip().startswith("{")
    first = out.splitlines()[0]
    assert "questions from" in first and "AD " in first and "generation_report.json" in first


def test_fetch_says_nothing_arrived_and_how_to_place_the_files(tmp_path, capsys):
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = _run(capsys, "fetch", "robustmad", "--out", str(tmp_path / "rm"), "--endpoint", f"http://127.0.0.1:{port}")
    assert code == 2
    assert "0/4 files arrived, 4 failed" in err and "4/4 files" not in err
    assert "Without a network:" in err and "--data robustmad:" in err


def test_fetch_dependencies_are_the_installs(tmp_path):
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("huggingface_hub") for d in project["dependencies"])  # fetch mmad after `pip install -e .`


def test_synths_folder_read_as_mvtec_keeps_its_object_questions(tmp_path, capsys):
    """`synth` then `generate --source mvtec:` used to lose every Object Analysis question: the
    synthetic objects' facts are found for the folder synth drew."""
    assert main(["synth", "--out", str(tmp_path / "syn"), "--size", "64"]) == 0
    assert main(["generate", "--source", f"mvtec:{tmp_path / 'syn'}", "--out", str(tmp_path / "set")]) == 0
    report = json.loads((tmp_path / "set" / "generation_report.json").read_text())
    assert report["questions_by_subtask"].get("Object Analysis", 0) == report["images"]


def test_review_says_how_many_of_the_set_it_shows(tmp_path, synthetic_set, capsys):
    code, out, _ = _run(capsys, "review", str(synthetic_set), "--out", str(tmp_path / "r.html"), "--limit", "12")
    total = sum(len(r["conversation"]) for r in json.loads((synthetic_set / "mmad.json").read_text()).values())
    assert code == 0 and f"12 of {total} questions; --limit 12 caps it" in out


def test_a_report_out_without_a_suffix_is_a_folder(tmp_path, synthetic_set, capsys):
    """`report RUNS --out reports/today` once failed with "--format '': use html, md, csv or json"."""
    assert main(["eval", "--model", "random", "--limit", "4", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    run = next((tmp_path / "runs").iterdir())
    code, out, err = _run(capsys, "report", str(run), "--out", str(tmp_path / "today"))
    assert code == 0 and (tmp_path / "today" / "report.html").is_file() and "today/report.html" in out, err
    code, out, _ = _run(capsys, "report", str(run), "--out", str(tmp_path / "today"), "--format", "md")
    assert code == 0 and (tmp_path / "today" / "report.md").is_file()
    code, _, _ = _run(capsys, "report", str(run), "--out", str(tmp_path / "one.json"))
    assert code == 0 and json.loads((tmp_path / "one.json").read_text())
