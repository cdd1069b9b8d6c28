"""The ablation: arms as resumable runs sharing the cache, deltas with paired bootstrap intervals."""

import json
from pathlib import Path
import logging

import pytest

from harness.results.ablation import paired_deltas, parse_arms
from harness.cli import main
from harness.errors import ConfigError
from harness.report.runs import load_run
from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)


def test_parse_arms():
    arms = parse_arms("rag,rag+agent=expert:contour")
    assert [a.name for a in arms] == ["baseline", "rag", "rag+agent=expert:contour"]  # the baseline comes first
    assert arms[2].strategies == ["rag", "agent=expert:contour"] and arms[2].slug == "rag-agent-expert-contour"
    for bad in ("", "rag,rag"):
        with pytest.raises(ConfigError):
            parse_arms(bad)


def test_ablation_against_an_api_model(tmp_path, synthetic_set, capsys):
    out = tmp_path / "ablation"
    with RunningServer(FakeOpenAI(ServerConfig())) as server:
        command = ["ablate", "--model", "openai/fake-vlm", "--base-url", server.base_url, "--strategies", "baseline,rag,agent=oracle:bbox", "--limit", "70", "--out", str(out), "--quiet"]
        assert main(command) == 0
        sent = server.app.state.requests
        assert sent == 3 * 70
        assert main(command) == 0  # again: every arm resumes, every answer comes from the cache
        assert server.app.state.requests == sent
    table = json.loads((out / "ablation.json").read_text())
    assert [row["arm"] for row in table["rows"]] == ["baseline", "rag", "agent=oracle:bbox"]
    base = table["rows"][0]
    assert all(delta == [0.0, 0.0, 0.0] for delta in base["delta"].values() if delta)
    changed = 0
    for row in table["rows"][1:]:
        for column, delta in row["delta"].items():
            if delta is None:
                continue
            value, low, high = delta
            assert value == pytest.approx(row["accuracy"][column] - base["accuracy"][column], abs=1e-9)
            assert low <= value <= high
            changed += value != 0
        assert row["tokens"] > 0
    assert changed, "the strategies change the prompts, so some answers must change"
    text = (out / "ablation.md").read_text()
    assert "paired bootstrap" in text and "intervals of the difference from baseline" in text and "McNemar" in text
    assert "Circular arms" not in text  # no arm here is circular: no footnote about them
    assert max(len(line) for line in text.splitlines() if line.startswith("|")) <= 160  # two narrow tables, not one 250 wide
    assert "| rag |" in capsys.readouterr().out


def test_paired_deltas_need_the_same_questions(tmp_path, synthetic_set):
    for run_id, limit in (("a", "20"), ("b", "30")):
        assert main(["eval", "--model", "random", "--limit", limit, "--runs-dir", str(tmp_path), "--run-id", run_id, "--quiet"]) == 0
    with pytest.raises(ConfigError, match="same questions"):
        paired_deltas(load_run(tmp_path / "a"), load_run(tmp_path / "b"))


def _run_data(correct_first, correct_second):
    """Two runs' outcomes over the same 40 Defect Classification questions, as a report loads them."""
    import numpy as np

    from harness.report.rundata import RunData
    from harness.schema import RunSummary

    runs = []
    for name, correct in (("base", correct_first), ("arm", correct_second)):
        n = len(correct)
        runs.append(RunData(path=Path(name), spec=None, summary=RunSummary.model_construct(), ids=np.array([f"q{i}" for i in range(n)], dtype=object),
                            dataset=np.array(["D"] * n, dtype=object), category=np.array(["c"] * n, dtype=object), subtask=np.full(n, 1, dtype=np.int8),
                            anomalous=np.ones(n, dtype=bool), correct=np.array(correct, dtype=bool), status=np.array(["ok"] * n, dtype=object), label=name))
    return runs


def test_one_pair_gets_one_verdict_whatever_the_interval_says():
    """The case the issue found: a bootstrap interval that leaves out zero while McNemar with Holm
    says no difference. The star follows the report's test, so the two outputs agree."""
    from harness.report.stats import paired_comparison
    from harness.results.ablation import paired_deltas

    # the arm loses 6 questions and wins none: the 95% bootstrap interval leaves out zero,
    # but McNemar's exact p (0.031) doubled by Holm over the two rows is 0.062: not significant
    base, arm = _run_data([True] * 30 + [False] * 10, [True] * 24 + [False] * 16)
    value, low, high = paired_deltas(base, arm)["Defect Classification"]
    assert high < 0  # the interval alone would have starred it
    verdicts = {t["column"]: t for t in paired_comparison(base, arm)["tests"]}
    assert verdicts["Defect Classification"]["p_holm"] > 0.05 and not verdicts["Defect Classification"]["significant"]
    assert verdicts["Defect Classification"]["verdict"] == "no significant difference"


def test_ablation_stars_are_the_reports_verdicts(tmp_path, synthetic_set, capsys):
    """ablation.md's * and `iadbench report`'s paired table, on the same arms: the same test, the
    same correction, named on both, and the same verdict on every column."""
    from harness.report.runs import label_runs

    out = tmp_path / "ablation"
    assert main(["ablate", "--model", "random", "--strategies", "baseline,rag", "--limit", "40", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    table = json.loads((out / "ablation.json").read_text())
    text = (out / "ablation.md").read_text()
    assert "McNemar's exact test" in text and "Holm" in text
    runs = label_runs([load_run(out / row["run"].split("/")[-1]) for row in table["rows"]])
    from harness.report.stats import paired_comparison

    for row, run in zip(table["rows"][1:], runs[1:]):
        tests = {("Average" if t["column"] == "All questions" else t["column"]): t for t in paired_comparison(runs[0], run)["tests"]}
        assert {c: row["significant"][c] for c in tests} == {c: t["significant"] for c, t in tests.items()}
    assert main(["report", *[str(out / r["run"].split("/")[-1]) for r in table["rows"]], "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    assert "McNemar's exact test on the questions both runs answered, p-values Holm-adjusted" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("arms, message", [("baseline,rag,bogus", "arm 'bogus'"), ("baseline,cot", "arm 'cot'")])
def test_ablate_checks_every_arm_before_the_first_runs(tmp_path, synthetic_set, capsys, arms, message):
    out = tmp_path / "ablation"
    assert main(["ablate", "--model", "random", "--strategies", arms, "--limit", "20", "--out", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # not even the baseline ran
