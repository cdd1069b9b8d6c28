"""An OpenAI-compatible chat-completions server for tests and benchmarks (real HTTP, no network).

It answers deterministically from the question (the same prompt always gets the same letter),
returns logprobs when asked, and injects faults on demand: 429 with a retry-after, 500/503,
responses slower than the client's timeout, truncated JSON, and connections dropped mid-body.
Faults hit a request's first attempts only (chosen by a hash of its content), so a resilient client
always gets through and must end with the same answers as a fault-free run.

    python -m harness.testing.fake_openai --port 8911 --latency 0.2 --fault-rate 0.2

Control endpoints: GET /control/stats (requests served, faults by kind, image sizes seen),
POST /control/reset.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

FAULT_KINDS = ("rate_limit", "server_error", "unavailable", "slow", "truncated", "dropped")



async def serve_lifespan(receive, send) -> None:
    """An ASGI lifespan: acknowledge start-up and shutdown (the test servers keep no state to set up)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive) -> bytes:
    """A request's whole body, however many messages it came in."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body

@dataclass
class ServerConfig:
    latency_s: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    faulty_attempts: int = 2  # a faulty request fails this many times, then succeeds
    slow_s: float = 3.0  # how long a "slow" fault stalls (longer than the client's timeout)
    retry_after_ms: int = 30
    max_concurrent: int | None = None  # above this many in flight, answer 429
    logprobs: bool = True  # False: behave like a server that ignores logprobs
    reply_style: str = "letter"  # "letter" → "B"; "sentence" → "The answer is B."
    inspect_images: bool = True  # decode every image (tests); off in benchmarks to keep the server light
    echo_key_rate: float = 0.0  # share of requests refused with a 400 that echoes the Authorization header
    reject_auth: bool = False  # answer every request 401, as for a wrong API key
    # Tests script replies with responder(prompt_text, image_count) -> reply text (None: default).
    responder: Callable[[str, int], str | None] | None = None


@dataclass
class ServerState:
    requests: int = 0
    completions: int = 0
    faults: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)  # request digest → attempts seen
    image_sizes: list = field(default_factory=list)
    bodies: list = field(default_factory=list)  # every answered request body, in arrival order (tests)
    authorization: set = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0


_QUESTION = re.compile(r"Question \d+: (.*?)\s*\n((?:[A-E]\. .*(?:\n|$))+)", re.S)


def choose_letter(prompt_text: str) -> tuple[str, list[str]]:
    """The server's deterministic answer: a hash of the question and options picks a letter."""
    match = _QUESTION.search(prompt_text)
    letters = re.findall(r"^([A-E])\. ", match.group(2), re.M) if match else ["A", "B"]
    digest = int(hashlib.sha256(prompt_text.encode()).hexdigest(), 16)
    return letters[digest % len(letters)], letters


def region_reply(prompt_text: str) -> str:
    """A deterministic GPT-4V-AD answer: a hashed image score and two hashed region scores."""
    digest = hashlib.sha256(prompt_text.encode()).digest()
    return f"image anomaly score: {digest[0] / 255:.2f}; region {1 + digest[1] % 20}: {digest[2] / 255:.2f}; region {1 + digest[3] % 20}: {digest[4] / 255:.2f}."


def generation_reply(prompt_text: str) -> str:
    """A deterministic writer for LLM-assisted generation: material, then a question from it."""
    digest = hashlib.sha256(prompt_text.encode()).hexdigest()
    if '"question"' in prompt_text:
        topic = re.search(r"^(?:Description|Analysis|Note about the object): (.*)$", prompt_text, re.M)
        text = topic.group(1) if topic else "the part"
        return json.dumps({"question": f"Which statement matches the image? ({digest[:6]})", "correct": text,
                           "distractors": [f"A clean surface with no marks ({digest[:4]})", f"A bent edge on the left side ({digest[4:8]})", f"A missing label on the back ({digest[8:12]})"]})
    return json.dumps({"description": f"A dark mark is visible on the surface ({digest[:6]}).", "analysis": f"Probably caused by handling ({digest[6:12]}).", "object": f"A part that holds components ({digest[12:18]})."})


def _image_count(body: dict) -> int:
    return sum(1 for m in body.get("messages", []) for p in m.get("content") or [] if isinstance(p, dict) and p.get("type") == "image_url")


def _prompt_text(body: dict) -> str:
    texts = []
    for message in body.get("messages", []):
        if message.get("role") == "assistant":  # an earlier answer is context, not the question
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [part.get("text", "") for part in content or [] if part.get("type") == "text"]
    return "\n".join(texts)


def _image_sizes(body: dict) -> list[tuple[int, int]]:
    from PIL import Image

    sizes = []
    for message in body.get("messages", []):
        for part in message.get("content") or []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = part["image_url"]["url"]
                payload = base64.b64decode(url.split(",", 1)[1], validate=True)
                with Image.open(io.BytesIO(payload)) as image:
                    image.load()  # raises if the bytes are not a valid image
                    sizes.append(image.size)
    return sizes


def _completion(body: dict, letter: str, letters: list[str], config: ServerConfig) -> dict:
    text = letter if config.reply_style == "letter" or not letters else f"The answer is {letter}."
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
    if body.get("logprobs") and config.logprobs:
        # The chosen letter gets most of the mass; the others share the rest in a fixed order.
        others = [x for x in letters if x != letter]
        top = [{"token": letter, "logprob": math.log(0.7), "bytes": list(letter.encode())}]
        top += [{"token": x, "logprob": math.log(0.3 / (len(others) + 1) / (i + 1)), "bytes": list(x.encode())} for i, x in enumerate(others)]
        top.append({"token": " The", "logprob": math.log(0.01), "bytes": list(b" The")})
        first = text.split(" ")[0]
        choice["logprobs"] = {"content": [{"token": first, "logprob": top[0]["logprob"], "bytes": list(first.encode()), "top_logprobs": top[: body.get("top_logprobs") or 1]}]}
    images = _image_count(body)
    prompt_tokens = len(_prompt_text(body)) // 4 + 85 * images
    return {
        "id": "chatcmpl-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16],
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
    }


