"""`iadbench fetch mmad|robustmad`: a benchmark's files brought to a folder at a pinned revision,
then checked: every file against the hash its host publishes, each question file against the
releases iadbench knows (SHA-256 and question count), every image it names present, what is
missing listed by name.

Where the files come from is data (harness/data/fetch.toml): MMAD from its Hugging Face dataset
(`huggingface_hub` lists the revision's files with their LFS SHA-256 or git blob ids and builds
the URLs and auth headers), RobustMAD's question files from GitHub. Each file arrives as
NAME.part and is renamed into place only when whole and verified, so a run killed at any moment
resumes with a Range request where it stopped (huggingface_hub's own downloader starts a killed
file over). Archives that arrive (MMAD's ALL_DATA.zip on some revisions) are unpacked in place,
each member's path checked to stay inside the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from harness.data.releases import release_for
from harness.errors import ConfigError, DataError
from harness.storage.paths import resolve_in_data_root, resolve_inside
from harness.storage.terminal import write_control

CHUNK = 1 << 20
# Files listed without a size (question files from raw GitHub, checked by their git blob id) are
# a few megabytes; a server sending more than this is not sending them.
MAX_UNLISTED_BYTES = 1 << 30
WORKERS = 8  # MMAD is ~30,000 small files: latency, not bandwidth, sets the pace


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    source: str  # hub or github
    repo: str
    revision: str
    endpoint: str
    question_files: list[str]
    data: str
    images_hint: str
    by_hand: str  # what to do where the host cannot be reached: the files placed by hand
    git_blobs: dict[str, str] = field(default_factory=dict)  # a non-hub source's files by their blob ids, to check each download


@dataclass(frozen=True)
class Remote:
    """One file to fetch: where from, and the hash its host publishes for it."""

    path: str
    url: str
    size: int | None = None
    sha256: str | None = None  # an LFS file's
    git_blob: str | None = None  # a plain git file's blob id (sha1 of "blob SIZE\0" + bytes)


@dataclass
class FetchReport:
    folder: Path
    commit: str = ""
    downloaded: int = 0
    files: dict[str, dict] = field(default_factory=dict)  # question file → sha256, release, questions
    missing: list[str] = field(default_factory=list)
    referenced: int = 0

    @property
    def complete(self) -> bool:
        return not self.missing and all(f["release"] for f in self.files.values())


def sources() -> dict[str, Source]:
    data = tomllib.loads(resources.files("harness.data").joinpath("fetch.toml").read_text(encoding="utf-8"))
    return {name: Source(name=name, **entry) for name, entry in data.items()}


def fetch(name: str, out: Path, *, revision: str | None = None, endpoint: str | None = None, images: Path | None = None,
          say: Callable[[str], None] = print) -> FetchReport:
    """Bring `name` into `out` and check it; `images`: where the images it names are looked for
    (default `out`; eval's --data-root), for datasets you already keep elsewhere."""
    known = sources()
    if name not in known:
        raise ConfigError(f"fetch {name!r}: iadbench fetches {', '.join(known)}")
    source = known[name]
    revision = revision or source.revision
    endpoint = (endpoint or (os.environ.get("HF_ENDPOINT") if source.source == "hub" else None) or source.endpoint).rstrip("/")
    out.mkdir(parents=True, exist_ok=True)
    pinned = revision == source.revision  # another revision's files have other blob ids
    commit, remotes = _hub_files(source, revision, endpoint) if source.source == "hub" else (revision, [
        Remote(f, f"{endpoint}/{source.repo}/{revision}/{f}", git_blob=source.git_blobs.get(f) if pinned else None) for f in source.question_files])
    say(f"fetching {source.repo} @ {commit} into {out}: {len(remotes):,} files")
    try:
        downloaded = _download_all(remotes, out, _hub_headers() if source.source == "hub" else {})
    except DataError as error:
        raise DataError(f"{error}. Without a network: {source.by_hand}") from None
    _unpack_archives(out, say)
    report = verify(source, out, images)
    report.commit, report.downloaded = commit, downloaded
    return report


def _hub_files(source: Source, revision: str, endpoint: str) -> tuple[str, list[Remote]]:
    """The revision's commit and every file in it, with its LFS SHA-256 or git blob id."""
    try:
        from huggingface_hub import HfApi, hf_hub_url
    except ImportError:  # pragma: no cover - transformers brings it; a bare install may not
        raise ConfigError("fetching from the Hugging Face Hub needs huggingface_hub: pip install huggingface_hub") from None
    api = HfApi(endpoint=endpoint)
    try:
        commit = api.dataset_info(source.repo, revision=revision).sha or revision
        entries = [e for e in api.list_repo_tree(source.repo, recursive=True, revision=commit, repo_type="dataset") if hasattr(e, "blob_id")]
    except Exception as error:  # noqa: BLE001 - the hub client's transport errors change with its version (requests, httpx, httpx2): all are network failures here
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status == 404:
            raise DataError(f"fetch {source.name}: {endpoint} has no revision {revision!r} of {source.repo} (HTTP 404); give a commit, tag or branch it has to --revision") from None
        first = (str(error).strip().splitlines() or [""])[0]
        raise DataError(f"fetch {source.name}: {endpoint}: {type(error).__name__}: {first}; check the network (or --endpoint), then run the same command again. "
                        f"Without a network: {source.by_hand}") from None
    return commit, [Remote(e.path, hf_hub_url(source.repo, e.path, repo_type="dataset", revision=commit, endpoint=endpoint), e.size,
                           e.lfs.sha256 if e.lfs else None, None if e.lfs else e.blob_id) for e in entries]


def _hub_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers()  # the user's token when one is configured (gated or private copies)


class _Progress:
    """Files and bytes so far, rate and ETA, errors so far: one line, refreshed at most twice a second."""

    def __init__(self, total_files: int, total_bytes: int | None) -> None:
        self.total_files, self.total_bytes = total_files, total_bytes
        self.files = self.bytes = self.errors = 0  # files: tried (arrived or failed); errors: failed
        self.started = self.shown = time.monotonic()

    def add(self, files: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        self.files, self.bytes, self.errors = self.files + files, self.bytes + nbytes, self.errors + errors
        now = time.monotonic()
        if now - self.shown >= 0.5 or self.files == self.total_files:
            self.shown = now
            rate = self.bytes / max(now - self.started, 1e-6)
            left = (self.total_bytes - self.bytes) / rate if self.total_bytes and rate > 0 else None
            eta = f", ETA {left:,.0f} s" if left is not None and left > 0 else ""
            arrived = self.files - self.errors  # "4/4 files, 4 errors" read as if all four had come
            write_control(sys.stderr, "\r")  # the line is redrawn in place: our carriage return, past the output guard
            print(f"  {arrived:,}/{self.total_files:,} files arrived, {self.errors:,} failed, {self.bytes / 1e6:,.1f} MB at {rate / 1e6:,.1f} MB/s{eta}",
                  end="\n" if self.files == self.total_files else "", file=sys.stderr, flush=True)


def _download_all(remotes: list[Remote], out: Path, headers: dict[str, str]) -> int:
    """Every file not yet here and whole; the first failure is raised once the others finished."""
    todo = []
    for remote in remotes:
        target = resolve_inside(out, remote.path, what="file of the repository")
        if not (target.is_file() and (remote.size is None or target.stat().st_size == remote.size)):
            todo.append((remote, target))
    if not todo:
        return 0
    sizes = [r.size for r, _ in todo]
    progress = _Progress(len(todo), None if None in sizes else sum(s for s in sizes if s is not None))
    failures: list[str] = []

    def one(item: tuple[Remote, Path]) -> None:
        remote, target = item
        try:
            _download(remote, target, headers, progress)
            progress.add(files=1)
        except DataError as error:
            failures.append(str(error))
            progress.add(files=1, errors=1)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, todo))
    if failures:
        raise DataError(f"{len(failures):,} of {len(todo):,} files did not arrive (first: {failures[0]}); what arrived is kept, run the same command again to resume")
    return len(todo)


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry the Authorization header to another host: the hub sends
    large files from a CDN, which must not see the user's token (and a presigned URL refuses a
    second credential)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameHostAuth())


