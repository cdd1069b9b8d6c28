"""The OpenAI-compatible backend over real HTTP, against the fault-injecting test server."""

import json
import logging
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.models.openai import letter_logprobs, redact_url
from harness.models.resilience import AdaptiveLimiter, parse_duration, retry_after_seconds
from harness.testing.fake_openai import FAULT_KINDS
from tests.conftest import question_count

logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
LIMIT = "120"




@pytest.fixture
def own_cache(tmp_path, monkeypatch, synthetic_set):
    """A private response cache (the synthetic set is still found through a link)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / synthetic_set.name).symlink_to(synthetic_set)
    monkeypatch.setenv("IADBENCH_CACHE", str(cache))
    return cache


def evaluate(tmp_path, run_id, *args, expect=0):
    code = main(["eval", "--model", "openai/fake-vlm", "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, "--quiet", *args])
    assert code == expect
    return tmp_path / "runs" / run_id


def samples(folder: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == len({s["question_id"] for s in lines}), "duplicate samples"
    return {s["question_id"]: s for s in lines}


def comparable(folder: Path) -> dict[str, tuple]:
    return {k: (s["reply"], s["parsed"], s["correct"], s["parse_status"]) for k, s in samples(folder).items()}


def test_answers_come_from_the_server_over_http(tmp_path, server, own_cache):
    running = server()
    folder = evaluate(tmp_path, "plain", "--base-url", running.base_url, "--limit", LIMIT, "--no-cache")
    results = samples(folder)
    assert len(results) == 120 and all(s["parse_status"] == "ok" for s in results.values())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["usage"]["prompt_tokens"] > 120 * 85 and summary["cost_usd"] is None  # fake-vlm has no price
    assert running.app.state.completions == 120
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["model_options"]["base_url"] == running.base_url and spec["model_options"]["api_key_env"] == "OPENAI_API_KEY"


@pytest.mark.slow  # 6 s: whole runs over a server failing one call in five (the fast tier keeps this module's other fault tests)
def test_twenty_percent_faults_change_nothing(tmp_path, server, own_cache):
    clean = server()
    evaluate(tmp_path, "clean", "--base-url", clean.base_url, "--limit", LIMIT, "--no-cache")
    faulty = server(fault_rate=0.2, slow_s=1.5)
    started = time.monotonic()
    folder = evaluate(tmp_path, "faulty", "--base-url", faulty.base_url, "--limit", LIMIT, "--no-cache", "--request-timeout", "0.5")
    assert time.monotonic() - started < 60
    assert comparable(folder) == comparable(tmp_path / "runs/clean")
    faults = faulty.app.state.faults
    assert set(faults) == set(FAULT_KINDS), f"every fault kind must have been exercised: {dict(faults)}"
    assert sum(faults.values()) >= 0.2 * 120
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["retries"] == sum(faults.values()) and summary["error_counts"] == {}
    reference = json.loads((tmp_path / "runs/clean/summary.json").read_text())
    assert summary["strict"] == reference["strict"] and summary["mmad_compat"] == reference["mmad_compat"]


def test_the_cache_stops_a_second_run_from_sending_anything(tmp_path, server, own_cache):
    running = server()
    first = evaluate(tmp_path, "first", "--base-url", running.base_url, "--limit", LIMIT)
    sent = running.app.state.requests
    second = evaluate(tmp_path, "second", "--base-url", running.base_url, "--limit", LIMIT)
    assert running.app.state.requests == sent == 120
    assert comparable(second) == comparable(first)
    assert json.loads((second / "summary.json").read_text())["cached_samples"] == 120
    # The same model name behind another endpoint is another model: no cache hits there.
    other = server()
    evaluate(tmp_path, "other", "--base-url", other.base_url, "--limit", "10")
    assert other.app.state.requests == 10


def test_a_planted_key_appears_nowhere(tmp_path, server, own_cache, monkeypatch, capsys):
    key = "sk-planted-7f3c9d1e5b2a4f6e8d0c"
    monkeypatch.setenv("PLANTED_KEY", key)
    running = server(echo_key_rate=0.3)
    folder = evaluate(tmp_path, "secret", "--base-url", running.base_url, "--limit", LIMIT, "--api-key-env", "PLANTED_KEY", "--no-cache")
    assert running.app.state.authorization == {f"Bearer {key}"}  # the key was used...
    echoed = [s for s in samples(folder).values() if s["parse_status"] == "error"]
    assert echoed and all("***" in s["error"] and "BadRequestError 400" in s["error"] for s in echoed)
    main(["export", str(folder)])
    main(["score", str(folder), "--mmad-compat"])
    for path in folder.rglob("*"):  # ...and is in no file of the run folder
        assert key not in path.read_text(errors="replace"), path
    captured = capsys.readouterr()
    assert key not in captured.out + captured.err


def test_logprob_scoring_and_detection_anomaly_score(tmp_path, server, own_cache):
    running = server()
    folder = evaluate(tmp_path, "lp", "--base-url", running.base_url, "--limit", LIMIT, "--choice-scoring", "logprobs", "--no-cache")
    results = list(samples(folder).values())
    assert all(s["parse_status"] == "ok" and s["option_logprobs"] for s in results)
    for sample in results:
        best = max(sample["option_logprobs"], key=sample["option_logprobs"].get)
        assert sample["parsed"] == best
    detection = [s for s in results if s["subtask"] == "Anomaly Detection"]
    assert detection
    for sample in detection:
        yes = next(k for k, v in sample["options"].items() if v == "Yes.")
        expected = 0.7 / (0.7 + 0.3 / 2) if sample["parsed"] == yes else (0.3 / 2) / (0.7 + 0.3 / 2)
        assert sample["anomaly_score"] == pytest.approx(expected)
    assert json.loads((folder / "spec.json").read_text())["choice_scoring"] == "logprobs"


def test_server_without_logprobs_falls_back_to_text_and_says_so(tmp_path, server, own_cache, capsys):
    running = server(logprobs=False, reply_style="sentence")
    folder = evaluate(tmp_path, "nolp", "--base-url", running.base_url, "--limit", "30", "--choice-scoring", "logprobs", "--no-cache")
    results = samples(folder).values()
    assert all(s["parse_status"] == "ok" and s["option_logprobs"] is None for s in results)
    assert capsys.readouterr().err.count("returned no logprobs") == 1  # said once, not 30 times
    notes = json.loads((folder / "spec.json").read_text())["notes"]
    assert len(notes) == 1 and "returned no logprobs" in notes[0]


def test_images_arrive_as_valid_base64_of_the_requested_size(tmp_path, server, own_cache):
    running = server()
    evaluate(tmp_path, "img", "--base-url", running.base_url, "--limit", "40", "--image-max-side", "100", "--no-cache")
    sizes = running.app.state.image_sizes
    assert len(sizes) == 40 and all(request == [[100, 100], [100, 100]] or request == [(100, 100), (100, 100)] for request in sizes)
    running.app.state.image_sizes.clear()
    evaluate(tmp_path, "img0", "--base-url", running.base_url, "--limit", "5", "--shots", "0", "--image-max-side", "4000", "--no-cache")
    assert all(len(r) == 1 and tuple(r[0]) == (256, 256) for r in running.app.state.image_sizes)  # never upscaled


def test_concurrency_adapts_to_a_server_limit(tmp_path, server, own_cache):
    running = server(max_concurrent=4, latency_s=0.02, retry_after_ms=20)
    folder = evaluate(tmp_path, "limited", "--base-url", running.base_url, "--limit", "300", "--max-connections", "32", "--no-cache")
    assert all(s["parse_status"] == "ok" for s in samples(folder).values())
    state = running.app.state
    refused = state.faults["over_capacity"] / state.requests
    # A client that kept 32 requests in flight against a limit of 4 would see ~87% refused. AIMD
    # pays a one-time convergence (32 → 4, about 60 refusals) and then probes now and then.
    assert 0 < refused < 0.35, f"{state.faults['over_capacity']} of {state.requests} attempts refused"
    assert state.max_in_flight <= 8


def test_failed_samples_are_kept_then_retried_with_retry_errors(tmp_path, server, own_cache):
    clean = server()
    evaluate(tmp_path, "clean", "--base-url", clean.base_url, "--limit", LIMIT, "--no-cache")
    flaky = server(fault_rate=0.3, fault_kinds=("server_error", "rate_limit"))
    folder = evaluate(tmp_path, "flaky", "--base-url", flaky.base_url, "--limit", LIMIT, "--no-cache", "--max-attempts", "1")
    failed = [s for s in samples(folder).values() if s["parse_status"] == "error"]
    assert failed and all("gave up after 1 attempts" in s["error"] for s in failed)
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["error_counts"]) <= {"InternalServerError", "RateLimitError"} and sum(summary["error_counts"].values()) == len(failed)
    assert main(["eval", "--resume", str(folder), "--retry-errors", "--max-attempts", "4", "--quiet", "--base-url", flaky.base_url]) == 0
    assert json.loads((folder / "spec.json").read_text())["model_options"]["max_attempts"] == 4
    assert comparable(folder) == comparable(tmp_path / "runs/clean")


def test_max_cost_stops_cleanly_and_resumes(tmp_path, server, own_cache):
    running = server()
    code = main(["eval", "--model", "openai/gpt-4o-mini", "--base-url", running.base_url, "--runs-dir", str(tmp_path / "runs"),
                 "--run-id", "budget", "--quiet", "--limit", LIMIT, "--no-cache", "--max-cost", "0.0005", "--max-connections", "4"])
    assert code == 3
    folder = tmp_path / "runs/budget"
    partial = samples(folder)
    assert 0 < len(partial) < 120
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["stopped_reason"].startswith("cost limit reached") and summary["cost_usd"] >= 0.0005
    assert main(["eval", "--resume", str(folder), "--max-cost", "1", "--quiet", "--base-url", running.base_url]) == 0
    assert len(samples(folder)) == 120


def test_a_wrong_key_stops_the_run_with_a_resume_hint(tmp_path, server, own_cache, capsys):
    running = server(reject_auth=True)
    folder = evaluate(tmp_path, "auth", "--base-url", running.base_url, "--limit", "20", "--no-cache", expect=4)
    err = capsys.readouterr().err
    assert "AuthenticationError 401" in err and f"--resume {folder}" in err
    assert samples(folder) == {}  # nothing recorded as a (wrong) answer
    assert running.app.state.requests <= 32  # stopped, not 20 retried failures each


def test_dry_run_calls_nothing(tmp_path, own_cache, capsys, synthetic_set):
    code = main(["eval", "--model", "openai/gpt-4o", "--base-url", "http://127.0.0.1:9/v1", "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert code == 0 and not (tmp_path / "runs").exists()
    out = capsys.readouterr().out
    total = question_count(synthetic_set / "mmad.json")
    assert f"requests: {total}" in out and "distinct images (queries and templates):" in out
    prompt_tokens = int(out.split("estimated tokens: ")[1].split(" prompt")[0].replace(",", ""))
    assert prompt_tokens > total * 2 * 85  # two low-detail images per question
    assert "estimated cost: $" in out


def test_damaged_cache_file_is_a_clear_error(tmp_path, server, own_cache, capsys):
    (own_cache / "responses.sqlite").write_bytes(b"this is not a database" * 100)
    running = server()
    evaluate(tmp_path, "damaged", "--base-url", running.base_url, "--limit", "5", expect=2)
    assert "response cache is damaged" in capsys.readouterr().err


def test_missing_key_for_openai_itself_is_a_clear_error(tmp_path, own_cache, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["eval", "--model", "openai/gpt-4o", "--limit", "1", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "the environment variable OPENAI_API_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    # a dry run sends nothing, so it needs no key
    assert main(["eval", "--model", "openai/gpt-4o", "--dry-run", "--limit", "5"]) == 0
    assert "estimated cost: $" in capsys.readouterr().out


def test_helpers():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({}) is None
    assert parse_duration("6m0s") == 360.0 and parse_duration("250ms") == 0.25
    assert redact_url("https://user:pw@host.example:8443/v1?key=abc") == "https://host.example:8443/v1"
    lp = letter_logprobs([("A", -0.5), (" A", -1.5), ("(B", -2.0), ("The", -0.1)], ["A", "B", "C"])
    assert set(lp) == {"A", "B"} and lp["A"] == pytest.approx(-0.5 + __import__("math").log(1 + __import__("math").exp(-1.0)))


def test_adaptive_limiter_cuts_once_per_window_and_recovers():
    import asyncio

    async def scenario():
        limiter = AdaptiveLimiter(32)
        window = [await limiter.acquire() for _ in range(20)]
        for sent_at in window:  # a burst of 429s from one window is one congestion signal
            limiter.on_rate_limited(None, sent_at)
        assert limiter.limit == pytest.approx(32 * 0.7)
        for _ in window:
            await limiter.release()
        later = await limiter.acquire()  # sent after the cut and still refused: cut again
        limiter.on_rate_limited(None, later)
        assert limiter.limit == pytest.approx(32 * 0.7 * 0.7)
        await limiter.release()
        for _ in range(100):  # additive increase: +1/limit a success, about +1 a full window
            limiter.on_success()
        assert 21 < limiter.limit < 24
        for _ in range(500):
            limiter.on_success()
        assert limiter.limit == 32  # never above the ceiling
        assert limiter.in_flight == 0

    asyncio.run(scenario())
