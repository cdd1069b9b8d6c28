"""Reports: content, statistics, exports, escaping of model output, and a real browser render."""

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.models.base import GenerateResponse
from harness.models.registry import Provider, register_provider
from harness.report.stats import holm, mcnemar

XSS = 'I think <script>document.body.setAttribute("data-pwned", "1")</script><img src=x onerror="document.title=\'pwned\'"> B'


class Hostile:
    """Replies that try to run code in the report, and the right letter at the end."""

    default_concurrency = 8
    cacheable = False

    def __init__(self, name, seed):
        self.name = self.cache_identity = name

    async def generate(self, request):
        return GenerateResponse(text=XSS.replace(" B", f" {request.reference_answer if request.sample_id.endswith('#1') else 'Z'}"))

    async def aclose(self):
        return None


register_provider(Provider("hostile", "tests.test_report:_create_hostile", "test-only"))


def _create_hostile(name, *, seed, options=None):
    return Hostile(name, seed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_set):
    root = tmp_path_factory.mktemp("report-runs")
    for args in (["--model", "random", "--run-id", "random"], ["--model", "oracle", "--run-id", "oracle"], ["--model", "hostile/x", "--run-id", "hostile"]):
        assert main(["eval", "--runs-dir", str(root), "--quiet", *args]) == 0
    assert main(["eval", "--task", "gpt4vad", "--model", "oracle", "--regions", "grid:16", "--limit", "12", "--runs-dir", str(root), "--run-id", "gv", "--quiet"]) == 0
    return root


def _report(runs, tmp_path, *names, fmt="html", extra=()):
    out = tmp_path / f"report.{fmt}"
    assert main(["report", *[str(runs / n) for n in names], "--out", str(out), *extra]) == 0
    return out


def test_html_holds_leaderboard_intervals_tests_charts_and_gallery(runs, tmp_path):
    text = _report(runs, tmp_path, "random", "oracle", "gv").read_text()
    board = text.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    assert "oracle · multiple choice" in board and "random · multiple choice" in board
    assert board.index("oracle · multiple choice") < board.index("random · multiple choice")  # sorted by average
    assert 'class="ci"' in text and "chance (uniform guessing)" in board and ">50.0<" in board.split("chance (uniform guessing)")[1][:400]
    assert "McNemar" in text and "oracle · multiple choice better" in text
    assert text.count("<svg") >= 7  # radar, bars, overkill/miss, a heatmap per MCQ run, ROC, PRO
    assert "GPT-4V-AD: oracle · GPT-4V-AD" in text and "Failure gallery: random · multiple choice" in text
    assert "data:image/jpeg;base64," in text
    for external in ('src="http', "src='http", 'href="http', "<link ", "@import", "url(http"):  # opens offline
        assert external not in text, external
    assert "(published)" not in text  # synthetic data: MMAD's rows would mislead


def test_published_rows_appear_only_for_runs_on_the_official_release(tmp_path, mmad_tree):
    assert main(["eval", "--model", "oracle", "--data", f"mmad:{mmad_tree / 'mmad.json'}", "--runs-dir", str(tmp_path / "runs"), "--run-id", "m", "--quiet"]) == 0
    text = _report(tmp_path / "runs", tmp_path, "m").read_text()
    assert "(published)" not in text  # an mmad.json that is not MMAD's release: its rows would mislead
    spec_path = tmp_path / "runs/m/spec.json"
    spec = json.loads(spec_path.read_text())
    spec["data_release"] = "MMAD (official, jiang-cc/MMAD @ c4ed190)"  # as a run on the real release records it
    spec_path.write_text(json.dumps(spec))
    text = _report(tmp_path / "runs", tmp_path, "m").read_text()
    assert "(published)" not in text  # the official release's name, but 5 of its 39,670 questions: a subset
    summary_path = tmp_path / "runs/m/summary.json"
    summary = json.loads(summary_path.read_text())
    summary["n_questions"] = 39670  # as a run over the whole release records it
    summary_path.write_text(json.dumps(summary))
    text = _report(tmp_path / "runs", tmp_path, "m").read_text()
    assert "Qwen2-VL-72B-Instruct (1-shot) (published)" in text and "Human expert (paper)" in text
    assert "78.6" in text  # Qwen2-VL-72B's published average


