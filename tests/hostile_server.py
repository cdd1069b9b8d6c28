"""An OpenAI-compatible endpoint whose replies a test writes byte for byte (served over real HTTP by
harness.testing.fake_openai.RunningServer): bodies trickled a byte at a time, NaN log-probabilities,
error objects in a 200, replies of megabytes, content of the wrong type, headers of its choosing
(retry-after, content-encoding), the caller's own key echoed back."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from typing import Callable

from harness.testing.fake_openai import read_body, serve_lifespan


@dataclass
class Reply:
    body: bytes
    status: int = 200
    chunk: int = 0  # >0: send the body this many bytes at a time ...
    pause_s: float = 0.0  # ... with this pause between chunks
    headers: dict[str, str] = field(default_factory=dict)  # e.g. retry-after, content-encoding: gzip
    echo_key: bool = False  # $KEY in the body becomes the key of the request's Authorization header


def completion(content, *, logprobs: str | None = None, usage: str = '{"prompt_tokens": 10, "completion_tokens": 1}') -> bytes:
    """A chat completion whose message content is `content` (any JSON value); `logprobs` and `usage`
    are raw JSON text, so they can hold NaN, Infinity or 10**400 as a broken server writes them."""
    message = json.dumps({"role": "assistant", "content": content})
    extra = f', "logprobs": {logprobs}' if logprobs else ""
    return (f'{{"id": "x", "object": "chat.completion", "choices": [{{"index": 0, "message": {message}{extra}, "finish_reason": "stop"}}], '
            f'"usage": {usage}}}').encode()


@dataclass
class ScriptedServer:
    """ASGI app: every chat request is answered by `reply(request_body)`; requests are recorded."""

    reply: Callable[[dict], Reply]
    bodies: list = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        body = await read_body(receive)
        request = json.loads(body) if body else {}
        self.bodies.append(request)
        reply = self.reply(request)
        if reply.echo_key:
            sent = dict(scope["headers"]).get(b"authorization", b"").removeprefix(b"Bearer ")
            reply = replace(reply, body=reply.body.replace(b"$KEY", sent))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply.body)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if not reply.chunk:
            await send({"type": "http.response.body", "body": reply.body})
            return
        try:
            for start in range(0, len(reply.body), reply.chunk):
                last = start + reply.chunk >= len(reply.body)
                await send({"type": "http.response.body", "body": reply.body[start : start + reply.chunk], "more_body": not last})
                if not last:
                    await asyncio.sleep(reply.pause_s)
        except Exception:  # the client gave up mid-body: what a deadline is for
            return