def _download(remote: Remote, target: Path, headers: dict[str, str], progress: _Progress | None = None) -> None:
    """One file into TARGET.part (resumed from its size with a Range request), checked against its
    published hash, then renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.is_file() else 0
    if remote.size is not None and have > remote.size:
        partial.unlink()
        have = 0
    if remote.size is None or have < remote.size:
        request = urllib.request.Request(remote.url, headers=headers | ({"Range": f"bytes={have}-"} if have else {}))
        try:
            with _OPENER.open(request, timeout=60) as response:
                if have and response.status != 206:  # a server that ignores Range sends it all
                    have = 0
                written, limit = have, remote.size if remote.size is not None else MAX_UNLISTED_BYTES
                with open(partial, "ab" if have else "wb") as sink:
                    while chunk := response.read1(CHUNK):  # what has arrived: on disk as it comes
                        if written + len(chunk) > limit:
                            # a server sending more than the file's published size: not a byte past it is kept
                            sink.write(chunk[: limit - written])
                            overflow = True
                            break
                        sink.write(chunk)
                        written += len(chunk)
                        if progress:
                            progress.add(nbytes=len(chunk))
                    else:
                        overflow = False
            if overflow:
                partial.unlink()
                published = f"the {limit:,} bytes published for it" if remote.size is not None else f"{limit:,} bytes, more than any question file holds"
                raise DataError(f"{remote.path}: the server sent more than {published}; nothing past them was written, and the file was removed (run the same command again to fetch it whole)")
        except urllib.error.HTTPError as error:
            raise DataError(f"{remote.path}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise DataError(f"{remote.path}: {getattr(error, 'reason', error)}") from None
    problem = _check(remote, partial)
    if problem:
        partial.unlink()  # a wrong file is never kept: the next run fetches it whole
        raise DataError(f"{remote.path}: {problem}")
    partial.replace(target)


def _check(remote: Remote, path: Path) -> str | None:
    """Why the file is not the one its host published, or None."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"{size:,} bytes where {remote.size:,} were published"
    if remote.sha256 is None and remote.git_blob is None:
        return None
    sha256, blob = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            sha256.update(chunk)
            blob.update(chunk)
    if remote.sha256 and sha256.hexdigest() != remote.sha256:
        return f"SHA-256 {sha256.hexdigest()[:16]}… is not the published {remote.sha256[:16]}…"
    if remote.git_blob and blob.hexdigest() != remote.git_blob:
        return f"git blob {blob.hexdigest()[:12]} is not the published {remote.git_blob[:12]}"
    return None


