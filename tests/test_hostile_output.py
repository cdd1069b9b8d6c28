"""What iadbench shows and writes, when the text came from an attacker: control characters from a
folder name, an API error body, a question file or a key reach the terminal escaped, never raw; every
CSV it writes is inert in a spreadsheet; malformed input and a base URL with credentials end in one
clear line. Inputs are built here; servers are real local HTTP servers; commands run through main()."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.storage.files import csv_text
from harness.storage.terminal import GuardedStream, escape_controls, guarded_output
from tests.conftest import build_mmad_tree, write_image, write_mask

# Window title, screen clear, colour, an 8-bit CSI, a right-to-left override: what a hostile name holds.
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31m\x9b2J\u202eevil"
ESCAPED = "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31m\\x9b2J\\u202eevil"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out and "a bug in iadbench" not in err
    return code, out, err


def assert_inert(text: str) -> None:
    """Nothing in `text` that a terminal would act on (newline and tab are text)."""
    assert not [c for c in text if c in RAW or (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F], repr(text[:300])


# -- 1. control characters are shown, not obeyed -------------------------------------------------


def test_the_guard_escapes_controls_for_every_way_of_printing(capsys):
    assert escape_controls("a\tb\nc") == "a\tb\nc" and escape_controls(HOSTILE) == ESCAPED
    assert escape_controls("\r\x00\x7f\ud800") == "\\x0d\\x00\\x7f\\ud800"  # a lone surrogate is shown, not a UnicodeEncodeError
    with guarded_output():
        print(HOSTILE)
        print(HOSTILE, file=sys.stderr)
        handler = logging.StreamHandler()  # a library's logger made while a command runs
        logging.getLogger("hostile-output-test").addHandler(handler)
        logging.getLogger("hostile-output-test").warning(HOSTILE)
        logging.getLogger("hostile-output-test").removeHandler(handler)
    out, err = capsys.readouterr()
    assert_inert(out + err)
    assert out.count(ESCAPED) == 1 and err.count(ESCAPED) == 2
    assert not isinstance(sys.stdout, GuardedStream)  # put back after the command


def test_the_progress_line_keeps_its_own_carriage_return():
    from harness.run.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = Progress(3, stream=GuardedStream(terminal), interval_s=0.0)
    progress.update(error=False, answered=True)
    assert terminal.getvalue().endswith("\r") and "\\x0d" not in terminal.getvalue()
    # a library's progress bar (tqdm: downloads, checkpoint shards) redraws with its own CR too;
    # a CR or escape in its text, and a CR printed from anywhere else, are still shown escaped
    from tqdm import tqdm

    bar = Terminal()
    for _ in tqdm(range(2), desc=HOSTILE, file=GuardedStream(bar), mininterval=0):
        pass
    assert bar.getvalue().startswith("\r") and ESCAPED in bar.getvalue()
    assert_inert(bar.getvalue().replace("\r", ""))
    other = GuardedStream(Terminal())
    print("shown\rhidden", file=other)
    assert other.inner.getvalue() == "shown\\x0dhidden\n"


def test_an_escape_named_category_folder_is_shown_escaped_in_the_results_table(tmp_path, capsys):
    root = tmp_path / "mvtec"
    for name in ("train/good/000.png", "train/good/001.png", "test/good/000.png", "test/scratch/000.png"):
        write_image(root / HOSTILE / name, size=64)
    write_mask(root / HOSTILE / "ground_truth/scratch/000_mask.png", (20, 20, 40, 40), size=64)
    runs = tmp_path / "runs"
    code, out, err = run_cli(capsys, "eval", "--task", "gpt4vad", "--model", "oracle", "--data", f"mvtec:{root}", "--regions", "grid:2",
                             "--runs-dir", str(runs), "--run-id", "g")
    assert code == 0 and f"mvtec/{ESCAPED}" in out
    assert_inert(out + err)
    code, out, err = run_cli(capsys, "score", str(runs / "g"))
    assert code == 0 and ESCAPED in out
    assert_inert(out + err)


def test_an_api_error_body_is_shown_escaped(tmp_path, synthetic_set, capsys, monkeypatch):
    from harness.testing.fake_openai import RunningServer
    from tests.hostile_server import Reply, ScriptedServer

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    body = json.dumps({"error": {"message": HOSTILE, "type": "invalid_request_error", "code": "\x1b[5m"}}).encode()
    with RunningServer(ScriptedServer(lambda request: Reply(body, status=401))) as running:
        code, out, err = run_cli(capsys, "eval", "--model", "openai/gpt-4o", "--base-url", running.base_url, "--limit", "2",
                                 "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code != 0 and ESCAPED in err and "AuthenticationError 401" in err
    assert_inert(out + err)


def test_a_robustmad_image_path_is_shown_escaped_in_the_error_line(tmp_path, capsys):
    from tests.test_robustmad import build_fixture

    path = build_fixture(tmp_path / "rm", images=2)
    data = json.loads(path.read_text())
    data["images"][0]["image_path"] = f"MVTec-AD/{HOSTILE}/test/good/000.png"
    path.write_text(json.dumps(data))
    code, out, err = run_cli(capsys, "eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and f"MVTec-AD/{ESCAPED}/test/good/000.png" in err
    assert_inert(out + err)


def test_audit_shows_a_question_key_escaped(tmp_path, capsys):
    root = tmp_path / "set"
    build_mmad_tree(root)
    mmad = json.loads((root / "mmad.json").read_text())
    mmad[f"DS-MVTec/{HOSTILE}/image/good/000.png"] = {"conversation": ["not a question"], "mask_path": ""}  # flagged: its id is printed
    (root / "mmad.json").write_text(json.dumps(mmad))
    code, out, err = run_cli(capsys, "audit", str(root), "--out", str(tmp_path / "audit.json"))
    assert code == 0 and f"DS-MVTec/{ESCAPED}/image/good/000.png#0" in out
    assert_inert(out + err)


def test_no_module_writes_past_the_guard_or_the_one_csv_writer():
    """A new print goes through the guard by itself; these are the ways around it (and around the
    one CSV writer), so none may appear outside the modules that own them."""
    import re

    root = Path(__file__).resolve().parents[1]
    around = re.compile(r"sys\.__std(out|err)__|os\.write\(\s*[12]\b|csv\.(writer|DictWriter)\(")
    owners = {"harness/storage/files.py", "harness/storage/terminal.py"}
    found = [f"{path.relative_to(root)}: {match.group()}" for folder in ("harness", "question_gen") for path in (root / folder).rglob("*.py")
             if path.relative_to(root).as_posix() not in owners for match in around.finditer(path.read_text(encoding="utf-8"))]
    assert found == []


# -- 2. every CSV is inert in a spreadsheet ------------------------------------------------------

FORMULA = "=cmd|' /C calc'!A0"


def test_the_csv_writer_neutralises_formulas_and_keeps_plain_numbers():
    rows = list(csv.reader(io.StringIO(csv_text([["-0.5", "1e-05", "+3", "0.925609756097561", 2.5, -1, "+1+1", "-1+2", FORMULA, "@SUM(A1)", "\tx", "\rx"]]))))
    assert rows == [["-0.5", "1e-05", "+3", "0.925609756097561", "2.5", "-1", "'+1+1", "'-1+2", "'" + FORMULA, "'@SUM(A1)", "'\tx", "'\rx"]]


def hostile_robustmad(root: Path, *, open_answers: bool = False) -> Path:
    """The RobustMAD fixture with formulas for an object folder (and so the pair), a difficulty and
    a question text: every kind of cell the exports take from the data."""
    from tests.test_robustmad import build_fixture
    from tests.test_robustmad_open import build_open_fixture

    path = (build_open_fixture if open_answers else build_fixture)(root, images=3)
    text = path.read_text().replace('/bottle/', '/+1+1/').replace('"bottle"', '"+1+1"')
    data = json.loads(text)
    for image in data["images"]:
        image["difficulty"] = FORMULA
        image["questions"][0]["question"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    path.write_text(json.dumps(data))
    shutil.move(root / "MVTec-AD" / "bottle", root / "MVTec-AD" / "+1+1")
    return path


def assert_inert_csv(path: Path) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert {len(row) for row in rows} == {len(rows[0])}
    for row in rows:
        for cell in row:
            if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                float(cell)  # only a plain number may start like that
    cells = {cell for row in rows for cell in row}
    assert "'" + FORMULA in cells and "'+1+1-good" in cells and FORMULA not in cells
    return rows


def test_robustmads_accuracy_csv_neutralises_formulas_from_the_data(tmp_path, capsys):
    path = hostile_robustmad(tmp_path / "rm")
    runs = tmp_path / "runs"
    assert run_cli(capsys, "eval", "--task", "robustmad", "--model", "oracle", "--data", f"robustmad:{path}", "--runs-dir", str(runs), "--run-id", "o", "--quiet")[0] == 0
    assert run_cli(capsys, "export", str(runs / "o"), "--out", str(tmp_path / "accuracy.csv"))[0] == 0
    rows = assert_inert_csv(tmp_path / "accuracy.csv")
    header = rows[0]
    accuracies = [row[header.index("accuracy_per_pair")] for row in rows[1:] if row[header.index("accuracy_per_pair")]]
    assert accuracies and all(float(a) == 1.0 for a in accuracies)  # the oracle: numbers untouched


def test_robustmads_judged_score_csv_neutralises_formulas_from_the_data(tmp_path, capsys, server, monkeypatch):
    from tests.test_robustmad_open import judging

    monkeypatch.setenv("IADBENCH_CACHE", str(tmp_path / "cache"))
    path = hostile_robustmad(tmp_path / "rm", open_answers=True)
    running = server(responder=judging)
    code, _, _ = run_cli(capsys, "eval", "--task", "open", "--data", f"robustmad:{path}", "--model", "oracle", "--base-url", running.base_url,
                         "--judge", "openai/gpt-5", "--judge-base-url", running.base_url, "--runs-dir", str(tmp_path / "runs"), "--run-id", "j", "--quiet")
    assert code == 0
    assert run_cli(capsys, "export", str(tmp_path / "runs" / "j"), "--out", str(tmp_path / "score.csv"))[0] == 0
    assert_inert_csv(tmp_path / "score.csv")


# -- 3. one clear line -------------------------------------------------------------------------


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "no 'questions' list"),
    ('{"questions": {"a": 1}}', "no 'questions' list"),
    ('{"questions": [5]}', "questions[0] is not an object"),
    ('{"questions": [{"verdict": "ok"}]}', "questions[0] has no string 'id'"),
    ('{"questions": [{"id": "k#0", "verdict": ["likely wrong"]}]}', "'verdict' that is not a string"),
    ('{"questions": [{"id": "k#0", "verdict": "ok", "findings": [{"check": "x"}]}]}', "'findings'"),
])
def test_review_with_a_malformed_audit_file_is_one_clear_line(tmp_path, capsys, content, problem):
    root = tmp_path / "set"
    build_mmad_tree(root)
    audit = tmp_path / "audit.json"
    audit.write_text(content)
    code, out, err = run_cli(capsys, "review", str(root), "--audit", str(audit), "--out", str(tmp_path / "review.html"))
    assert code == 2 and err.count("\n") == 1 and str(audit) in err and problem in err
    assert f"iadbench audit SET --out {audit}" in err  # what to do
    assert not (tmp_path / "review.html").exists()


@pytest.mark.parametrize("where", ["flag", "environment", "judge"])
def test_a_base_url_with_credentials_is_refused_and_never_shown(tmp_path, capsys, monkeypatch, where):
    from tests.test_robustmad_open import build_open_fixture

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    url = "http://alice:sk-LEAKED-123@127.0.0.1:9/v1"
    command = ["eval", "--model", "openai/gpt-4o", "--limit", "2"]
    if where == "flag":
        command += ["--base-url", url]
    elif where == "environment":
        monkeypatch.setenv("OPENAI_BASE_URL", url)
    else:
        command = ["eval", "--task", "open", "--data", f"robustmad:{build_open_fixture(tmp_path / 'rm', images=1)}", "--model", "oracle",
                   "--judge", "openai/gpt-5", "--judge-base-url", url]
    runs = tmp_path / "runs"
    code, out, err = run_cli(capsys, *command, "--runs-dir", str(runs))
    assert code == 2 and err.count("\n") == 1 and "credentials in the URL" in err and "OPENAI_API_KEY" in err
    assert "sk-LEAKED-123" not in out + err and "alice" not in out + err and "MalformedResponse" not in err
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder (spec.json) exists


def _bad_convert(tmp_path: Path) -> list[str]:
    (tmp_path / "mmad.json").write_text('{"DS-MVTec/x/image/good/000.png": 5}')
    return ["convert", f"mmad:{tmp_path / 'mmad.json'}", "--out", str(tmp_path / "hf")]


def _bad_audit(tmp_path: Path) -> list[str]:
    (tmp_path / "mmad.json").write_text('{"DS-MVTec/x/image/good/000.png": {"conversation": 5}}')
    return ["audit", str(tmp_path / "mmad.json"), "--out", str(tmp_path / "audit.json")]


def _bad_robustmad(tmp_path: Path) -> list[str]:
    from tests.test_robustmad import build_fixture

    path = build_fixture(tmp_path / "rm", images=2)
    data = json.loads(path.read_text())
    data["images"][0]["questions"][0]["question_id"] = "abc"
    data["images"][1]["questions"][0]["robustness_category"] = ["General Object Understanding"]
    path.write_text(json.dumps(data))
    return ["eval", "--task", "robustmad", "--model", "random", "--data", f"robustmad:{path}", "--runs-dir", str(tmp_path / "runs")]


@pytest.mark.parametrize("build, named", [(_bad_convert, "expected an object"), (_bad_audit, "'conversation' is not a list"),
                                          (_bad_robustmad, "question_id 'abc' is not a whole number")])
def test_malformed_input_is_one_clear_line_not_a_bug(tmp_path, capsys, build, named):
    code, out, err = run_cli(capsys, *build(tmp_path))
    assert code == 2 and err.count("\n") == 1 and named in err


def test_a_damaged_samples_line_leaves_the_report_whole(tmp_path, synthetic_set, capsys):
    runs = tmp_path / "runs"
    assert run_cli(capsys, "eval", "--model", "random", "--limit", "20", "--runs-dir", str(runs), "--run-id", "r", "--quiet")[0] == 0
    samples = runs / "r" / "samples.jsonl"
    samples.write_text(samples.read_text() + '{"damaged\n[1]\n5\n')
    code, out, err = run_cli(capsys, "report", str(runs / "r"), "--out", str(tmp_path / "r.html"), "--gallery-size", "2")
    assert code == 0 and (tmp_path / "r.html").is_file() and "is not a valid sample" in err
