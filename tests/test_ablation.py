"""The ablation: arms as resumable runs sharing the cache, deltas with paired bootstrap intervals."""

import json
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
    assert "paired bootstrap" in text and "95% intervals of the difference from baseline" in text
    assert "Circular arms" not in text  # no arm here is circular: no footnote about them
    assert max(len(line) for line in text.splitlines() if line.startswith("|")) <= 160  # two narrow tables, not one 250 wide
    assert "| rag |" in capsys.readouterr().out


def test_paired_deltas_need_the_same_questions(tmp_path, synthetic_set):
    for run_id, limit in (("a", "20"), ("b", "30")):
        assert main(["eval", "--model", "random", "--limit", limit, "--runs-dir", str(tmp_path), "--run-id", run_id, "--quiet"]) == 0
    with pytest.raises(ConfigError, match="same questions"):
        paired_deltas(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
