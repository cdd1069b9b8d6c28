"""A person as the model: `human/<name>` puts each question to someone in the browser.

The runner asks this backend as it asks any other (`generate`), one question at a time (its
provider's max_concurrency) and in the run's order. Each question waits on a local page
(harness/models/answer_page.py) until the person clicks an option or presses its letter; the
letter is the reply, and the seconds the question was on screen, pauses excluded, its latency.
Nothing is cached (a person's answer is not a model's to replay), and the runner's append of
each answer to samples.jsonl is what makes a closed tab or a killed process lose nothing:
`--resume` asks only what is still unanswered.

The page sees a whitelist of the request (`question_view`): its texts and images in order, the
option letters and texts. Never the reference answer, the question's id or an image's path (an
MMAD path names the defect: .../test/broken_large/000.png).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from harness.errors import ConfigError
from harness.models.base import GenerateRequest, GenerateResponse, ImagePart, ModelOptions, TextPart
from harness.models.images import ImageDecodeError, encoded_bytes

NOTE = "answered by a person on iadbench's answer page, one question at a time; latency is the time each question was on screen, pauses excluded"
ROLE_NAMES = {"query": "the query image", "template": "a normal sample (template)", "agent": "the query image, marked by the expert"}
PERSON_NAME = re.compile(r"[\w.-]{1,64}")


class Stopwatch:
    """Seconds while running; stopping and starting again leaves the stopped time out."""

    def __init__(self) -> None:
        self._spent = 0.0
        self._since: float | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def stop(self) -> None:
        if self._since is not None:
            self._spent += time.monotonic() - self._since
            self._since = None

    def seconds(self) -> float:
        return self._spent + (time.monotonic() - self._since if self._since is not None else 0.0)


def question_view(request: GenerateRequest) -> tuple[dict, list[ImagePart]]:
    """What the page may show of a request, and its images in the order the page numbers them.
    Built field by field: nothing else of the request (the key, ids, paths) can reach the page."""
    parts: list[dict] = []
    images: list[ImagePart] = []
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"text": part.text, "from": "model" if message.role == "assistant" else "prompt"})
            else:
                parts.append({"image": len(images), "role": ROLE_NAMES.get(part.role, "an image")})
                images.append(part)
    options = [{"letter": letter, "text": (request.options or {}).get(letter, "")} for letter in request.option_letters or []]
    return {"parts": parts, "options": options}, images


@dataclass
class Shown:
    """The question on the page: its view, its images' bytes, and the clock of its time on screen."""

    seq: int
    view: dict
    images: list[tuple[bytes, str]]
    letters: list[str]
    answer: asyncio.Future
    clock: Stopwatch = field(default_factory=Stopwatch)
    delivered: bool = False  # a page has received it: its clock runs from then, while not paused


