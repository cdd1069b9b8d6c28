"""What a newcomer would publish wrongly from a report: a subset run ranked among full runs, a
gallery of a run with nothing wrong, a red outline on a red part, a Markdown table of one run
given twice, a CSV with only the official scorer's figures, a --limit that is two categories."""

import collections
import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from harness.cli import main


def _eval(tmp_path, *args) -> None:
    assert main(["eval", "--runs-dir", str(tmp_path / "runs"), "--quiet", *args]) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_set):
    root = tmp_path_factory.mktemp("newcomer")
    _eval(root, "--model", "random", "--run-id", "full")
    _eval(root, "--model", "oracle", "--limit", "100", "--run-id", "subset")
    _eval(root, "--model", "oracle", "--run-id", "oracle")
    return root / "runs"


def test_limit_draws_every_category_and_subtask_and_says_so(runs):
    spec = json.loads((runs / "subset" / "spec.json").read_text())
    whole = json.loads((runs / "full" / "summary.json").read_text())["n_questions"]
    assert spec["limit"] == 100 and spec["limit_of"] == whole and spec["limit_sampling"] == "stratified-v2"
    samples = [json.loads(line) for line in (runs / "subset" / "samples.jsonl").read_text().splitlines()]
    categories = collections.Counter(s["category"] for s in samples)
    subtasks = collections.Counter(s["subtask"] for s in samples)
    assert len(categories) == 7 and len(subtasks) == 7  # the first 100 were two categories
    assert max(categories.values()) - min(categories.values()) <= 8  # in proportion to the categories' sizes
    assert [s["ordinal"] for s in samples] == sorted(s["ordinal"] for s in samples)


def test_stratified_subset_is_the_same_in_every_order_and_proportional():
    from harness.data.subset import take_limit

    items = [(f"id{i}", "big" if i < 90 else "small") for i in range(100)]
    chosen = take_limit(items, 20, sampling="stratified", seed=3, stratum=lambda item: item[1], key=lambda item: item[0])
    assert collections.Counter(item[1] for item in chosen) == {"big": 18, "small": 2}
    again = take_limit(list(reversed(items)), 20, sampling="stratified", seed=3, stratum=lambda item: item[1], key=lambda item: item[0])
    assert sorted(chosen) == sorted(again)  # drawn by id, not by position
    assert take_limit(items, 20, sampling="first", seed=3, stratum=lambda item: item[1], key=lambda item: item[0]) == items[:20]


def test_a_small_limit_reaches_every_subtask_in_proportion():
    """`--limit 20` of the synthetic set's 501 questions once asked only Detection and Object
    questions: 49 strata (category × subtask) of 5 to 15 questions, and the old draw stood every
    stratum's first member at 0.5 / size, so the 20 largest strata took all 20. The v2 draw starts
    each stratum at its own seeded offset; the old one stays for the run folders that recorded it."""
    from harness.data.subset import take_limit

    sizes = {("Anomaly Detection", c): 15 for c in range(7)} | {("Object Analysis", c): 15 for c in range(7)} | {("Object Classification", c): 15 for c in range(7)}
    sizes |= {(subtask, c): 6 + c % 4 for subtask in ("Defect Classification", "Defect Localization", "Defect Description", "Defect Analysis") for c in range(7)}
    items = [(f"{subtask}/{c}/{i}", subtask, c) for (subtask, c), n in sizes.items() for i in range(n)]
    draw = lambda sampling, seed: take_limit(items, 20, sampling=sampling, seed=seed, stratum=lambda item: item[1:], key=lambda item: item[0])  # noqa: E731
    assert not any(item[1].startswith("Defect") for item in draw("stratified", 0))  # the old draw, kept for old folders
    defect_share = sum(n for (subtask, _), n in sizes.items() if subtask.startswith("Defect")) / len(items)
    counts = [sum(item[1].startswith("Defect") for item in draw("stratified-v2", seed)) for seed in range(200)]
    assert all(len(draw("stratified-v2", seed)) == 20 for seed in range(5))
    assert abs(sum(counts) / len(counts) - 20 * defect_share) < 0.6, (sum(counts) / len(counts), 20 * defect_share)
    assert draw("stratified-v2", 4) == draw("stratified-v2", 4)


def test_a_subset_run_is_shown_but_not_ranked(runs, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(runs / "subset"), str(runs / "full"), str(runs / "oracle"), "--gallery-size", "2", "--out", str(out)]) == 0
    board = out.read_text().split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    ranked, unranked = board.split('class="unranked"', 1)
    assert "oracle" in ranked and "not comparable" not in ranked and "subset" not in ranked
    whole = json.loads((runs / "full" / "summary.json").read_text())["n_questions"]
    assert "not comparable" in unranked and f"100 of {whole}, stratified (seed 0)" in unranked
    assert f"all {whole}" in ranked
    md = tmp_path / "r.md"
    assert main(["report", str(runs / "subset"), str(runs / "full"), "--out", str(md)]) == 0
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ") and "stratified (seed 0)" in line]
    assert rows and rows[0].split("|")[1].strip().endswith("§")


def test_one_run_given_twice_is_reported_once_in_a_well_formed_table(runs, tmp_path, capsys):
    md = tmp_path / "twice.md"
    assert main(["report", str(runs / "full"), str(runs / "full"), str(runs / "oracle"), "--out", str(md)]) == 0
    assert "given more than once" in capsys.readouterr().err
    lines = md.read_text().split("## What differs", 1)[1].strip().splitlines()
    table = [line for line in lines if line.startswith("|")][:4]
    widths = {line.count("|") for line in table}
    assert len(widths) == 1 and len(table) == 4  # header, rule, two runs: every row as wide as the header


