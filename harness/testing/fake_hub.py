"""A Hugging Face Hub stand-in for tests (real HTTP, no network): serves one dataset repository's
files at one commit through the routes `huggingface_hub` uses (the revision's file tree, HEAD and
ranged GET on resolve/), and raw GitHub's /OWNER/NAME/REV/PATH, so `iadbench fetch` runs against
it with the real clients.

`trickle_after` slows every body past that many bytes to a crawl, so a test can kill a download
in the middle of a file and watch the next run resume it with a Range request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from harness.testing.fake_openai import RunningServer, serve_lifespan


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, bytes]
    commit: str = "c4ed190dcb530f2f673ab293e575ad32054bb3cf"
    trickle_after: int | None = None  # bytes of a body sent at full speed; the rest one small chunk per 50 ms
    corrupt: set[str] = field(default_factory=set)  # files served with one byte changed (listed with their true hash)
    endless: set[str] = field(default_factory=set)  # files whose body goes on past their listed size (1 MiB pieces, up to 2 GiB) until the client hangs up
    cdn: bool = False  # LFS files answered with a 302 to another host name (localhost), as the hub sends them to its CDN
    authorized: list[tuple[str, bool]] = field(default_factory=list)  # (path, whether an Authorization header came)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range header)


class FakeHub:
    def __init__(self, repo: HubRepo) -> None:
        self.repo = repo
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        path = urllib.parse.unquote(scope["path"])
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.repo.requests.append((scope["method"], path, headers.get("range")))
            self.repo.authorized.append((path, "authorization" in headers))
        repo = self.repo
        listing = re.fullmatch(rf"/api/datasets/{re.escape(repo.repo_id)}/revision/(.+)", path)
        if listing and scope["method"] == "GET":
            if listing.group(1) not in (repo.commit, "main", repo.commit[:7]):
                await _send(send, 404, b'{"error": "Revision Not Found"}', {"x-error-code": "RevisionNotFound", "content-type": "application/json"})
                return
            siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(repo.files.items())]
            body = json.dumps({"id": repo.repo_id, "sha": repo.commit, "siblings": siblings, "private": False}).encode()
            await _send(send, 200, body, {"content-type": "application/json"})
            return
        tree = re.fullmatch(rf"/api/datasets/{re.escape(repo.repo_id)}/tree/([^/]+)/?(.*)", path)
        if tree and scope["method"] == "GET":
            if tree.group(1) not in (repo.commit, "main"):
                await _send(send, 404, b'{"error": "Revision Not Found"}', {"x-error-code": "RevisionNotFound", "content-type": "application/json"})
                return
            entries = [_entry(name, data) for name, data in sorted(repo.files.items()) if name.startswith(tree.group(2))]
            await _send(send, 200, json.dumps(entries).encode(), {"content-type": "application/json"})
            return
        # the hub's resolve/ route, or raw GitHub's /OWNER/NAME/REV/PATH
        resolve = re.fullmatch(rf"/datasets/{re.escape(repo.repo_id)}/resolve/([^/]+)/(.+)", path) or re.fullmatch(rf"/{re.escape(repo.repo_id)}/([^/]+)/(.+)", path)
        if resolve and repo.cdn and scope["method"] == "GET" and path.startswith("/datasets/") and not resolve.group(2).endswith(".json"):
            port = scope["server"][1]
            await _send(send, 302, b"", {"location": f"http://localhost:{port}/cdn/{repo.repo_id}/{resolve.group(1)}/{urllib.parse.quote(resolve.group(2))}"})
            return
        resolve = resolve or re.fullmatch(rf"/cdn/{re.escape(repo.repo_id)}/([^/]+)/(.+)", path)
        if not resolve or resolve.group(2) not in repo.files:
            await _send(send, 404, b'{"error": "Entry not found"}', {"x-error-code": "EntryNotFound", "content-type": "application/json"})
            return
        data = repo.files[resolve.group(2)]
        if resolve.group(2) in repo.corrupt:
            data = bytes([data[0] ^ 1]) + data[1:]
        etag = hashlib.sha256(data).hexdigest()
        meta = {"x-repo-commit": repo.commit, "etag": f'"{etag}"', "x-linked-etag": f'"{etag}"', "x-linked-size": str(len(data)), "accept-ranges": "bytes"}
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": _encode(meta | {"content-length": str(len(data))})})
            await send({"type": "http.response.body", "body": b""})
            return
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", headers.get("range", ""))
        if ranged:
            start = int(ranged.group(1))
        body = data[start:]
        status = 206 if ranged else 200
        extra = {"content-range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if ranged else {}
        if resolve.group(2) in repo.endless:  # no content-length: the body ends when the server stops (or the client leaves)
            await send({"type": "http.response.start", "status": status, "headers": _encode(meta | extra)})
            await send({"type": "http.response.body", "body": body, "more_body": True})
            try:
                for _ in range(2048):
                    await send({"type": "http.response.body", "body": b"\0" * (1 << 20), "more_body": True})
                    await asyncio.sleep(0)
            except Exception:  # the client hung up: what a client that stops at the published size does
                return
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": status, "headers": _encode(meta | extra | {"content-length": str(len(body))})})
        fast = body if repo.trickle_after is None else body[: max(0, repo.trickle_after - start)]
        await send({"type": "http.response.body", "body": fast, "more_body": len(fast) < len(body)})
        rest = body[len(fast):]
        while rest:
            await asyncio.sleep(0.05)
            step = 256 if repo.trickle_after is not None else len(rest)  # a test turning the crawl off ends it
            chunk, rest = rest[:step], rest[step:]
            await send({"type": "http.response.body", "body": chunk, "more_body": bool(rest)})


def _entry(name: str, data: bytes) -> dict:
    """A tree entry as the hub lists it: the git blob id, and for files kept in LFS (here, all but
    JSON) their SHA-256."""
    entry = {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
    if not name.endswith(".json"):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


async def _send(send, status: int, body: bytes, headers: dict[str, str]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers | {"content-length": str(len(body))})})
    await send({"type": "http.response.body", "body": body})


class RunningHub(RunningServer):
    """The fake hub on 127.0.0.1 in a background thread; `endpoint` is what HF_ENDPOINT takes."""

    @property
    def endpoint(self) -> str:
        return self.base_url.removesuffix("/v1")


def serve(repo: HubRepo) -> RunningHub:
    running = RunningHub(FakeHub(repo))  # type: ignore[arg-type]
    return running.__enter__()


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come true in time")
        time.sleep(0.02)