class Sheet:
    """What the page shows and the only place it changes (every change on the run's event loop):
    the open question, pause, progress. `version` grows with each change, so a page can wait for
    the next one."""

    def __init__(self, person: str) -> None:
        self.person = person
        self.current: Shown | None = None
        self.paused = self.finished = False
        self.total: int | None = None
        self.done = 0  # answered, in this run folder, earlier sessions included
        self.answered_here, self.seconds_here = 0, 0.0
        self.resume_hint = ""
        self.last_read: float | None = None  # when a page last read the sheet (time.monotonic)
        self.told_finished = False  # a page has read that the run is over
        self.version = 0
        self._changed = asyncio.Event()
        self._next_seq = 1

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed_since(self, version: int, timeout: float) -> None:
        """Return once the sheet is past `version`, or after `timeout` seconds."""
        if version != self.version:
            return
        event = self._changed
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    async def ask(self, view: dict, images: list[tuple[bytes, str]], letters: list[str]) -> tuple[str, float]:
        shown = Shown(self._next_seq, view, images, letters, asyncio.get_running_loop().create_future())
        self._next_seq += 1
        self.current = shown
        self._bump()
        try:
            return await shown.answer
        finally:
            if self.current is shown:  # cancelled (Ctrl-C): the page must not offer it any more
                self.current = None
                self._bump()

    def state(self) -> dict:
        """The page's view of the sheet. Handing out the open question counts as showing it: its
        clock starts then (not while nobody has the page open)."""
        self.last_read = time.monotonic()
        mean = self.seconds_here / self.answered_here if self.answered_here else None
        state = {"version": self.version, "person": self.person, "done": self.done, "total": self.total, "mean_s": mean, "resume": self.resume_hint}
        if self.finished:
            self.told_finished = True
            return state | {"status": "finished"}
        if self.paused:
            return state | {"status": "paused"}
        shown = self.current
        if shown is None:
            return state | {"status": "waiting"}
        if not shown.delivered:
            shown.delivered = True
            shown.clock.start()
        return state | {"status": "question", "question": shown.view | {"seq": shown.seq, "number": self.done + 1, "elapsed_s": shown.clock.seconds()}}

    def image(self, seq: int, index: int) -> tuple[bytes, str] | None:
        """An image of the open question, by its place in the question (never by a path)."""
        shown = self.current
        if shown is None or self.paused or shown.seq != seq or not shown.delivered or not 0 <= index < len(shown.images):
            return None
        return shown.images[index]

    def answer(self, seq: int, letter: str) -> str | None:
        """Take the person's answer; None, or why it was not taken."""
        shown = self.current
        if self.paused:
            return "paused: resume first"
        if shown is None or shown.seq != seq or not shown.delivered:
            return "this question is no longer open"
        if letter not in shown.letters:
            return f"{letter!r} is not one of the options"
        seconds = shown.clock.seconds()
        shown.clock.stop()
        self.current = None
        self.done += 1
        self.answered_here += 1
        self.seconds_here += seconds
        if not shown.answer.done():
            shown.answer.set_result((letter, seconds))
        self._bump()
        return None

    def pause(self) -> None:
        if not self.paused and not self.finished:
            self.paused = True
            if self.current is not None:
                self.current.clock.stop()
            self._bump()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if self.current is not None and self.current.delivered:
                self.current.clock.start()
            self._bump()

    def finish(self) -> None:
        self.finished = True
        self._bump()


def _encoded(images: list[ImagePart]) -> list[tuple[bytes, str]]:
    """Each image as an API model receives it (the request's preparation: size, encoding)."""
    out = []
    for part in images:
        data, default_mime = encoded_bytes(part)
        out.append((data, part.mime or default_mime))
    return out


class HumanBackend:
    default_concurrency = 1
    cacheable = False

    def __init__(self, name: str, person: str, port: int | None) -> None:
        from harness.models.answer_page import AnswerServer

        self.name = self.cache_identity = name
        self.sheet = Sheet(person)
        self.server = AnswerServer(self.sheet, port)
        self._one_at_a_time = asyncio.Lock()
        self._noted = False

    def ready(self) -> None:
        """Listen before the run folder exists (a taken --port stops here), and say where."""
        self.server.bind()

    def attach_run_folder(self, path) -> None:
        # the same port, so the tab that is open finds the resumed run by itself
        port = f" --port {self.server.port}" if self.server.port else ""
        self.sheet.resume_hint = f"iadbench eval --resume {path}{port}"

    def attach_plan(self, total: int, done: int) -> None:
        """The runner's plan: questions in all, and how many earlier sessions answered."""
        self.sheet.total, self.sheet.done = total, done

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if not request.option_letters or request.shared_call:
            return GenerateResponse(error="NotMultipleChoice: a person answers one multiple-choice question at a time, by its letter")
        view, parts = question_view(request)
        async with self._one_at_a_time:  # never two questions open at once, whatever calls this
            await self.server.start()
            try:
                images = await asyncio.to_thread(_encoded, parts)
            except ImageDecodeError as error:
                return GenerateResponse(error=f"ImageDecodeError: {error}")
            letter, seconds = await self.sheet.ask(view, images, list(request.option_letters))
        notes, self._noted = ([] if self._noted else [NOTE]), True
        return GenerateResponse(text=letter, latency_s=seconds, notes=notes)

    async def aclose(self) -> None:
        self.sheet.finish()
        await self.server.close()


def create_human(name: str, *, seed: int = 0, options: ModelOptions | None = None) -> HumanBackend:
    person = name.partition("/")[2]
    if not PERSON_NAME.fullmatch(person):
        raise ConfigError(f"--model {name!r}: name the person with letters, digits, '.', '_' or '-' (up to 64), like human/ana or human/inspector-2")
    return HumanBackend(name, person, (options or ModelOptions()).port)