def test_the_gallery_shows_a_run_that_got_something_wrong(runs, tmp_path):
    out = tmp_path / "g.html"
    assert main(["report", str(runs / "oracle"), str(runs / "full"), "--gallery-size", "4", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Failure gallery: random" in text and "oracle got nothing wrong to show" in text
    assert main(["report", str(runs / "oracle"), "--format", "json", "--out", str(out)]) == 0
    assert "No failure gallery: no run got anything wrong" in out.read_text()
    assert main(["report", str(runs / "oracle"), str(runs / "full"), "--gallery-run", "0", "--format", "json", "--out", str(out)]) == 0
    assert "No failure gallery: oracle got nothing wrong" in out.read_text()


def test_declined_answers_can_be_left_out_of_the_gallery(tmp_path, synthetic_set):
    _eval(tmp_path, "--model", "expert/patchknn", "--limit", "60", "--run-id", "expert")
    out = tmp_path / "e.html"
    assert main(["report", str(tmp_path / "runs" / "expert"), "--out", str(out)]) == 0
    assert 'data-status="declined"' in out.read_text() and 'id="filter-status"' in out.read_text()
    assert main(["report", str(tmp_path / "runs" / "expert"), "--gallery-hide-declined", "--out", str(out)]) == 0
    text = out.read_text()
    assert 'data-status="declined"' not in text and "declined answers left out" in text


def test_the_mask_outline_stands_out_on_a_red_part(tmp_path):
    import base64
    import io

    from harness.report.media import thumbnail

    image = np.zeros((160, 160, 3), np.uint8)
    image[:] = (190, 25, 30)  # a red capsule filling the frame
    mask = np.zeros((160, 160), np.uint8)
    mask[40:120, 40:120] = 255
    Image.fromarray(image).save(tmp_path / "red.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    url = thumbnail(tmp_path / "red.png", [tmp_path / "mask.png"])
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"), dtype=float)
    edge = pixels[40, 60:100]  # the outline's top side
    assert np.linalg.norm(edge.mean(axis=0) - np.array([190, 25, 30])) > 150  # not red on red


def test_csv_export_has_the_strict_table_and_no_dashes(runs, tmp_path):
    out = tmp_path / "csv"
    assert main(["report", str(runs / "full"), str(runs / "subset"), "--format", "csv", "--out", str(out)]) == 0
    strict = list(csv.reader((out / "full_strict.csv").open()))
    assert strict[0][0] == "dataset" and strict[-1][0] == "Average"
    summary = json.loads((runs / "full" / "summary.json").read_text())
    assert float(strict[-1][-1]) == pytest.approx(summary["strict"]["accuracy"]["Average"]["Average"], abs=0.005)
    index = (out / "runs.csv").read_text()
    assert "—" not in index and "full_strict.csv" in index


def test_box_runs_get_a_table_side_by_side(tmp_path, synthetic_set):
    _eval(tmp_path, "--task", "bbox", "--model", "oracle", "--limit", "12", "--run-id", "b1")
    _eval(tmp_path, "--task", "bbox", "--model", "random", "--limit", "12", "--run-id", "b2")
    out = tmp_path / "b.md"
    assert main(["report", str(tmp_path / "runs" / "b1"), str(tmp_path / "runs" / "b2"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Defect boxes: all runs" in text
    assert "not an official protocol" not in text and "protocol harmonised" not in text  # MMAD's boilerplate is MMAD's


def test_one_models_sweep_reads_in_its_order_and_its_radar_hides_no_run(tmp_path, synthetic_set):
    import re

    from harness.report import charts

    _eval(tmp_path, "--model", "random", "--limit", "21", "--run-id", "clean")
    for severity in (3, 1, 2):
        _eval(tmp_path, "--model", "random", "--limit", "21", "--perturb", f"jpeg:{severity}", "--run-id", f"jpeg{severity}")
    out = tmp_path / "s.md"
    names = ["clean", "jpeg1", "jpeg2", "jpeg3"]
    assert main(["report", *[str(tmp_path / "runs" / n) for n in names], "--out", str(out)]) == 0
    board = out.read_text().split("## Leaderboard", 1)[1].split("##", 1)[0]
    order = [m for m in re.findall(r"jpeg:\d|· clean|no degradation", board)]
    assert order[1:] == ["jpeg:1", "jpeg:2", "jpeg:3"]  # as given, not by average
    series = {f"arm {i}": [50.0] * 7 for i in range(11)}  # eleven arms with the same figures
    svg = charts.radar(series)
    assert svg.count("<g id=\"axes_") >= 11  # one small chart per arm: none drawn under another
    colours = charts._colours(11)
    assert colours[0] != colours[1] and np.abs(np.subtract(colours[0][:3], colours[1][:3])).sum() > 0.5


@pytest.mark.slow  # 2 s: a Chromium start
def test_a_full_a_subset_and_a_sweep_read_right_in_chromium(runs, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed for this test: apt-get install -y chromium (bash tests/run.sh does, as root)"
    out = tmp_path / "r.html"
    assert main(["report", str(runs / "full"), str(runs / "subset"), str(runs / "oracle"), "--out", str(out)]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", f"--user-data-dir={tmp_path / 'p'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120).stdout
    board = dom.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    bodies = board.split("<tbody")
    assert len(bodies) == 3 and "not comparable" in bodies[2] and "not comparable" not in bodies[1]
    assert bodies[1].index("oracle") < bodies[1].index("random")
