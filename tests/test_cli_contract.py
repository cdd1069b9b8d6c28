"""The command line's contract, driven as a user would: exit codes (README), one clear line per
mistake and never a traceback, runs that never collide, and a run folder that is enough to re-score
and report it."""

import json
import socket
import sys

import pytest

from harness.cli import main


def run(tmp_path, *args):
    return main(["eval", "--runs-dir", str(tmp_path / "runs"), "--quiet", *args])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("iadbench: error:")]
    assert len(lines) == 1, err
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_hub_model_that_cannot_be_reached_fails_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # an address that never resolves
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert run(tmp_path, "--model", "hf/does/not-exist") == 2
    assert "cannot be reached" in one_line_error(capsys) and not (tmp_path / "runs").exists()


def test_nothing_listening_stops_early_with_exit_4(tmp_path, synthetic_set, capsys):
    code = run(tmp_path, "--model", "openai/some-model", "--base-url", f"http://127.0.0.1:{closed_port()}/v1", "--run-id", "dead", "--no-cache", "--limit", "40")
    assert code == 4 and "nothing answers at" in one_line_error(capsys)
    assert len((tmp_path / "runs/dead/samples.jsonl").read_text().splitlines()) < 40  # stopped early, resumable


def test_every_question_failing_is_exit_4(tmp_path, synthetic_set, server, capsys):
    running = server(echo_key_rate=1.0)  # every request refused with a 400
    code = run(tmp_path, "--model", "openai/fake", "--base-url", running.base_url, "--run-id", "bad", "--no-cache", "--limit", "30", "--max-connections", "2")
    assert code == 4 and "first 8 requests all failed" in one_line_error(capsys)


def test_an_unset_key_variable_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MY_KEY", raising=False)
    assert run(tmp_path, "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "MY_KEY") == 2
    assert "MY_KEY is not set" in one_line_error(capsys)


def test_openai_models_without_the_extra_say_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openai", None)  # as if the openai extra were not installed
    assert run(tmp_path, "--model", "openai/gpt-4o", "--dry-run") == 2
    assert "pip install -e '.[openai]'" in one_line_error(capsys)


def test_a_missing_agent_map_folder_leaves_no_run_folder(tmp_path, capsys):
    assert run(tmp_path, "--model", "random", "--strategy", "agent=maps:/nope") == 2
    assert "/nope is not a folder" in one_line_error(capsys) and not (tmp_path / "runs").exists()


def test_run_ids_never_collide_and_stay_inside_the_runs_folder(tmp_path, synthetic_set, capsys):
    for seed in ("1", "2", "3"):
        assert run(tmp_path, "--model", "random", "--limit", "5", "--seed", seed) == 0
    assert len(list((tmp_path / "runs").iterdir())) == 3
    for bad in ("../escape", "a/b", ".."):
        assert run(tmp_path, "--model", "random", "--limit", "5", "--run-id", bad) == 2
        assert "--run-id" in one_line_error(capsys)
    assert not (tmp_path / "escape").exists()


@pytest.mark.slow  # generates a second synthetic set (synthetic:1)
def test_the_header_names_the_data_and_retries_count_failures_only(tmp_path, synthetic_set, capsys):
    assert run(tmp_path, "--model", "random", "--limit", "6", "--strategy", "sc=3:0.7", "--run-id", "sc") == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "runs/sc/summary.json").read_text())
    assert summary["retries"] == 0
    assert run(tmp_path, "--model", "random", "--limit", "6", "--data", "synthetic:1", "--run-id", "s1") == 0
    assert "random on synthetic-1 (synthetic-quick settings)" in capsys.readouterr().out and "random on synthetic-quick" in out


def test_a_run_made_through_the_environment_records_its_file(tmp_path, mmad_tree, monkeypatch, capsys):
    monkeypatch.setenv("IADBENCH_MMAD", str(mmad_tree / "mmad.json"))
    assert run(tmp_path, "--model", "oracle", "--suite", "mmad-1shot", "--run-id", "env") == 0
    folder = tmp_path / "runs/env"
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["data"] == f"mmad:{(mmad_tree / 'mmad.json').resolve()}" and len(spec["data_digest"]) == 64
    wall = json.loads((folder / "summary.json").read_text())["wall_time_s"]
    monkeypatch.delenv("IADBENCH_MMAD")
    assert main(["score", str(folder)]) == 0  # the folder alone is enough
    assert json.loads((folder / "summary.json").read_text())["wall_time_s"] == wall  # kept, not erased
    other = tmp_path / "other.json"
    other.write_text(json.dumps({k: v for k, v in json.loads((mmad_tree / "mmad.json").read_text()).items() if "VisA" not in k}))
    spec["data"] = f"mmad:{other}"
    (folder / "spec.json").write_text(json.dumps(spec))
    capsys.readouterr()
    assert main(["score", str(folder)]) == 2
    line = one_line_error(capsys)
    assert str(other) in line and "is not the question file run env used" in line


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
def test_report_into_a_folder_not_made_yet(tmp_path, synthetic_set, fmt):
    assert run(tmp_path, "--model", "random", "--limit", "8", "--run-id", "r") == 0
    out = tmp_path / "new" / "deeper" / f"report.{fmt}"
    assert main(["report", str(tmp_path / "runs/r"), "--out", str(out)]) == 0 and out.stat().st_size > 0


def test_markdown_leaderboard_has_the_html_columns_and_the_heatmap_colours_zero(tmp_path, synthetic_set):
    import math

    from harness.report.build import category_grid

    assert run(tmp_path, "--model", "random", "--limit", "8", "--run-id", "r") == 0
    assert main(["report", str(tmp_path / "runs/r"), "--out", str(tmp_path / "r.md")]) == 0
    header = next(line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| run |"))
    assert header.startswith("| run | data | questions | date |")
    categories, grid = category_grid({"b": {"Anomaly Detection": 0.0, "Defect Classification": None}, "a": {"Anomaly Detection": 50.0}})
    assert categories == ["a", "b"] and grid[1, 0] == 0.0 and math.isnan(grid[1, 1]) and math.isnan(grid[0, 1])


def test_gpt4vad_runs_print_tokens_and_name_overlays_once(tmp_path, synthetic_set, server, capsys):
    running = server()
    assert run(tmp_path, "--task", "gpt4vad", "--model", "openai/fake", "--base-url", running.base_url, "--regions", "grid:16", "--limit", "2", "--run-id", "g") == 0
    assert "tokens:" in capsys.readouterr().out
    overlays = list((tmp_path / "runs/g/overlays").iterdir())
    assert overlays and not any(p.name.endswith(".png.png") for p in overlays)


def test_help_lists_every_data_source_and_strategy(capsys):
    from harness.storage.sources import DATA_SOURCES
    from harness.strategies import STRATEGY_FORMS

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(form in text for form in DATA_SOURCES) and all(form in text for form in ("circular", "cot", "sc=N:T"))
    assert len(STRATEGY_FORMS) == 6


def test_the_progress_line_says_declined_as_the_table_does():
    import io

    from harness.run.progress import Progress

    stream = io.StringIO()
    progress = Progress(3, stream=stream)
    progress.update(error=False, answered=True)
    progress.update(error=False, answered=False, declined=True)
    progress.update(error=False, answered=False)
    line = progress.line()
    assert "unparsed 1" in line and "declined 1" in line and "errors 0" in line
