"""The human baseline (issue 35): `iadbench eval --model human/NAME` puts each question to a person
on a local page, as the model would be asked it. The page is driven in real headless Chromium
(clicks and key presses, never its own functions), the process is killed mid-run and resumed, and
the run is scored and reported like any other, beside a model and a second person."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness.cli import main
from tests.chromium_pipe import Browser
from tests.conftest import write_image

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = 5  # a --limit small enough for a fast test, with a kill in the middle
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never through a proxy


def http(url: str, path: str, *, token: str | None = None, body: dict | None = None, host: str | None = None, method: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url.rstrip("/") + path, data=None if body is None else json.dumps(body).encode(), method=method)
    if token:
        request.add_header("X-Iadbench-Token", token)
    if host:
        request.add_header("Host", host)
    try:
        with _DIRECT.open(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def page_token(url: str) -> str:
    status, html = http(url, "/")
    assert status == 200
    return re.search(rb'name="iadbench-token" content="([^"]+)"', html).group(1).decode()


class Iadbench:
    """A real `iadbench eval` process; its stderr read as it comes (the page's address is there)."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = os.environ | {"PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen([sys.executable, "-m", "harness.cli", "eval", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self.out: list[str] = []
        for stream, lines in ((self.process.stderr, self.err), (self.process.stdout, self.out)):
            threading.Thread(target=lambda stream=stream, lines=lines: lines.extend(stream), daemon=True).start()

    def url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+/", "".join(self.err))
            if found:
                return found.group(0)
            assert self.process.poll() is None, "".join(self.err)
            time.sleep(0.05)
        raise TimeoutError("iadbench printed no address")


def on_page(browser: Browser) -> dict | None:
    """The question the page shows (read back, never acted on): its header, the question as
    asked, the option letters; None when no question is shown."""
    return browser.value("""(() => {
        if (document.getElementById('question').hidden) return null;
        return {header: document.getElementById('progress-text').textContent, asked: document.getElementById('asked').textContent,
                letters: [...document.querySelectorAll('.option')].map((b) => b.dataset.letter),
                images: [...document.querySelectorAll('#prompt img')].map((i) => i.naturalWidth)};
    })()""")


def wait_question(browser: Browser, number: int) -> dict:
    browser.wait_for(f"!document.getElementById('question').hidden && document.getElementById('progress-text').textContent === 'Question {number} of {QUESTIONS}'"
                     " && [...document.querySelectorAll('#prompt img')].every((i) => i.complete && i.naturalWidth > 0)", timeout=30)
    return on_page(browser)


def samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.strip()]


def cache_rows(cache: Path) -> int:
    database = cache / "responses.sqlite"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def answer_over_http(url: str, choose, stop: threading.Event) -> None:
    """A second person, by real HTTP instead of a browser: answers each question as `choose` says."""
    token = None
    while token is None and not stop.is_set():
        try:
            token = page_token(url)
        except OSError:
            time.sleep(0.05)
    seen = -1
    while not stop.is_set():
        status, body = http(url, f"/api/state?seen={seen}", token=token)
        state = json.loads(body)
        seen = state["version"]
        if state["status"] == "finished":
            return
        if state["status"] == "question":
            question = state["question"]
            http(url, "/api/answer", token=token, body={"seq": question["seq"], "letter": choose(question)})


