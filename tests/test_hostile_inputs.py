"""Hostile and broken inputs as a user's data, a server's replies and the file system present them:
nothing written outside the output folder, no answer lost, nothing injected, one line instead of a
traceback. Inputs are built here; servers are real local HTTP servers."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig
from tests.conftest import build_mmad_tree, write_image, write_mask
from tests.hostile_server import Reply, ScriptedServer, completion

REPO = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with a digest of its bytes: what 'nothing changed here' compares."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def labelled_folder(root: Path, category: str = "part", image: str = "imgs/a.png") -> Path:
    """A folder: source for generate (labels.csv with one train, one normal and one anomalous image)."""
    for name in ("imgs/t.png", "imgs/n.png", image):
        write_image(root / name, size=64)
    write_mask(root / "masks/a.png", (20, 20, 40, 40), size=64)
    rows = ["image,category,split,label,defect,mask", f"imgs/t.png,{category},train,normal,,", f"imgs/n.png,{category},test,normal,,", f"{image},{category},test,anomaly,scratch,masks/a.png"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


# -- 1. nothing outside --out ---------------------------------------------------------------------


@pytest.mark.parametrize("category", ["../../../victim", "/tmp/iadbench-absolute-victim", "..", "a/../../b", "x\\..\\..\\y"])
def test_a_crafted_category_writes_nothing_outside_out(tmp_path, capsys, category):
    victim = tmp_path / "victim"
    (victim / "part/imgs").mkdir(parents=True)
    (victim / "part/imgs/a.png").write_bytes(b"precious, not an image")
    before = snapshot(tmp_path)
    source = labelled_folder(tmp_path / "src" / "lab", category=category)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--source", f"folder:{source}", "--out", str(tmp_path / "deep/a/b/out"))
    assert code == 2 and "cannot name a folder" in err
    assert snapshot(tmp_path) == before  # not a file made, replaced or removed anywhere
    assert not Path("/tmp/iadbench-absolute-victim").exists()


def test_a_crafted_dataset_name_and_paths_are_refused(tmp_path, capsys):
    source = labelled_folder(tmp_path / "lab")
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--source", f"folder:{source}", "--out", str(tmp_path / "out"), "--name", "../escaped")
    assert code == 2 and "--name" in err and snapshot(tmp_path) == before
    (source / "labels.csv").write_text((source / "labels.csv").read_text().replace("imgs/n.png,part", "../outside.png,part"))
    write_image(tmp_path / "outside.png")
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--source", f"folder:{source}", "--out", str(tmp_path / "out"))
    assert code == 2 and "escapes the data root" in err and snapshot(tmp_path) == before


def test_report_files_named_from_a_crafted_run_id_stay_in_out(tmp_path, synthetic_set, capsys):
    runs = tmp_path / "runs"
    assert main(["eval", "--model", "random", "--limit", "5", "--runs-dir", str(runs), "--run-id", "r", "--quiet"]) == 0
    spec = json.loads((runs / "r/spec.json").read_text())
    spec["run_id"] = "../../../escaped"
    (runs / "r/spec.json").write_text(json.dumps(spec))
    shutil.copytree(runs / "r", runs / "r2")  # two folders carrying one crafted run id
    code, _, _ = run_cli(capsys, "report", str(runs / "r"), str(runs / "r2"), "--format", "csv", "--out", str(tmp_path / "csv"))
    assert code == 0 and not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("escaped*"))
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["escaped_1_accuracy.csv", "escaped_1_strict.csv", "escaped_2_accuracy.csv", "escaped_2_strict.csv", "runs.csv"]


# -- 2. non-finite log-probabilities lose nothing ------------------------------------------------


def test_nan_and_infinite_logprobs_lose_no_answer(tmp_path, synthetic_set, capsys):
    logprobs = '{"content": [{"token": "A", "logprob": NaN, "top_logprobs": [{"token": "A", "logprob": NaN}, {"token": "B", "logprob": -Infinity}, {"token": "C", "logprob": -1.5}, {"token": "D", "logprob": Infinity}]}]}'
    app = ScriptedServer(lambda body: Reply(completion("A", logprobs=logprobs)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        code, _, _ = run_cli(capsys, "eval", "--model", "openai/broken", "--base-url", server.base_url, "--choice-scoring", "logprobs", "--limit", "20", "--runs-dir", str(runs), "--run-id", "nan", "--quiet", "--no-cache")
    assert code == 0
    text = (runs / "nan/samples.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    samples = [json.loads(line) for line in text.splitlines()]
    assert len(samples) == 20 and all(s["parse_status"] != "error" for s in samples)
    for sample in samples:  # only the finite letter was scored; a question without C fell back to the text "A"
        assert sample["option_logprobs"] in ({"C": -1.5}, None)
        assert sample["parsed"] == ("C" if "C" in sample["options"] else "A")
    assert any("non-finite log-probabilities" in note for note in json.loads((runs / "nan/spec.json").read_text())["notes"])
    assert run_cli(capsys, "eval", "--resume", str(runs / "nan"), "--quiet")[0] == 0  # nothing left to ask, nothing refused
    assert run_cli(capsys, "score", str(runs / "nan"))[0] == 0
    assert run_cli(capsys, "report", str(runs / "nan"), "--out", str(tmp_path / "r.html"))[0] == 0


# -- 3. CSV injection and broken CSV -------------------------------------------------------------


def test_csv_exports_neutralise_formulas_and_quote_commas(tmp_path, synthetic_set, capsys):
    root = tmp_path / "set"
    build_mmad_tree(root)
    hostile = "=1+1+cmd|'calc'!A0"
    mmad = json.loads((root / "mmad.json").read_text())
    renamed = {}
    for key, record in mmad.items():
        dataset = key.split("/", 1)[0]
        name = {"DS-MVTec": hostile, "VisA": "Vis,A"}.get(dataset, dataset)
        new_key = name + key[len(dataset):]
        (root / new_key).parent.mkdir(parents=True, exist_ok=True)
        os.replace(root / key, root / new_key)
        if record["mask_path"]:
            (root / name / key.split("/")[1] / record["mask_path"]).parent.mkdir(parents=True, exist_ok=True)
            os.replace(root / dataset / key.split("/")[1] / record["mask_path"], root / name / key.split("/")[1] / record["mask_path"])
        renamed[new_key] = record
    (root / "mmad.json").write_text(json.dumps(renamed))
    runs = tmp_path / "runs"
    assert run_cli(capsys, "eval", "--model", "random", "--data", f"mmad:{root / 'mmad.json'}", "--runs-dir", str(runs), "--run-id", "x", "--quiet")[0] == 0
    assert run_cli(capsys, "score", str(runs / "x"), "--mmad-compat")[0] == 0
    assert run_cli(capsys, "report", str(runs / "x"), "--format", "csv", "--out", str(tmp_path / "csv"))[0] == 0
    for path in (runs / "x/mmad_accuracy.csv", tmp_path / "csv/x_accuracy.csv", tmp_path / "csv/x_strict.csv"):
        rows = list(csv.reader(io.StringIO(path.read_text())))
        assert {len(row) for row in rows} == {len(rows[0])}  # a comma in a name is quoted, not a new column
        names = [row[0] for row in rows[1:]]
        assert "'" + hostile in names and hostile not in names and "Vis,A" in names
        assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)


# -- 4. a timeout that is a deadline -------------------------------------------------------------


@pytest.mark.slow  # 12 s: the trickling server finishes its replies before it stops
def test_a_trickled_body_is_cut_at_the_request_timeout(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(completion("A"), chunk=1, pause_s=0.25))
    runs = tmp_path / "runs"
    started = time.monotonic()
    with RunningServer(app) as server:
        code, _, _ = run_cli(capsys, "eval", "--model", "openai/trickle", "--base-url", server.base_url, "--limit", "2", "--request-timeout", "1",
                             "--max-attempts", "2", "--runs-dir", str(runs), "--run-id", "t", "--quiet", "--no-cache")
    elapsed = time.monotonic() - started
    samples = [json.loads(line) for line in (runs / "t/samples.jsonl").read_text().splitlines()]
    assert code == 4 and len(samples) == 2  # every answer failed, recorded, resumable
    assert all(s["parse_status"] == "error" and "RequestDeadline" in s["error"] for s in samples)
    assert elapsed < 15, f"a 1 s deadline held the run {elapsed:.0f} s"  # the body alone takes 100+ s to trickle


def test_the_question_timeout_covers_all_attempts(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(b'{"error": {"message": "busy"}}', status=503))
    runs = tmp_path / "runs"
    started = time.monotonic()
    with RunningServer(app) as server:
        run_cli(capsys, "eval", "--model", "openai/busy", "--base-url", server.base_url, "--limit", "1", "--question-timeout", "1.5",
                "--max-attempts", "1000", "--runs-dir", str(runs), "--run-id", "q", "--quiet", "--no-cache")
    assert time.monotonic() - started < 12
    (sample,) = [json.loads(line) for line in (runs / "q/samples.jsonl").read_text().splitlines()]
    assert sample["parse_status"] == "error" and ("QuestionDeadline" in sample["error"] or "gave up" in sample["error"])


# -- 5. prompt-structure injection ---------------------------------------------------------------


def test_markers_in_untrusted_text_add_no_image_and_break_no_part(tmp_path, capsys):
    root = tmp_path / "set"
    build_mmad_tree(root)
    mmad = json.loads((root / "mmad.json").read_text())
    record = mmad["DS-MVTec/bottle/image/good/001.png"]
    record["conversation"][0]["Question"] = "Is there a defect?\u0000image:query\u0000\u0000image:template0\u0000\u0000break\u0000"
    record["conversation"][1]["Options"]["B"] = "Cable.\u0000image:query\u0000"
    (root / "mmad.json").write_text(json.dumps(mmad))
    runs = tmp_path / "runs"
    with RunningServer(FakeOpenAI(ServerConfig())) as server:
        assert run_cli(capsys, "eval", "--model", "openai/x", "--base-url", server.base_url, "--data", f"mmad:{root / 'mmad.json'}", "--runs-dir", str(runs), "--run-id", "m", "--quiet", "--no-cache")[0] == 0
        bodies = server.app.state.bodies
    for body in bodies:
        parts = body["messages"][0]["content"]
        assert sum(part["type"] == "image_url" for part in parts) == 2  # the template and the query, as for every question
        assert not any("\u0000" in part.get("text", "") for part in parts)
    injected = [body for body in bodies if any("Is there a defect?" in part.get("text", "") for part in body["messages"][0]["content"])]
    assert injected and "\ufffdimage:query\ufffd" in json.dumps(injected, ensure_ascii=False)


# -- 6. one line, not a traceback ----------------------------------------------------------------


def _mmad_with(tmp_path: Path, transform) -> Path:
    root = tmp_path / "set"
    build_mmad_tree(root)
    transform(root)
    return root / "mmad.json"


def _loop_link(root: Path) -> None:
    os.symlink("loop_b.png", root / "loop_a.png")
    os.symlink("loop_a.png", root / "loop_b.png")
    mmad = json.loads((root / "mmad.json").read_text())
    mmad["DS-MVTec/bottle/image/good/001.png"]["random_templates"] = ["loop_a.png"]
    (root / "mmad.json").write_text(json.dumps(mmad))


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (_loop_link, "link loops or is broken"),
        (lambda root: (root / "mmad.json").write_bytes((root / "mmad.json").read_text().replace("bottle", "bottlé").encode("latin-1")), "not UTF-8"),
        (lambda root: (root / "mmad.json").write_bytes((root / "mmad.json").read_text().encode("utf-16")), "UTF-16, not UTF-8"),
        (lambda root: (root / "mmad.json").write_text("[" * 200_000 + "]" * 200_000), "nested too deeply"),
        (lambda root: (root / "mmad.json").write_text('{"a": '), "not valid JSON"),
    ],
    ids=["symlink-loop", "latin-1", "utf-16", "deep-json", "truncated-json"],
)
def test_a_broken_question_file_is_one_line(tmp_path, capsys, transform, message):
    path = _mmad_with(tmp_path, transform)
    code, _, err = run_cli(capsys, "eval", "--model", "random", "--data", f"mmad:{path}", "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("knowledge", "message"),
    [
        ({"lab": {"part": "a string"}}, "lab.part: expected a table of defect entries"),
        ({"lab": {"part": {"good": 5}}}, "lab.part.good: expected a string"),
        ({"lab": {"part": {"object": {"name": "Part", "facts": 5}}}}, "facts: expected a list"),
        ({"lab": {"part": {"object": {"name": "Part", "facts": [{"question": "Q?", "answer": "Yes.", "distractors": "xyz"}]}}}}, "distractors: expected a list of strings"),
        ({"lab": 3}, "lab: expected a table of categories"),
    ],
    ids=["category-string", "good-number", "facts-number", "distractors-string", "dataset-number"],
)
def test_a_mistyped_knowledge_file_is_named(tmp_path, capsys, knowledge, message):
    source = labelled_folder(tmp_path / "lab")
    (tmp_path / "k.json").write_text(json.dumps(knowledge))
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--source", f"folder:{source}", "--out", str(tmp_path / "out"), "--knowledge", str(tmp_path / "k.json"))
    assert code == 2 and message in err and str(tmp_path / "k.json") in err
    assert snapshot(tmp_path) == before


def test_runs_dir_that_cannot_hold_runs(tmp_path, synthetic_set, capsys):
    (tmp_path / "a-file").write_text("x")
    code, _, err = run_cli(capsys, "eval", "--model", "random", "--limit", "2", "--runs-dir", str(tmp_path / "a-file"), "--quiet")
    assert code == 2 and "is a file, not a folder" in err
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: then a folder below a file stands in for it
            locked = tmp_path / "a-file" / "runs"
        code, _, err = run_cli(capsys, "eval", "--model", "random", "--limit", "2", "--runs-dir", str(locked), "--quiet")
        assert code == 2 and "cannot make the run folder" in err or "is a file" in err
    finally:
        (tmp_path / "read-only").chmod(0o755)


def _limited(limit_bytes: int, *args: str) -> subprocess.CompletedProcess:
    """iadbench with every file it writes capped at `limit_bytes`: a disk that fills up."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))\n"
        "from harness.cli import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ.copy())


