"""Hostile replies, the second wave: what a server or a model sends back can never stop a run, leak a
credential, pick a wrong answer, hold a question past its deadline or fill the memory. Servers are
real local HTTP servers (tests/hostile_server.py) talked to by the real openai client."""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from harness.asking.model_json import read_model_json
from harness.cli import main
from harness.models.resilience import AdaptiveLimiter, PastDeadline
from harness.tasks.bbox.parsing import parse_box_reply
from harness.tasks.bbox.task import box_formats
from harness.tasks.gpt4vad.region_parsing import parse_region_reply
from harness.tasks.robustmad.judge import parse_verdict
from harness.testing.fake_hub import HubRepo, serve
from harness.testing.fake_openai import RunningServer
from tests.conftest import build_mmad_tree
from tests.hostile_server import Reply, ScriptedServer, completion

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out and "a bug in iadbench" not in err
    return code, out, err


def evaluate(capsys, server, runs: Path, run_id: str, *extra: str, model: str = "openai/hostile") -> tuple[int, str, str]:
    """A run against `server`; runs that use the shared response cache name a model of their own."""
    return run_cli(capsys, "eval", "--model", model, "--base-url", server.base_url, "--runs-dir", str(runs), "--run-id", run_id, "--quiet", *extra)


def samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def strict_json(path: Path):
    """The file read as strict JSON: NaN, Infinity and -Infinity refused, as browsers and jq do."""
    def refuse(constant: str):
        raise AssertionError(f"{path} holds {constant}")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


# -- a credential echoed in a reply ----------------------------------------------------------------


def test_a_key_echoed_in_a_reply_is_kept_nowhere(tmp_path, synthetic_set, monkeypatch, capsys):
    key, token = "sk-hostile-echo-5e1f0a9c3b7d", "hf_hostile_token_8c2d4e6f"
    monkeypatch.setenv("HOSTILE_KEY", key)
    monkeypatch.setenv("HF_TOKEN", token)  # a credential the run knows without using it
    app = ScriptedServer(lambda body: Reply(completion(f"A. (you sent $KEY; hub token {token})"), echo_key=True))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        code, out, err = evaluate(capsys, server, runs, "echo", "--limit", "6", "--api-key-env", "HOSTILE_KEY", model="openai/echo-key")
        assert code == 0
        code, _, _ = evaluate(capsys, server, runs, "again", "--limit", "6", "--api-key-env", "HOSTILE_KEY", model="openai/echo-key")  # from the cache
    assert code == 0 and len(app.bodies) == 6, "the second run answered from the cache"
    assert run_cli(capsys, "report", str(runs / "echo"), str(runs / "again"), "--out", str(tmp_path / "r.html"))[0] == 0
    first = samples(runs / "echo")
    assert all(s["reply"] == "A. (you sent ***; hub token ***)" and s["parsed"] == "A" for s in first)
    assert any("credential" in note for note in json.loads((runs / "echo/spec.json").read_text())["notes"])
    written = [p for p in [*runs.rglob("*"), tmp_path / "r.html", *Path(os.environ["IADBENCH_CACHE"]).glob("responses.sqlite*")] if p.is_file()]
    assert any(p.name == "responses.sqlite" for p in written)
    for path in written:
        data = path.read_bytes()
        assert key.encode() not in data and token.encode() not in data, f"{path} holds a credential"
    assert key not in out + err