def test_a_person_answers_in_chromium_through_a_kill_and_a_resume(tmp_path, synthetic_set, isolated_cache):
    runs = tmp_path / "runs"
    folder = runs / "ana"
    rows_before = cache_rows(isolated_cache)
    given: list[tuple[str, str]] = []  # (the question as the page asked it, the letter given), in order
    first = Iadbench("--model", "human/ana", "--limit", str(QUESTIONS), "--run-id", "ana", "--runs-dir", str(runs), "--quiet", cwd=tmp_path)
    started = [first]
    browser = Browser(tmp_path / "profile")
    try:
        url = first.url()
        browser.open(url)
        shown = wait_question(browser, 1)
        assert shown["images"] and all(width > 0 for width in shown["images"])  # the question's images load
        browser.click(f'.option[data-letter="{shown["letters"][0]}"]')  # 1: a click
        given.append((shown["asked"], shown["letters"][0]))
        shown = wait_question(browser, 2)
        browser.click("#prompt img")  # enlarged: a letter pressed while looking closes it and answers nothing
        browser.wait_for("!document.getElementById('lightbox').hidden")
        browser.key(shown["letters"][0].lower())
        browser.wait_for("document.getElementById('lightbox').hidden")
        assert wait_question(browser, 2)["asked"] == shown["asked"]
        browser.key(shown["letters"][-1].lower())  # 2: its letter on the keyboard
        given.append((shown["asked"], shown["letters"][-1]))

        shown = wait_question(browser, 3)
        on_screen_since = time.monotonic()
        browser.open(url)  # a reload mid-question brings the same question back
        assert wait_question(browser, 3)["asked"] == shown["asked"]
        browser.key("p")
        browser.wait_for("document.getElementById('message-title').textContent === 'Paused'")
        assert on_page(browser) is None  # the question is hidden while its clock is stopped
        time.sleep(1.0)
        browser.click("#resume")
        wait_question(browser, 3)
        browser.key(shown["letters"][1].lower())
        answered_at = time.monotonic()
        given.append((shown["asked"], shown["letters"][1]))
        wait_question(browser, 4)  # open on the page when the process dies

        written = samples(folder)
        assert [s["ordinal"] for s in written] == [0, 1, 2] and [s["reply"] for s in written] == [letter for _, letter in given]
        assert 0 < written[2]["latency_s"] < answered_at - on_screen_since - 0.8  # the paused second is left out
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        assert samples(folder) == written  # exactly the answered questions, nothing of the open one
        browser.wait_for("document.getElementById('message-title').textContent === 'iadbench is not answering'")
        hint = browser.value("document.getElementById('message-code').textContent")
        assert f"--resume {folder} --port {first.url().rsplit(':', 1)[1].rstrip('/')}" in hint, hint  # the open tab finds the resumed run

        second = Iadbench("--resume", str(folder), "--quiet", cwd=tmp_path)
        started.append(second)
        browser.open(second.url())
        for number in (4, 5):
            shown = wait_question(browser, number)
            browser.key(shown["letters"][0].lower())
            given.append((shown["asked"], shown["letters"][0]))
        assert second.process.wait(timeout=60) == 0, "".join(second.err)
        assert "human: ana on " in "".join(second.out)  # the results table names the person as reports do
        browser.wait_for("document.getElementById('message-title').textContent.startsWith('All questions answered')")
    finally:
        browser.close()
        for each in started:
            if each.process.poll() is None:
                each.process.kill()

    final = samples(folder)
    assert final[:3] == written
    assert sorted(s["ordinal"] for s in final) == list(range(QUESTIONS)) and len({s["question_id"] for s in final}) == QUESTIONS
    for sample, (asked, letter) in zip(sorted(final, key=lambda s: s["ordinal"]), given):  # in the run's order, each asked once
        assert sample["question"] in asked and sample["reply"] == letter == sample["parsed"]
    assert not any(s["cached"] for s in final) and cache_rows(isolated_cache) == rows_before  # a person's answers are never cached

    # a second person (over HTTP) and a model on the same questions; then the run is a run like any other
    port = _free_port()
    stop = threading.Event()
    bo = threading.Thread(target=answer_over_http, args=(f"http://127.0.0.1:{port}/", lambda q: q["options"][0]["letter"], stop), daemon=True)
    bo.start()
    try:
        assert main(["eval", "--model", "human/bo", "--port", str(port), "--limit", str(QUESTIONS), "--run-id", "bo", "--runs-dir", str(runs), "--quiet"]) == 0
    finally:
        stop.set()
    assert main(["eval", "--model", "random", "--limit", str(QUESTIONS), "--run-id", "rnd", "--runs-dir", str(runs), "--quiet"]) == 0
    assert main(["score", str(folder)]) == 0 and main(["export", str(folder), "--out", str(tmp_path / "answers.json")]) == 0
    assert len(json.loads((tmp_path / "answers.json").read_text())) == QUESTIONS
    report = tmp_path / "report.html"
    assert main(["report", str(folder), str(runs / "bo"), str(runs / "rnd"), "--out", str(report)]) == 0
    html = report.read_text()
    board = html.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    assert re.search(r'<td class="name">human: ana</td>.*?<span class="ci">', board, re.S) and "human: bo" in board and "random" in board
    agreement = html.split('id="agreement"', 1)[1].split("</table>", 1)[0]
    assert "human: ana</td><td class=\"name\">human: bo" in agreement and ">people<" in agreement and ">person and model<" in agreement

    assert main(["report", str(folder), str(runs / "bo"), str(runs / "rnd"), "--out", str(tmp_path / "report.json")]) == 0
    rows = json.loads((tmp_path / "report.json").read_text())["agreement"]["rows"]
    from sklearn.metrics import cohen_kappa_score

    ana, bo_answers = {s["question_id"]: s["parsed"] for s in final}, {s["question_id"]: s["parsed"] for s in samples(runs / "bo")}
    pair = next(row for row in rows if row["between"] == "people")
    order = sorted(ana)
    assert pair["questions"] == QUESTIONS
    assert abs(pair["agreement"] - 100 * sum(ana[q] == bo_answers[q] for q in order) / QUESTIONS) < 1e-9
    expected = cohen_kappa_score([ana[q] for q in order], [bo_answers[q] for q in order])
    assert pair["kappa"] is None if expected != expected else abs(pair["kappa"] - expected) < 1e-9


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveBackend:
    """The human backend's generate on its own event loop in a thread, as the runner awaits it."""

    def __init__(self) -> None:
        from harness.models.human import create_human

        self.backend = create_human("human/tester")
        self.url = self.backend.server.bind()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def ask(self, request):
        return asyncio.run_coroutine_threadsafe(self.backend.generate(request), self.loop)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.backend.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _request(tmp_path: Path):
    from harness.models.base import ChatMessage, GenerateRequest, ImagePart, TextPart

    query = tmp_path / "Secret-set" / "test" / "broken_large" / "000.png"
    template = tmp_path / "Secret-set" / "train" / "good" / "004.png"
    write_image(query, 90)
    write_image(template, 200)
    parts = [TextPart(text="Look at <b>both</b> images."), ImagePart(path=str(template), role="template"), ImagePart(path=str(query), role="query"),
             TextPart(text="Question 1: Is there a defect?\nA. Yes.\nB. No.")]
    return GenerateRequest(messages=[ChatMessage(content=parts)], option_letters=["A", "B"], options={"A": "Yes.", "B": "No."},
                           sample_id="Secret-set/test/broken_large/000.png#0", reference_answer="A", subtask="Anomaly Detection")


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_page_never_carries_the_key_an_id_or_a_path_and_serves_only_the_questions_images(tmp_path):
    live = LiveBackend()
    try:
        pending = live.ask(_request(tmp_path))
        status, page = http(live.url, "/")
        token = page_token(live.url)
        status, body = http(live.url, "/api/state", token=token)
        state = json.loads(body)
        while state["status"] != "question":  # the question opens once its images are prepared
            state = json.loads(http(live.url, f"/api/state?seen={state['version']}", token=token)[1])
            body = json.dumps(state).encode()
        seq = state["question"]["seq"]
        images = [http(live.url, f"/image/{seq}/{index}") for index in (0, 1)]
        assert all(code == 200 and data[:2] == b"\xff\xd8" for code, data in images)  # JPEG, as an API model receives them
        for sent in (page, body):
            for secret in (b"Secret-set", b"broken_large", b"000.png", b"reference", str(tmp_path).encode()):
                assert secret not in sent
        assert _keys(state) <= {"version", "person", "done", "total", "mean_s", "resume", "status", "question", "parts", "text", "from", "image", "role", "options", "letter", "seq", "number", "elapsed_s"}

        # only the open question's images, by place: no path, no other question, no other file
        for path in (f"/image/{seq}/2", f"/image/{seq + 1}/0", f"/image/{seq}/..%2F..%2Fetc%2Fpasswd", "/image/../../etc/passwd",
                     f"/image/{seq}/0/../../../{tmp_path}/Secret-set/test/broken_large/000.png", f"/{tmp_path}/Secret-set/test/broken_large/000.png", "/etc/passwd"):
            assert http(live.url, path)[0] == 404, path
        assert http(live.url, f"/image/{seq}/0?path=/etc/passwd")[1] == images[0][1]  # a query changes nothing
        # another site: no other Host, no action without the page's token, no CORS preflight
        assert http(live.url, "/", host="evil.example")[0] == 403
        assert http(live.url, "/api/state", token=token, host="evil.example:80")[0] == 403
        assert http(live.url, "/api/answer", body={"seq": seq, "letter": "B"})[0] == 403
        assert http(live.url, "/api/answer", method="OPTIONS")[0] == 405
        assert http(live.url, "/api/answer", token=token, body={"seq": seq, "letter": "Z"})[0] == 409
        assert not pending.done()
        browser = Browser(tmp_path / "profile")
        try:  # in a real browser: a question's text is shown as text, never as markup; a click answers
            browser.open(live.url)
            browser.wait_for("document.querySelectorAll('.option').length === 2")
            assert browser.value("document.querySelector('#prompt b, #asked b, .option b')") is None
            assert "Look at <b>both</b> images." in browser.value("document.getElementById('prompt').textContent")
            browser.click('.option[data-letter="B"]')
            response = pending.result(10)
        finally:
            browser.close()
        assert response.text == "B" and response.error is None and response.latency_s > 0
        assert http(live.url, "/api/answer", token=token, body={"seq": seq, "letter": "A"})[0] == 409  # one answer per question
        assert http(live.url, f"/image/{seq}/0")[0] == 404  # an answered question's images are gone with it
    finally:
        live.close()