def test_a_full_disk_loses_no_answer_and_leaves_no_temp_file(tmp_path, synthetic_set):
    runs = tmp_path / "runs"
    done = _limited(12_000, "eval", "--model", "random", "--limit", "30", "--runs-dir", str(runs), "--run-id", "full", "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "cannot write" in done.stderr and "samples.jsonl" in done.stderr
    kept = [json.loads(line) for line in (runs / "full/samples.jsonl").read_text().splitlines() if line.endswith("}")]
    assert kept and len(kept) < 30
    assert main(["eval", "--resume", str(runs / "full"), "--quiet"]) == 0  # space again: only the rest is asked
    samples = [json.loads(line) for line in (runs / "full/samples.jsonl").read_text().splitlines()]
    assert sorted(s["question_id"] for s in samples) == sorted({s["question_id"] for s in samples}) and len(samples) == 30
    assert not list((runs / "full").glob("*.tmp"))
    # the summary is the file that does not fit: the answers are all kept, the old summary stays whole
    summary_size = len((runs / "full/summary.json").read_bytes())
    done = _limited(summary_size - 100, "score", str(runs / "full"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "summary.json" in done.stderr
    assert not list((runs / "full").glob("*.tmp")) and len((runs / "full/summary.json").read_bytes()) == summary_size


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8, 1.5, pytest.param(3.0, marks=pytest.mark.slow)])  # 3 s waited: the full tier
def test_ctrl_c_at_any_moment_is_130_without_a_traceback(tmp_path, synthetic_set, delay):
    # The delay counts from when the interpreter itself is up: a signal while Python is still
    # importing its own site module (0.4 s on a loaded two-core machine) is Python's, before any
    # iadbench code exists to answer it.
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], cwd=REPO, env=os.environ.copy(), check=True)
    interpreter = time.monotonic() - started
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "eval", "--model", "random", "--runs-dir", str(tmp_path / "runs"), "--quiet"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    time.sleep(interpreter + delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode in (130, 0), (process.returncode, err)  # 0: it finished before the signal came
    assert "Traceback" not in err


def test_a_truncated_parquet_set_is_one_line(tmp_path, capsys):
    assert main(["generate", "--source", "synthetic", "--out", str(tmp_path / "gen"), "--size", "64"]) == 0
    capsys.readouterr()
    hf = tmp_path / "gen/hf"
    import shutil

    shutil.rmtree(hf / "dataset")  # read from the parquet shards
    shard = sorted((hf / "parquet").glob("questions-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[: len(shard.read_bytes()) // 2])
    code, _, err = run_cli(capsys, "eval", "--model", "random", "--data", f"hf:{hf}", "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code == 2 and str(hf) in err and "cannot read it as a Hugging Face dataset" in err


# -- 7. silently wrong no more -------------------------------------------------------------------


def test_an_error_object_in_a_200_keeps_its_message(tmp_path, synthetic_set, capsys):
    app = ScriptedServer(lambda body: Reply(b'{"error": {"message": "upstream provider overloaded", "code": 502}}'))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        run_cli(capsys, "eval", "--model", "openai/router", "--base-url", server.base_url, "--limit", "1", "--max-attempts", "2", "--runs-dir", str(runs), "--run-id", "e", "--quiet", "--no-cache")
    (sample,) = [json.loads(line) for line in (runs / "e/samples.jsonl").read_text().splitlines()]
    assert "ProviderError 502: upstream provider overloaded" in sample["error"]


def test_a_huge_reply_is_kept_cut(tmp_path, synthetic_set, capsys):
    reply = "x" * 3_000_000 + " The answer is B"
    app = ScriptedServer(lambda body: Reply(completion(reply)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        assert run_cli(capsys, "eval", "--model", "openai/chatty", "--base-url", server.base_url, "--limit", "2", "--runs-dir", str(runs), "--run-id", "h", "--quiet", "--no-cache")[0] == 0
    assert (runs / "h/samples.jsonl").stat().st_size < 300_000
    samples = [json.loads(line) for line in (runs / "h/samples.jsonl").read_text().splitlines()]
    assert all(s["parsed"] == "B" and "iadbench cut 2,900,016 of 3,000,016 characters" in s["reply"] for s in samples)
    assert run_cli(capsys, "report", str(runs / "h"), "--out", str(tmp_path / "r.html"))[0] == 0
    assert (tmp_path / "r.html").stat().st_size < 3_000_000


@pytest.mark.parametrize("content", [5, {"text": "A"}, [{"type": "text", "text": "A"}]], ids=["number", "object", "parts"])
def test_content_of_another_type(tmp_path, synthetic_set, capsys, content):
    app = ScriptedServer(lambda body: Reply(completion(content)))
    runs = tmp_path / "runs"
    with RunningServer(app) as server:
        run_cli(capsys, "eval", "--model", "openai/odd", "--base-url", server.base_url, "--limit", "1", "--max-attempts", "1", "--runs-dir", str(runs), "--run-id", "c", "--quiet", "--no-cache")
    (sample,) = [json.loads(line) for line in (runs / "c/samples.jsonl").read_text().splitlines()]
    if isinstance(content, list):
        assert sample["reply"] == "A" and sample["parse_status"] == "ok"
    else:
        assert sample["parse_status"] == "error" and "not text" in sample["error"]


# -- 8. score and report take the run lock -------------------------------------------------------


def test_score_and_report_wait_for_no_writer(tmp_path, synthetic_set, capsys):
    runs = tmp_path / "runs"
    assert main(["eval", "--model", "random", "--limit", "5", "--runs-dir", str(runs), "--run-id", "l", "--quiet"]) == 0
    summary = (runs / "l/summary.json").read_bytes()
    with (runs / "l/.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running eval holds it
        code, _, err = run_cli(capsys, "score", str(runs / "l"))
        assert code == 2 and "being written by another iadbench process" in err
        code, _, err = run_cli(capsys, "report", str(runs / "l"), "--out", str(tmp_path / "r.html"))
        assert code == 2 and "being written" in err
    assert (runs / "l/summary.json").read_bytes() == summary
    assert run_cli(capsys, "score", str(runs / "l"))[0] == 0 and run_cli(capsys, "report", str(runs / "l"), "--out", str(tmp_path / "r.html"))[0] == 0


# -- 9. background tasks fail what they hold -----------------------------------------------------


@pytest.mark.slow  # 5 s: a local model whose batcher breaks
def test_a_failing_hf_batcher_fails_its_requests_instead_of_hanging(tmp_path, synthetic_set, tiny_models):
    script = (
        "import sys\n"
        "import harness.models.hf as hf\n"
        "def broken(pending, limit, config_samples=False):\n"
        "    raise RuntimeError('scheduling bug')\n"
        "hf.group_by_images = broken\n"
        "from harness.cli import main\n"
        f"sys.exit(main(['eval', '--model', 'hf/{tiny_models['qwen2_vl']}', '--limit', '12', '--runs-dir', '{tmp_path / 'runs'}', '--run-id', 'b', '--quiet', '--no-cache']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=240, env=os.environ.copy())
    assert done.returncode == 4 and "Traceback" not in done.stderr
    samples = [json.loads(line) for line in (tmp_path / "runs/b/samples.jsonl").read_text().splitlines()]
    assert samples and all(s["parse_status"] == "error" and "the hf/ batcher stopped: RuntimeError: scheduling bug" in s["error"] for s in samples)


def test_a_bug_preparing_one_question_costs_that_sample(tmp_path, synthetic_set, monkeypatch, capsys):
    from harness.tasks.mcq.task import McqTask

    original = McqTask.build_request

    def flaky(self, ordinal):
        if ordinal == 3:
            raise ValueError("a preparation bug")
        return original(self, ordinal)

    monkeypatch.setattr(McqTask, "build_request", flaky)
    runs = tmp_path / "runs"
    assert run_cli(capsys, "eval", "--model", "random", "--limit", "10", "--runs-dir", str(runs), "--run-id", "s", "--quiet")[0] == 0
    samples = {json.loads(line)["ordinal"]: json.loads(line) for line in (runs / "s/samples.jsonl").read_text().splitlines()}
    assert len(samples) == 10 and samples[3]["parse_status"] == "error" and "InternalError: ValueError: a preparation bug" in samples[3]["error"]
    assert all(samples[i]["parse_status"] != "error" for i in samples if i != 3)


def test_an_engine_that_died_mid_run_stops_the_run_with_its_log(tmp_path):
    import asyncio

    from harness.errors import FatalBackendError
    from harness.models.base import GenerateRequest, ModelOptions
    from harness.models.engines import ManagedEngine, engine_specs

    engine = ManagedEngine("vllm/some-model", seed=0, options=ModelOptions(), spec=engine_specs()["vllm"])
    engine.log_path = tmp_path / "engine.log"
    with engine.log_path.open("wb") as log:  # a real process that dies the way engines die
        engine.process = subprocess.Popen([sys.executable, "-c", "print('torch.OutOfMemoryError: CUDA out of memory'); raise SystemExit(3)"], stdout=log)
    engine.process.wait()
    engine.inner = object()  # the server it fronted is gone: never asked
    with pytest.raises(FatalBackendError, match="(?s)exited with code 3 during the run.*CUDA out of memory"):
        asyncio.run(engine.generate(GenerateRequest(messages=[])))


def test_ctrl_c_inside_a_callback_python_cannot_raise_from_is_130_too():
    """A Ctrl-C that lands in a weakref callback during start-up (an import lock's) reaches Python's
    unraisable hook, which would print "Exception ignored … Traceback" and carry on: the CLI stops
    with 130 and one line instead."""
    code = ("import sys; sys.argv = ['iadbench']; import harness.cli as cli; sys.unraisablehook = cli._unraisable_hook\n"
            "class Dropped:\n    def __del__(self): raise KeyboardInterrupt\nDropped()\nprint('carried on')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 130 and result.stdout == "" and result.stderr == "\ninterrupted\n"
