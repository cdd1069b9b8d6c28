"""Reports over many runs of one model: every run named apart, every figure from its own run, notes
once under their run, baselines and references only where comparable, headlines never rewritten."""

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main

ARMS = ["baseline"] + [f"{kind}-{severity}" for kind in ("jpeg", "defocus-blur") for severity in range(1, 6)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, synthetic_set) -> Path:
    """An 11-arm degradation sweep of one model, as `ablate --perturb-sweep` writes it."""
    out = tmp_path_factory.mktemp("sweep") / "robustness"
    assert main(["ablate", "--model", "expert/patchknn", "--perturb-sweep", "jpeg,defocus_blur", "--limit", "60", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(ARMS)
    return out


def _report(tmp_path: Path, fmt: str, *runs: Path) -> Path:
    out = tmp_path / (f"report.{fmt}" if fmt != "csv" else "csv")
    assert main(["report", *map(str, runs), "--format", fmt, "--out", str(out)]) == 0
    return out


def _summary(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "summary.json").read_text())


def _first_number(cell: str) -> float | None:
    found = re.match(r"\s*(-?\d+(?:\.\d+)?)", cell)
    return float(found.group(1)) if found else None


@pytest.mark.slow  # the 11-arm sweep fixture (13 s once) and reports over it
def test_every_run_is_named_apart_and_every_figure_is_its_own(sweep, tmp_path):
    report = json.loads(_report(tmp_path, "json", sweep).read_text())
    runs = {run["key"]: run for run in report["runs"]}
    labels = [run["label"] for run in report["runs"]]
    assert len(labels) == 11 and len(set(labels)) == 11
    assert labels[0] == "expert/patchknn · clean" and "expert/patchknn · jpeg:3" in labels  # the ablation's order, baseline first
    assert report["differences"]["columns"] == ["degradation"]
    # the leaderboard, the per-dataset tables and the image-level table: each row is its own run's summary
    for row in (row for row in report["leaderboard"]["rows"] if row["kind"] == "run"):  # not the chance row
        own = _summary(runs[row["key"]]["folder"])
        assert row["label"] == runs[row["key"]]["label"]
        assert [cell["value"] for cell in row["cells"]] == pytest.approx([own["strict"]["accuracy"]["Average"][c] for c in report["leaderboard"]["columns"]])
    for block in report["datasets"]:
        own = _summary(runs[block["key"]]["folder"])
        for row in block["rows"]:
            assert [cell["value"] for cell in row["cells"]] == pytest.approx([own["strict"]["accuracy"][row["dataset"]][c] for c in report["leaderboard"]["columns"]])
    for item in report["image_metrics"]:
        assert item["mean"] == pytest.approx(_summary(runs[item["key"]]["folder"])["image_metrics"]["mean"])
    for run in report["runs"]:
        own = _summary(run["folder"])
        assert run["headline_average"] == pytest.approx(own["strict"]["accuracy"]["Average"]["Average"])
        assert run["notes"] == [f"official-scorer average: {own['mmad_compat']['values']['Average']['Average']:.2f}"]  # its own, and only its own
    assert any("protocol: harmonised" in note for note in report["common_notes"])  # what every run shares, said once
    by_label = {run["label"]: run for run in report["runs"]}
    for section in report["robustness"]:
        for row in section["rows"]:
            own = _summary(by_label[row["label"]]["folder"])
            assert row["cells"] == pytest.approx([own["strict"]["accuracy"]["Average"][c] for c in section["columns"]])
    for pair in report["pairs"]:
        assert (pair["first"], pair["second"]) == (runs[pair["first_key"]]["label"], runs[pair["second_key"]]["label"])
        assert pair["shared_questions"] == 60


@pytest.mark.slow  # the 11-arm sweep fixture (13 s once) and reports over it
def test_markdown_html_and_csv_use_the_same_labels_and_figures(sweep, tmp_path):
    labels = [run["label"] for run in json.loads(_report(tmp_path, "json", sweep).read_text())["runs"]]
    folders = {label: sweep / arm for label, arm in zip(labels, ARMS)}
    markdown = _report(tmp_path, "md", sweep).read_text()
    board = markdown.split("## Leaderboard", 1)[1].split("\n\n", 2)[1].splitlines()[2:]
    seen = []
    for line in board:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].startswith("chance"):
            continue
        seen.append(cells[0])
        own = _summary(folders[cells[0]])["strict"]["accuracy"]["Average"]
        assert [_first_number(c) for c in cells[4:]] == pytest.approx([round(v, 1) for v in own.values()][: len(cells) - 4], abs=0.051)
    assert sorted(seen) == sorted(labels)
    runs_section = markdown.split("## Runs: how each was asked and scored", 1)[1].split("\n## ", 1)[0]
    assert runs_section.count("official-scorer average") == 11  # each run's own line, once (it was 121)
    assert runs_section.count("protocol: harmonised (one layout") == 1  # shared by all: said once
    for label in labels:
        block = runs_section.split(f"- **{label}**", 1)[1].split("\n- **", 1)[0]
        own = _summary(folders[label])["mmad_compat"]["values"]["Average"]["Average"]
        assert f"official-scorer average: {own:.2f}" in block
    html = _report(tmp_path, "html", sweep).read_text()
    differences = html.split('id="differences"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'class="name run-label">([^<]+)<', differences) == labels
    leaderboard = html.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    for row in leaderboard.split("<tr class=\"run\">")[1:]:
        row = row.split("</tr>", 1)[0]
        label = re.search(r'<td class="name">([^<]+)<', row).group(1)
        values = [float(v) for v in re.findall(r'data-value="([-\d.]+)"', row)]
        assert values == pytest.approx(list(_summary(folders[label])["strict"]["accuracy"]["Average"].values()))
    assert html.count("expert/patchknn · clean vs expert/patchknn · clean") == 0
    out = _report(tmp_path, "csv", sweep)
    index = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    assert [row["label"] for row in index] == labels
    for row in index:
        own = _summary(folders[row["label"]])
        table = list(csv.reader(io.StringIO((out / row["official-layout file"]).read_text())))
        assert float(table[-1][table[0].index("Average")]) == pytest.approx(own["mmad_compat"]["values"]["Average"]["Average"])
        assert float(row["strict average"]) == pytest.approx(own["strict"]["accuracy"]["Average"]["Average"])


@pytest.mark.slow  # the 11-arm sweep fixture (13 s once) and reports over it
def test_severity_zero_is_the_matching_clean_run(sweep, tmp_path):
    report = json.loads(_report(tmp_path, "json", sweep).read_text())
    assert sorted(section["kind"] for section in report["robustness"]) == ["defocus_blur", "jpeg"]
    for section in report["robustness"]:
        assert section["baseline"] == "expert/patchknn · clean"
        assert [row["severity"] for row in section["rows"]] == [0, 1, 2, 3, 4, 5]
        assert section["rows"][0]["run_id"] == "baseline"
    # a clean run that differs in another setting (similar templates) is no baseline of the 1-shot random-template arms
    other = tmp_path / "other"
    assert main(["eval", "--model", "expert/patchknn", "--limit", "60", "--templates", "similar", "--runs-dir", str(other), "--run-id", "similar", "--quiet"]) == 0
    jpeg = [sweep / f"jpeg-{s}" for s in range(1, 6)]
    report = json.loads(_report(tmp_path, "json", other / "similar", *jpeg).read_text())
    (section,) = report["robustness"]
    assert section["baseline"] is None and "no matching clean run" in section["baseline_note"]
    assert [row["severity"] for row in section["rows"]] == [1, 2, 3, 4, 5]
    markdown = _report(tmp_path, "md", other / "similar", *jpeg).read_text()
    assert "no matching clean run" in markdown
    # the pair of a clean run and its degraded twin: each run's notes are its own
    markdown = _report(tmp_path, "md", sweep / "baseline", sweep / "jpeg-3").read_text()
    for arm, label in (("baseline", "expert/patchknn · clean"), ("jpeg-3", "expert/patchknn · jpeg:3")):
        block = markdown.split(f"- **{label}**", 1)[1].split("\n- **", 1)[0].split("\n\n", 1)[0]
        own = _summary(sweep / arm)
        assert f"official-scorer average: {own['mmad_compat']['values']['Average']['Average']:.2f}" in block
        assert block.count("official-scorer average") == 1


@pytest.mark.slow  # the 11-arm sweep fixture (13 s once) and reports over it
def test_paired_tests_pair_only_runs_over_the_same_questions(sweep, tmp_path):
    other = tmp_path / "other"
    assert main(["eval", "--model", "expert/patchknn", "--limit", "40", "--runs-dir", str(other), "--run-id", "forty", "--quiet"]) == 0
    report = json.loads(_report(tmp_path, "json", sweep / "baseline", sweep / "jpeg-1", other / "forty").read_text())
    whole = json.loads((other / "forty" / "spec.json").read_text())["limit_of"]
    assert [run["label"] for run in report["runs"]] == [f"expert/patchknn · clean · 60 of {whole}, stratified", f"expert/patchknn · jpeg:1 · 60 of {whole}, stratified", f"expert/patchknn · clean · 40 of {whole}, stratified"]
    assert [(pair["first"], pair["second"], pair["shared_questions"]) for pair in report["pairs"]] == [(f"expert/patchknn · clean · 60 of {whole}, stratified", f"expert/patchknn · jpeg:1 · 60 of {whole}, stratified", 60)]


@pytest.mark.slow  # the 11-arm sweep fixture (13 s once) and reports over it
def test_the_sweep_report_in_a_real_browser(sweep, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed for this test: apt-get install -y chromium (bash tests/run.sh does, as root)"
    page = _report(tmp_path, "html", sweep)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile1'}", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    screenshot = tmp_path / "sweep.png"
    shot = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1280,2400", f"--screenshot={screenshot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Error" in line], console
    differences = dom.stdout.split('id="differences"', 1)[1].split("</table>", 1)[0]
    labels = re.findall(r'class="name run-label">([^<]+)<', differences)
    assert len(labels) == 11 and len(set(labels)) == 11
    options = re.findall(r"<option value=\"run\d+\">([^<]+)</option>", dom.stdout.split('id="heatmap-run"', 1)[1].split("</select>", 1)[0])
    assert options == labels  # a heatmap for each run, chosen by its label
    robustness = dom.stdout.split(">Robustness: ", 1)[1]
    assert "Severity 0 is expert/patchknn · clean" in robustness
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"


def test_score_leaves_the_headline_as_recorded(tmp_path, synthetic_set, capsys):
    runs = tmp_path / "runs"
    assert main(["eval", "--model", "random", "--limit", "30", "--runs-dir", str(runs), "--run-id", "r", "--quiet"]) == 0
    before = _summary(runs / "r")
    capsys.readouterr()
    assert main(["score", str(runs / "r"), "--mmad-compat"]) == 0
    printed = capsys.readouterr().out
    after = _summary(runs / "r")
    assert after["scoring"] == before["scoring"] == "strict" and json.loads((runs / "r/spec.json").read_text())["scoring"] == "strict"
    assert after["strict"] == before["strict"] and (runs / "r/mmad_accuracy.csv").is_file()
    assert "accuracy % (strict: unanswered = wrong)" in printed and "official MMAD scorer" in printed  # both tables, the headline first
    report = json.loads(_report(tmp_path, "json", runs / "r").read_text())
    assert report["runs"][0]["headline"].startswith("strict")
    assert main(["score", str(runs / "r"), "--headline", "mmad-compat"]) == 0  # the explicit way, recorded
    spec = json.loads((runs / "r/spec.json").read_text())
    assert spec["scoring"] == "mmad-compat" and any("headline changed from strict to mmad-compat" in note for note in spec["notes"])
    report = json.loads(_report(tmp_path, "json", runs / "r").read_text())
    assert report["runs"][0]["headline"] == "official MMAD scorer"
    assert report["runs"][0]["headline_average"] == pytest.approx(_summary(runs / "r")["mmad_compat"]["values"]["Average"]["Average"])


def test_a_run_without_answers_prints_no_metrics(tmp_path, synthetic_set, capsys):
    runs = tmp_path / "runs"
    assert main(["eval", "--task", "gpt4vad", "--model", "random", "--regions", "grid:16", "--limit", "3", "--runs-dir", str(runs), "--run-id", "g", "--quiet"]) == 4
    printed = capsys.readouterr().out
    assert "I-AUROC" not in printed and "AUPRO" not in printed
    assert "every one of the 3 images asked failed" in printed and "no metrics" in printed
    text = _report(tmp_path, "md", runs / "g").read_text()
    assert "No image was answered: no metrics." in text and "I-AUROC" not in text


def test_the_results_header_names_degradations_and_strategies(tmp_path, synthetic_set, capsys):
    assert main(["eval", "--model", "random", "--limit", "10", "--perturb", "jpeg:3", "--strategy", "circular", "--runs-dir", str(tmp_path), "--quiet"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("random on synthetic-quick [degraded jpeg:3; strategies circular]: accuracy %")


@pytest.mark.slow  # the 11-arm sweep fixture (13 s once) and reports over it
def test_cell_text_contrasts_with_its_colour_and_one_run_is_one_run(sweep, tmp_path, capsys):
    from matplotlib import colormaps

    from harness.report.charts import text_colour

    cmap = colormaps["RdYlGn"]
    assert text_colour(cmap(0.0)[:3]) == "white" and text_colour(cmap(1.0)[:3]) == "white"  # dark red, dark green
    assert text_colour(cmap(0.5)[:3]) == "black"  # pale yellow
    capsys.readouterr()
    _report(tmp_path, "html", sweep / "baseline")
    assert capsys.readouterr().out.rstrip().endswith(", 1 run)")