def test_two_folders_with_one_run_id_stay_apart(tmp_path, synthetic_set):
    import shutil

    for name, model in (("a", "random"), ("b", "oracle")):
        assert main(["eval", "--model", model, "--limit", "20", "--runs-dir", str(tmp_path / name), "--run-id", "same", "--quiet"]) == 0
    report = json.loads(_json_report(tmp_path, tmp_path / "a/same", tmp_path / "b/same"))
    rows = {row["label"]: row for row in report["leaderboard"]["rows"]}
    assert rows["oracle"]["cells"][-1]["value"] == 100.0 and rows["oracle"]["cells"][-1]["low"] == 100.0  # its own interval
    assert rows["random"]["cells"][-1]["low"] < 100.0
    assert main(["report", str(tmp_path / "a/same"), str(tmp_path / "b/same"), "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    assert len(list((tmp_path / "csv").glob("*_accuracy.csv"))) == 2 and (tmp_path / "csv/runs.csv").is_file()
    shutil.rmtree(tmp_path / "csv")


def _json_report(tmp_path, *runs) -> str:
    out = tmp_path / "report.json"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    return out.read_text()


def test_model_output_is_escaped(runs, tmp_path):
    text = _report(runs, tmp_path, "hostile").read_text()
    assert "&lt;script&gt;document.body" in text and "<script>document.body" not in text
    assert "&lt;img src=x onerror" in text and "<img src=x onerror" not in text


def test_markdown_csv_json_exports(runs, tmp_path):
    markdown = _report(runs, tmp_path, "random", "oracle", fmt="md").read_text()
    assert "| oracle | synthetic | " in markdown and "| 100.0" in markdown and "McNemar" in markdown
    out = tmp_path / "csv"
    assert main(["report", str(runs / "random"), str(runs / "oracle"), "--format", "csv", "--out", str(out)]) == 0
    table = list(csv.reader(io.StringIO((out / "oracle_accuracy.csv").read_text())))
    published = (Path(__file__).resolve().parents[1] / "harness/published/answers_1_shot_gpt-4o_accuracy.csv").read_text().splitlines()[0]
    assert ",".join(table[0]) == published  # exactly the official header
    assert [row[0] for row in table[1:]] == ["Synthetic", "Average"] and float(table[-1][8]) == 100.0
    data = json.loads(_report(runs, tmp_path, "random", "oracle", fmt="json").read_text())
    assert {"leaderboard", "pairs", "runs", "charts", "gallery"} <= data.keys()


def test_statistics_helpers():
    first, second = np.array([1, 1, 1, 0, 0, 1], bool), np.array([0, 0, 1, 0, 1, 1], bool)
    assert mcnemar(first, second)[:2] == (2, 1)
    assert mcnemar(first, first)[2] == 1.0
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_bootstrap_interval_covers_the_estimate(runs):
    from harness.report.runs import load_run
    from harness.report.stats import bootstrap_intervals

    run = load_run(runs / "random")
    intervals = bootstrap_intervals(run)
    for column, (low, high) in intervals["Average"].items():
        value = run.summary.strict["accuracy"]["Average"][column]
        assert low <= value <= high and high - low < 40


@pytest.mark.slow  # 3 s: two Chromium starts
def test_report_renders_in_a_real_browser(runs, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed for this test: apt-get install -y chromium (bash tests/run.sh does, as root)"
    report = _report(runs, tmp_path, "random", "oracle", "hostile", "gv")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]
    screenshot = tmp_path / "shot.png"
    shot = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile1'}", "--window-size=1280,1600", f"--screenshot={screenshot}", report.as_uri()], capture_output=True, text=True, timeout=120)
    dom = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Error" in line], console
    first_row = dom.stdout.split('id="leaderboard"', 1)[1].split('<tbody>', 1)[1].split("</tr>", 1)[0]
    assert "oracle · multiple choice" in first_row
    assert 'data-pwned="1"' not in dom.stdout and "<title>iadbench report</title>" in dom.stdout  # the hostile reply ran nothing


def test_small_gallery_spreads_over_subtasks_and_categories():
    from harness.report.galleries import stratified as _stratified

    wrong = [{"subtask": s, "category": c, "n": i} for i, (s, c) in enumerate((s, c) for s in "ABC" for c in "xyz" for _ in range(3))]
    picked = _stratified(wrong, 6)
    assert sorted({p["subtask"] for p in picked}) == ["A", "B", "C"]
    assert len({(p["subtask"], p["category"]) for p in picked}) == 6


def test_an_ablation_folder_reports_as_its_arms(tmp_path, synthetic_set):
    assert main(["ablate", "--model", "random", "--strategies", "baseline,circular", "--limit", "20", "--out", str(tmp_path / "abl"), "--quiet"]) == 0
    assert main(["report", str(tmp_path / "abl"), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "| random · no strategy |" in text and "| random · circular |" in text  # the strategy names the row