def _unpack_archives(out: Path, say: Callable[[str], None]) -> None:
    for archive in sorted(out.glob("*.zip")):
        marker = out / f".{archive.name}.unpacked"
        stamp = f"{archive.stat().st_size}"
        if marker.is_file() and marker.read_text() == stamp:
            continue
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            for member in members:
                try:  # a member named ../x or /x would write outside the folder
                    resolve_inside(out, member.filename, what=f"{archive.name} member")
                except DataError as error:
                    raise DataError(f"{archive}: {error}; nothing of it was unpacked") from None
            bundle.extractall(out)
        marker.write_text(stamp)
        say(f"  {archive.name}: {len(members):,} entries unpacked")


def _mmad(data: dict) -> tuple[int, list[str]]:
    paths: list[str] = []
    questions = 0
    for key, record in data.items():
        questions += len(record.get("conversation") or [])
        paths.append(key)
        if record.get("mask_path"):  # relative to the category's folder (MVTec LOCO's: a folder of masks)
            paths.append("/".join(key.split("/")[:2] + [str(record["mask_path"])]))
        paths += [p for p in list(record.get("similar_templates") or []) + list(record.get("random_templates") or []) if p]
    return questions, paths


def _robustmad(data: dict) -> tuple[int, list[str]]:
    images = data.get("images") or []
    return sum(len(i.get("questions") or []) for i in images), [p for i in images for p in (i.get("image_path"), i.get("reference_image_path")) if p]


LAYOUTS = {"mmad": _mmad, "robustmad": _robustmad}


def verify(source: Source, out: Path, images: Path | None = None) -> FetchReport:
    """Each question file's release and question count, and every image it names under `out`."""
    report = FetchReport(out)
    wanted: dict[str, None] = {}
    for filename in source.question_files:
        path = out / filename
        if not path.is_file():
            report.missing.append(filename)
            continue
        raw = path.read_bytes()
        digest, blob = hashlib.sha256(raw).hexdigest(), hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not the JSON of a question file ({error}); delete it and fetch again") from None
        questions, paths = LAYOUTS[source.name](data)
        release = release_for(digest, blob)
        report.files[filename] = {"sha256": digest, "release": release.name if release else None, "questions": questions,
                                  "expected_questions": release.questions if release else None}
        wanted.update(dict.fromkeys(paths))
    report.referenced = len(wanted)
    for relative in wanted:
        try:
            found = resolve_in_data_root(images or out, relative, what="image path")
            present = found.is_file() or (found.is_dir() and any(found.iterdir()))
        except DataError:
            report.missing.append(f"{relative} (outside the folder: never read)")
            continue
        if not present:
            report.missing.append(relative)
    return report