# -- a lone surrogate -------------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_reply_costs_nothing(tmp_path, synthetic_set, capsys):
    reply = "Answer: A \ud800 and \udfff"
    assert b'"Answer: A \\ud800 and \\udfff"' in completion(reply)  # on the wire as JSON escapes, as a broken server writes them
    app = ScriptedServer(lambda body: Reply(completion(reply)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        assert evaluate(capsys, server, runs, "s", "--limit", "10", model="openai/surrogate")[0] == 0
        assert evaluate(capsys, server, runs, "cached", "--limit", "10", model="openai/surrogate")[0] == 0  # the cache gives back what it took
        assert len(app.bodies) == 10
        killed = (runs / "s/samples.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:4]
        (runs / "s/samples.jsonl").write_text("".join(killed), encoding="utf-8")  # as a killed run leaves it
        assert run_cli(capsys, "eval", "--resume", str(runs / "s"), "--quiet")[0] == 0
    for folder in (runs / "s", runs / "cached"):
        kept = samples(folder)
        assert all(s["reply"] == "Answer: A \ufffd and \ufffd" and s["parsed"] == "A" and s["parse_status"] == "ok" for s in kept)
        assert any("surrogate" in note for note in json.loads((folder / "spec.json").read_text())["notes"])
    assert len(samples(runs / "s")) == 10
    assert run_cli(capsys, "score", str(runs / "s"))[0] == 0
    assert run_cli(capsys, "report", str(runs / "s"), "--out", str(tmp_path / "r.html"), "--format", "html")[0] == 0
    strict_json(runs / "s/summary.json")


# -- token counts and prices past reason ------------------------------------------------------------


@pytest.mark.parametrize("usage", ['{"prompt_tokens": 1' + "0" * 400 + ', "completion_tokens": 1}', '{"prompt_tokens": 1e308, "completion_tokens": 1e308}'],
                         ids=["10**400", "1e308"])
def test_nonsense_token_counts_are_capped_and_the_summary_stays_json(tmp_path, synthetic_set, monkeypatch, capsys, usage):
    prices = tmp_path / "prices.toml"
    prices.write_text("[hostile]\ninput = 2.5\noutput = 10.0\n")
    monkeypatch.setenv("IADBENCH_PRICES", str(prices))
    app = ScriptedServer(lambda body: Reply(completion("A", usage=usage)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        assert evaluate(capsys, server, runs, "u", "--limit", "4", "--no-cache")[0] == 0
    summary = strict_json(runs / "u/summary.json")
    assert summary["usage"]["prompt_tokens"] == 4 * 100_000_000 and 0 < summary["cost_usd"] < 10_000
    assert all(s["usage"]["prompt_tokens"] == 100_000_000 for s in samples(runs / "u"))
    assert any("more than 100,000,000 tokens" in note for note in json.loads((runs / "u/spec.json").read_text())["notes"])
    assert run_cli(capsys, "score", str(runs / "u"))[0] == 0
    strict_json(runs / "u/summary.json")
    assert run_cli(capsys, "report", str(runs / "u"), "--out", str(tmp_path / "r.json"), "--format", "json")[0] == 0
    strict_json(tmp_path / "r.json")


@pytest.mark.parametrize("price", ["inf", "nan", "1e308"])
def test_a_price_past_reason_is_refused_before_anything_is_asked(tmp_path, synthetic_set, monkeypatch, capsys, price):
    prices = tmp_path / "prices.toml"
    prices.write_text(f"[hostile]\ninput = {price}\noutput = 1.0\n")
    monkeypatch.setenv("IADBENCH_PRICES", str(prices))
    app = ScriptedServer(lambda body: Reply(completion("A")))
    with RunningServer(app) as server:
        code, _, err = evaluate(capsys, server, tmp_path / "runs", "p", "--limit", "2", "--no-cache")
    assert code == 2 and not app.bodies
    assert f"{prices}: [hostile] needs input and output prices (USD per million tokens, finite numbers from 0 to 1,000,000)" in err


# -- log-probabilities that are no probability -----------------------------------------------------


@pytest.mark.parametrize("value", ["true", "5.0", '"-0.1"', '{"logprob": -0.1}', "[-0.1]", "1e400"])
def test_logprobs_that_are_no_probability_pick_nothing(tmp_path, synthetic_set, capsys, value):
    top = f'[{{"token": "B", "logprob": {value}}}, {{"token": "C", "logprob": {value}}}]'
    logprobs = f'{{"content": [{{"token": "B", "logprob": {value}, "top_logprobs": {top}}}]}}'
    app = ScriptedServer(lambda body: Reply(completion("A", logprobs=logprobs)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        assert evaluate(capsys, server, runs, "l", "--limit", "10", "--choice-scoring", "logprobs", "--no-cache")[0] == 0
    kept = samples(runs / "l")
    assert all(s["option_logprobs"] is None and s["parsed"] == "A" for s in kept), "the reply's own letter, not a made-up probability"
    assert any("no log-probability" in note for note in json.loads((runs / "l/spec.json").read_text())["notes"])


def test_a_top_list_that_is_no_list_is_dropped_with_a_note(tmp_path, synthetic_set, capsys):
    logprobs = '{"content": [{"token": "B", "logprob": -0.1, "top_logprobs": {"B": -0.1}}]}'
    app = ScriptedServer(lambda body: Reply(completion("A", logprobs=logprobs)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        assert evaluate(capsys, server, runs, "l", "--limit", "3", "--choice-scoring", "logprobs", "--no-cache")[0] == 0
    assert all(s["parsed"] == "A" and s["parse_status"] == "ok" for s in samples(runs / "l"))


# -- every wait respects the question's deadline ---------------------------------------------------


@pytest.mark.parametrize("headers, asked", [({"retry-after": "1e12"}, "1,000,000,000,000 s"), ({"retry-after-ms": "86400000"}, "86,400 s")])
def test_a_retry_after_past_the_question_timeout_fails_the_question_now(tmp_path, synthetic_set, capsys, headers, asked):
    app = ScriptedServer(lambda body: Reply(b'{"error": {"message": "slow down"}}', status=429, headers=headers))
    runs = tmp_path / "runs"
    started = time.monotonic()
    with RunningServer(app) as server:
        code, _, _ = evaluate(capsys, server, runs, "r", "--limit", "3", "--question-timeout", "5", "--no-cache")
    assert time.monotonic() - started < 4, "no question slept toward the server's wait"
    kept = samples(runs / "r")
    assert code == 4 and len(kept) == 3
    assert all(s["error"].startswith(f"QuestionDeadline: the server asked to wait {asked}, past this question's deadline (5 s in all, --question-timeout)") for s in kept)
    assert all("slow down" in s["error"] for s in kept if s["attempts"] == 1 and "RateLimitError" in s["error"])


def test_a_six_hour_quota_reset_fails_the_next_questions_instead_of_holding_them(tmp_path, synthetic_set, capsys):
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6h0m0s"}
    app = ScriptedServer(lambda body: Reply(completion("A"), headers=headers))
    runs = tmp_path / "runs"
    started = time.monotonic()
    with RunningServer(app) as server:
        code, _, _ = evaluate(capsys, server, runs, "q", "--limit", "4", "--question-timeout", "5", "--max-connections", "1", "--no-cache")
    assert time.monotonic() - started < 4
    kept = samples(runs / "q")
    answered = [s for s in kept if s["parse_status"] == "ok"]
    failed = [s for s in kept if s["parse_status"] == "error"]
    assert code == 0 and len(answered) == 1 and len(failed) == 3 and len(app.bodies) == 1
    assert all("the server asked to wait 21,600 s, past this question's deadline" in s["error"] for s in failed)


def test_the_shared_pause_never_outlasts_a_deadline():
    import asyncio

    async def scenario() -> tuple[float, float | None]:
        limiter = AdaptiveLimiter(4)
        limiter.on_rate_limited(1e12, await limiter.acquire())
        await limiter.release()
        started = time.monotonic()
        try:
            await limiter.acquire(deadline=time.monotonic() + 2)
        except PastDeadline as past:
            return time.monotonic() - started, past.asked_s
        return time.monotonic() - started, None

    waited, asked = asyncio.run(scenario())
    assert waited < 0.1 and asked == 1e12


# -- model JSON no parser reads ---------------------------------------------------------------------

DEEP = "[" * 200_000 + "]" * 200_000
LONG = '{"dimension_scores": {"technical_accuracy": 1' + "0" * 5000 + "}}"


@pytest.mark.parametrize("reply", [DEEP, LONG, '{"overall_score": ' + "9" * 5000 + "}", '{"dimension_scores": {}, "explanation": ' + "[" * 900 + "]" * 900 + "}"],
                         ids=["nested", "long-int-score", "long-int", "deep-explanation"])
def test_a_verdict_no_parser_reads_is_named_not_a_crash(reply):
    verdict, problem = parse_verdict(reply)
    assert verdict is None and problem and "object has no attribute" not in problem


def test_model_json_reader_names_each_way_it_fails():
    assert read_model_json(DEEP) == (None, "not JSON iadbench reads (nested too deeply)")
    value, problem = read_model_json("1" * 5000)
    assert value is None and "4300 digits" in problem
    assert read_model_json("{")[1].startswith("not JSON (Expecting")


@pytest.mark.parametrize("reply", [DEEP, "[[" + "9" * 5000 + ", 1, 2, 3]]", "[[1" + "0" * 400 + ", 1, 2, 3]]", "region " + "9" * 5000 + ": 0.9", '{"image score": 1' + "0" * 400 + "}"],
                         ids=["nested", "long-int", "int-past-float", "long-region-id", "score-past-float"])
def test_box_and_region_replies_no_parser_reads_are_unparsable(reply):
    fmt = box_formats()["norm1000"]
    boxes = parse_box_reply(reply, fmt.convention, (64, 64), (64, 64))
    assert boxes.status in ("ok", "unparsable") and all(all(0 <= v <= 64 for v in box) for box in boxes.boxes)
    regions = parse_region_reply(reply, 4)
    assert regions.status in ("ok", "unparsable") and all(0 <= s <= 1 for s in regions.region_scores.values())


def test_a_judge_verdict_nobody_parses_is_kept_raw(tmp_path, server, monkeypatch, capsys):
    from tests.test_robustmad_open import build_open_fixture, judging

    def judge(prompt: str, images: int) -> str:
        if "You are an expert visual question answer (VQA) judge" in prompt:
            return DEEP[:40_000]  # within the kept reply length, past Python's parser
        return judging(prompt, images)

    running = server(responder=judge)
    path = build_open_fixture(tmp_path / "data", images=1)
    code = main(["eval", "--task", "open", "--data", f"robustmad:{path}", "--model", "oracle", "--judge", "openai/gpt-5", "--judge-base-url", running.base_url,
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "j", "--quiet", "--no-cache"])
    _, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    judgements = [json.loads(line) for line in (tmp_path / "runs/j/judgements.jsonl").read_text().splitlines()]
    assert judgements and all(j["parse_status"] == "unparsable" and j["reply"] == DEEP[:40_000] for j in judgements)
    assert all(j["parse_reason"] == "not JSON iadbench reads (nested too deeply)" and j["error"] is None for j in judgements)


# -- a reply that would fill the memory --------------------------------------------------------------


def gzip_bomb(inflated_mib: int = 1024) -> bytes:
    """About 1 MB of gzip that inflates to `inflated_mib` MiB of zeros: one flushed block repeated
    (cheap to build; its trailer is left wrong, so only a client that inflates it all notices)."""
    zero = b"\0" * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = packer.compress(zero) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(zero) + packer.flush(zlib.Z_FULL_FLUSH)
    return head + block * (inflated_mib - 1) + packer.flush()[:-8] + struct.pack("<II", 0, 0)


def test_a_gzip_bomb_costs_one_question_and_no_memory(tmp_path, synthetic_set, capsys):
    bomb = gzip_bomb()
    assert len(bomb) < 1_200_000
    calls = []

    def reply(body: dict) -> Reply:
        calls.append(1)
        return Reply(bomb, headers={"content-encoding": "gzip"}) if len(calls) == 1 else Reply(completion("A"))

    app = ScriptedServer(reply)
    runs = tmp_path / "runs"
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with RunningServer(app) as server:
        code, _, _ = evaluate(capsys, server, runs, "g", "--limit", "5", "--max-connections", "1", "--no-cache")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    kept = samples(runs / "g")
    bombed = [s for s in kept if s["parse_status"] == "error"]
    assert code == 0 and len(kept) == 5 and len(bombed) == 1 and len(app.bodies) == 5, "the bomb is not asked for again"
    assert bombed[0]["error"] == "ResponseTooLarge: the server's response passed 32 MiB once decompressed; not read further"
    assert grown_mib < 200, f"the process grew by {grown_mib:.0f} MiB"


def test_a_compression_not_asked_for_is_refused(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(completion("A"), headers={"content-encoding": "x-hostile"}))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        evaluate(capsys, server, runs, "c", "--limit", "1", "--no-cache")
    (sample,) = samples(runs / "c")
    assert sample["error"] == "UnreadableResponse: the server compressed its response as x-hostile, which iadbench did not ask for and does not read"


def test_a_gzipped_reply_of_honest_size_is_read(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(gzip_of(completion("B")), headers={"content-encoding": "gzip"}))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        assert evaluate(capsys, server, runs, "ok", "--limit", "3", "--no-cache")[0] == 0
    assert all(s["parsed"] == "B" for s in samples(runs / "ok"))


def gzip_of(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def test_fetch_stops_writing_at_the_published_size(tmp_path, capsys):
    files = {"mmad.json": b"{}", "domain_knowledge.json": b"{}", "DS-MVTec/a.png": b"\1" * 300}
    repo = HubRepo("jiang-cc/MMAD", files, endless={"DS-MVTec/a.png"})
    hub = serve(repo)
    started = time.monotonic()
    try:
        code, _, err = run_cli(capsys, "fetch", "mmad", "--out", str(tmp_path / "MMAD"), "--endpoint", hub.endpoint)
    finally:
        hub.__exit__()
    assert time.monotonic() - started < 10, "the 2 GiB body was not read to its end"
    assert code == 2 and "DS-MVTec/a.png: the server sent more than the 300 bytes published for it; nothing past them was written" in err
    assert not (tmp_path / "MMAD/DS-MVTec/a.png").exists() and not (tmp_path / "MMAD/DS-MVTec/a.png.part").exists()


# -- an image nobody may read --------------------------------------------------------------------------


def test_an_unreadable_image_costs_its_questions_not_the_run(tmp_path):
    """chmod 000 as root stops nothing (root reads every file), so the run is started without the
    two capabilities that let root pass file permissions (capsh --drop=cap_dac_override,
    cap_dac_read_search): then mode 000 refuses the read exactly as it does for any other user."""
    root = tmp_path / "set"
    build_mmad_tree(root)
    image = root / "VisA/candle/test/bad/002.JPG"
    image.chmod(0)
    command = [sys.executable, "-m", "harness.cli", "eval", "--model", "random", "--data", f"mmad:{root / 'mmad.json'}", "--runs-dir", str(tmp_path / "runs"),
               "--run-id", "m", "--quiet"]
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("running as root without capsh: nothing makes a file unreadable to root")
        command = ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", " ".join(f"'{part}'" for part in command)]
        probe = subprocess.run(["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", f"cat '{image}'"], capture_output=True)
        assert probe.returncode != 0, "the capability drop made the file unreadable"
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ | {"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    kept = samples(tmp_path / "runs/m")
    failed = [s for s in kept if s["parse_status"] == "error"]
    assert len(kept) == 12 and failed and all(s["image_id"] == "VisA/candle/test/bad/002.JPG" for s in failed)
    assert all(s["error"] == f"UnreadableInput: {image}: Permission denied" for s in failed)
    assert "Traceback" not in done.stderr


def test_the_judge_keeps_the_question_timeout(tmp_path, server, capsys):
    from tests.test_robustmad_open import build_open_fixture

    running = server(fault_rate=1.0, fault_kinds=("rate_limit",), retry_after_ms=10**15)  # the judge is told to wait 10^12 s
    path = build_open_fixture(tmp_path / "data", images=1)
    started = time.monotonic()
    main(["eval", "--task", "open", "--data", f"robustmad:{path}", "--model", "oracle", "--judge", "openai/gpt-5", "--judge-base-url", running.base_url,
          "--runs-dir", str(tmp_path / "runs"), "--run-id", "j", "--quiet", "--no-cache", "--question-timeout", "5"])
    assert "Traceback" not in capsys.readouterr().err
    assert time.monotonic() - started < 5
    judgements = [json.loads(line) for line in (tmp_path / "runs/j/judgements.jsonl").read_text().splitlines()]
    assert judgements and all(j["error"].startswith("QuestionDeadline: the server asked to wait 1,000,000,000,000 s, past this question's deadline (5 s") for j in judgements)


def test_a_corrupt_gzip_body_is_named(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(gzip_of(completion("A"))[:12] + b"not deflate at all", headers={"content-encoding": "gzip"}))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        evaluate(capsys, server, runs, "z", "--limit", "1", "--no-cache")
    (sample,) = samples(runs / "z")
    assert sample["error"] == "UnreadableResponse: the response's gzip body is corrupt" and len(app.bodies) == 1


def test_a_response_body_nested_past_the_parser_is_malformed_not_a_crash(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(DEEP.encode()))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        evaluate(capsys, server, runs, "d", "--limit", "1", "--max-attempts", "2", "--no-cache")
    (sample,) = samples(runs / "d")
    assert sample["error"].startswith("MalformedResponse: maximum recursion depth exceeded") and "gave up after 2 attempts" in sample["error"]
