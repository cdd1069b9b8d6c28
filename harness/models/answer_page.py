"""The page a person answers on: a small HTTP server on 127.0.0.1, on the run's own event loop
(asyncio streams, no thread and no dependency), over the Sheet of harness/models/human.py.

What it serves, and nothing else:
- GET /                the page (prompts/human/answer.html.j2);
- GET /api/state       the sheet as JSON; `?seen=V` waits (up to WAIT_S) for a change past V;
- POST /api/answer     {"seq": N, "letter": "B"}; POST /api/pause, /api/resume;
- GET /image/SEQ/I     the I-th image of the open question SEQ: by place, never by a path, so no
                       other file can be asked for.
Only connections from 127.0.0.1 with a Host of this address are answered (another site cannot
reach the page through a DNS name of its own), and /api/ asks for the page's token in a header
(a request from another site cannot carry one without the CORS preflight this server refuses).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from harness.errors import ConfigError

if TYPE_CHECKING:  # the backend (harness/models/human.py) makes this server: only a type here
    from harness.models.human import Sheet

MAX_HEAD = 16 * 1024  # a request line and headers; a browser's are a few hundred bytes
MAX_BODY = 4 * 1024  # an answer is a letter and a number
READ_S = 30.0  # a connection that sends nothing (a browser's spare preconnect) is let go
WAIT_S = 20.0  # a long poll returns at least this often
FAREWELL_S = 1.0  # at the end, how long an open page has to read that the run is over
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 431: "Request Header Fields Too Large"}
TOKEN_HEADER = "x-iadbench-token"


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, value: dict) -> Reply:
    return Reply(status, json.dumps(value).encode())


def _error(status: int, message: str) -> Reply:
    return _json(status, {"error": message})


class AnswerServer:
    def __init__(self, sheet: Sheet, port: int | None) -> None:
        self.sheet = sheet
        self.wanted_port = port
        self.token = secrets.token_urlsafe(24)  # a new page per process: a page of an earlier session reloads
        self.url: str | None = None
        self.port: int | None = None  # the one listened on, once bound
        self._socket: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self._hosts: set[str] = set()

    def bind(self) -> str:
        """Listen on 127.0.0.1 (the port asked for, else a free one) and say where, once."""
        if self._socket is not None:
            return self.url or ""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a resumed run takes its port back at once
        try:
            listener.bind(("127.0.0.1", self.wanted_port or 0))
            listener.listen(16)
        except OSError as error:
            listener.close()
            raise ConfigError(f"--port {self.wanted_port}: cannot listen on 127.0.0.1:{self.wanted_port} ({error.strerror or error}); "
                              "pick another port, or leave --port out for a free one") from None
        listener.setblocking(False)
        port = listener.getsockname()[1]
        self._socket, self.port, self.url = listener, port, f"http://127.0.0.1:{port}/"
        self._hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        print(f"\n  {self.sheet.person}: answer the questions at {self.url}\n  (open it in a browser on this machine; every answer is saved as you give it)\n",
              file=sys.stderr, flush=True)
        return self.url

    async def start(self) -> None:
        if self._server is None:
            self.bind()
            self._server = await asyncio.start_server(self._serve, sock=self._socket, limit=MAX_HEAD)

    async def close(self) -> None:
        """Let a page that is open read the sheet's last state (finished: it says so instead of
        "not answering"), then stop listening."""
        deadline = time.monotonic() + FAREWELL_S
        while self.sheet.last_read is not None and time.monotonic() - self.sheet.last_read < WAIT_S + READ_S and not self.sheet.told_finished and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=0.5)
        if self._server is not None:
            self._server.close()
            try:
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
            except TimeoutError:
                pass
        elif self._socket is not None:
            self._socket.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            reply = await self._handle(reader, writer)
            if reply is not None:
                writer.write(self._head(reply) + reply.body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the page went away mid-request: it asks again
        finally:
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    def _head(self, reply: Reply) -> bytes:
        headers = {
            "Content-Type": reply.content_type,
            "Content-Length": str(len(reply.body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Connection": "close",
        } | reply.headers
        lines = [f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Error')}"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Reply | None:
        peer = writer.get_extra_info("peername")
        if not peer or peer[0] != "127.0.0.1":
            return _error(403, "only this machine (127.0.0.1) may answer")
        try:
            async with asyncio.timeout(READ_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, ValueError):
            return _error(431, "request head too large")
        except asyncio.IncompleteReadError:
            return None  # a connection opened and closed without a request
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, _, rest = request_line.partition(" ")
        target = rest.rpartition(" ")[0] or rest
        headers = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        if headers.get("host") not in self._hosts:
            return _error(403, "this page answers at its own address only")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return _error(400, "bad Content-Length")
        if length > MAX_BODY or length < 0:
            return _error(413, "request body too large")
        async with asyncio.timeout(READ_S):
            body = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        return await self._route(method, url.path, parse_qs(url.query), headers, body)

    async def _route(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> Reply:
        if method not in ("GET", "POST"):
            return _error(405, "GET or POST only")
        if path == "/" and method == "GET":
            return self._page()
        if path.startswith("/image/") and method == "GET":
            return self._image(path)
        if not path.startswith("/api/"):
            return _error(404, "no such page")
        if not secrets.compare_digest(headers.get(TOKEN_HEADER, ""), self.token):
            return _error(403, "stale page: reload it")  # a page of an earlier session, or another site
        if path == "/api/state" and method == "GET":
            try:
                seen = int(query.get("seen", ["-1"])[0])
            except ValueError:
                return _error(400, "seen must be a number")
            await self.sheet.changed_since(seen, WAIT_S)
            return _json(200, self.sheet.state())
        if method != "POST":
            return _error(405, "POST only")
        if path == "/api/answer":
            try:
                given = json.loads(body)
                seq, letter = int(given["seq"]), str(given["letter"])
            except (ValueError, KeyError, TypeError):
                return _error(400, 'send {"seq": N, "letter": "A"}')
            refused = self.sheet.answer(seq, letter)
            return _error(409, refused) if refused else _json(200, self.sheet.state())
        if path == "/api/pause":
            self.sheet.pause()
            return _json(200, self.sheet.state())
        if path == "/api/resume":
            self.sheet.resume()
            return _json(200, self.sheet.state())
        return _error(404, "no such action")

    def _page(self) -> Reply:
        from harness.asking.prompting import environment

        nonce = secrets.token_urlsafe(16)
        html = environment().get_template("human/answer.html.j2").render(token=self.token, person=self.sheet.person, nonce=nonce)
        policy = (f"default-src 'none'; img-src 'self'; connect-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return Reply(200, html.encode(), "text/html; charset=utf-8", {"Content-Security-Policy": policy})

    def _image(self, path: str) -> Reply:
        pieces = path.split("/")  # ["", "image", SEQ, INDEX]
        if len(pieces) != 4 or not pieces[2].isdigit() or not pieces[3].isdigit():
            return _error(404, "no such image")
        found = self.sheet.image(int(pieces[2]), int(pieces[3]))
        if found is None:
            return _error(404, "no such image in the open question")
        data, mime = found
        return Reply(200, data, mime)