def test_a_pause_and_the_time_before_anyone_looks_are_left_out_of_the_latency(tmp_path):
    live = LiveBackend()
    try:
        pending = live.ask(_request(tmp_path))
        token = page_token(live.url)
        time.sleep(0.5)  # open, but nobody has the page: not on screen yet
        state = json.loads(http(live.url, "/api/state", token=token)[1])
        while state["status"] != "question":
            state = json.loads(http(live.url, f"/api/state?seen={state['version']}", token=token)[1])
        seq = state["question"]["seq"]
        time.sleep(0.15)
        assert json.loads(http(live.url, "/api/pause", token=token, body={})[1])["status"] == "paused"
        time.sleep(0.8)
        assert http(live.url, f"/image/{seq}/0")[0] == 404  # hidden while paused
        assert http(live.url, "/api/answer", token=token, body={"seq": seq, "letter": "A"})[0] == 409
        resumed = json.loads(http(live.url, "/api/resume", token=token, body={})[1])
        assert resumed["status"] == "question" and resumed["question"]["seq"] == seq  # the same question comes back
        time.sleep(0.15)
        assert http(live.url, "/api/answer", token=token, body={"seq": seq, "letter": "A"})[0] == 200
        latency = pending.result(10).latency_s
        assert 0.25 <= latency < 0.6, latency  # 0.3 s on screen; 0.8 paused and 0.5 unseen left out
    finally:
        live.close()


def test_what_a_person_cannot_answer_is_refused_before_a_run_folder_exists(tmp_path, capsys):
    runs = tmp_path / "runs"
    for flags, words in ((["--max-connections", "2"], "answers 1 question at a time"), (["--num-processes", "2"], "answers 1 question at a time"),
                         (["--strategy", "sc=3:0.7"], "answers each question once"), (["--strategy", "cot"], "writes no free text"),
                         (["--suite", "mmad-official"], "harmonised protocol"), (["--task", "gpt4vad"], "multiple-choice questions")):
        assert main(["eval", "--model", "human/ana", "--runs-dir", str(runs), *flags]) == 2
        assert words in capsys.readouterr().err, flags
    assert main(["eval", "--model", "human/a b", "--runs-dir", str(runs)]) == 2
    assert "name the person" in capsys.readouterr().err
    assert not runs.exists()