class FakeOpenAI:
    """The ASGI application."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.state = ServerState()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        body = await read_body(receive)
        path, method = scope["path"], scope["method"]
        if path == "/control/stats":
            stats = {
                "requests": self.state.requests,
                "completions": self.state.completions,
                "faults": dict(self.state.faults),
                "image_sizes": self.state.image_sizes,
                "max_in_flight": self.state.max_in_flight,
                "authorization": sorted(self.state.authorization),
            }
            return await _json(send, 200, stats)
        if path == "/control/reset" and method == "POST":
            self.state = ServerState()
            return await _json(send, 200, {"ok": True})
        if path.endswith("/chat/completions") and method == "POST":
            headers = dict(scope["headers"])
            self.state.authorization.add(headers.get(b"authorization", b"").decode())
            if self.config.reject_auth:
                return await _json(send, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return await self._chat(json.loads(body), send, headers.get(b"authorization", b"").decode())
        return await _json(send, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})

    async def _chat(self, body: dict, send, authorization: str = "") -> None:
        state, config = self.state, self.config
        state.requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if config.max_concurrent is not None and state.in_flight > config.max_concurrent:
                state.faults["over_capacity"] += 1
                return await _json(send, 429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"retry-after-ms": str(config.retry_after_ms)})
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            attempt = state.attempts[digest]
            state.attempts[digest] += 1
            coin = int(digest[:8], 16) / 0xFFFFFFFF
            if 1 - coin < config.echo_key_rate:  # a careless server that repeats the credentials
                state.faults["echo_key"] += 1
                return await _json(send, 400, {"error": {"message": f"Malformed request sent with {authorization}", "type": "invalid_request_error"}})
            if coin < config.fault_rate and attempt < config.faulty_attempts:
                kind = config.fault_kinds[int(digest[8:12], 16) % len(config.fault_kinds)]
                state.faults[kind] += 1
                return await _fault(kind, send, config)
            await asyncio.sleep(config.latency_s)
            if config.inspect_images:
                state.image_sizes.append(_image_sizes(body))
            state.completions += 1
            state.bodies.append(body)
            prompt = _prompt_text(body)
            if config.responder is not None:
                scripted = config.responder(prompt, _image_count(body))
                if scripted is not None:
                    return await _json(send, 200, _completion(body, scripted, [], config))
            if "image anomaly score" in prompt:  # a GPT-4V-AD prompt: answer with region scores
                return await _json(send, 200, _completion(body, region_reply(prompt), [], config))
            if "Reply with JSON only" in prompt:  # LLM-assisted question generation
                return await _json(send, 200, _completion(body, generation_reply(prompt), [], config))
            sampled = f"\n#seed {body.get('seed')}" if body.get("temperature") else ""  # sampling: the seed matters
            letter, letters = choose_letter(prompt + sampled)
            return await _json(send, 200, _completion(body, letter, letters, config))
        finally:
            state.in_flight -= 1


async def _fault(kind: str, send, config: ServerConfig) -> None:
    if kind == "rate_limit":
        return await _json(send, 429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"retry-after-ms": str(config.retry_after_ms), "x-ratelimit-remaining-requests": "0"})
    if kind == "server_error":
        return await _json(send, 500, {"error": {"message": "internal error", "type": "server_error"}})
    if kind == "unavailable":
        return await _json(send, 503, {"error": {"message": "overloaded", "type": "server_error"}}, {"retry-after": "0.02"})
    if kind == "slow":
        await asyncio.sleep(config.slow_s)
        return await _json(send, 500, {"error": {"message": "too slow", "type": "server_error"}})
    if kind == "truncated":
        payload = b'{"id": "chatcmpl-x", "object": "chat.completion", "choi'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        return await send({"type": "http.response.body", "body": payload})
    if kind == "dropped":  # promise a body, send half of it, close
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", b"4000")]})
        try:
            await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-x", "choices": [', "more_body": False})
        except Exception:  # the server refuses to finish a short body: exactly the drop we want
            pass
        return None
    raise ValueError(f"unknown fault kind {kind!r}")


async def _json(send, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": data})


class RunningServer:
    """uvicorn serving an app on 127.0.0.1 in a background thread (for tests)."""

    def __init__(self, app: FakeOpenAI, port: int = 0) -> None:
        import uvicorn

        self.app = app
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on", timeout_keep_alive=30))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "RunningServer":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    @property
    def base_url(self) -> str:
        (socket,) = [s for server in self._server.servers for s in server.sockets][:1]
        host, port = socket.getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8911)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--max-concurrent", type=int)
    parser.add_argument("--no-logprobs", action="store_true")
    parser.add_argument("--no-inspect-images", action="store_true", help="do not decode images (lighter, for benchmarks)")
    args = parser.parse_args()
    config = ServerConfig(
        latency_s=args.latency,
        fault_rate=args.fault_rate,
        max_concurrent=args.max_concurrent,
        logprobs=not args.no_logprobs,
        inspect_images=not args.no_inspect_images,
    )
    uvicorn.run(FakeOpenAI(config), host="127.0.0.1", port=args.port, log_level="error", timeout_keep_alive=30, backlog=4096)


if __name__ == "__main__":
    main()
