"""`iadbench fetch` against a local stand-in of the Hugging Face Hub and of raw GitHub (real HTTP,
the real huggingface_hub client): files arrive at the pinned revision, are checked against the
known releases, a killed transfer resumes with a Range request, missing images are named."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import releases as releases_module
from harness.data.releases import Release
from harness.testing.fake_hub import HubRepo, serve, wait_for
from tests.test_robustmad import build_fixture

PIN = "c4ed190dcb530f2f673ab293e575ad32054bb3cf"


def mmad_files(big: int = 0) -> dict[str, bytes]:
    """A small MMAD-shaped repository: two query images, a template, a mask; `big` pads one image."""
    conversation = [{"Question": "Is there any defect in the object?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "A", "type": "Anomaly Detection"}]
    mmad = {
        "DS-MVTec/bottle/image/broken_large/000.png": {"conversation": conversation * 2, "mask_path": "mask/broken_large/000.png",
                                                       "similar_templates": [], "random_templates": ["MVTec-AD/bottle/train/good/001.png"]},
        "VisA/candle/test/bad/002.JPG": {"conversation": conversation, "mask_path": "", "similar_templates": [], "random_templates": ["MVTec-AD/bottle/train/good/001.png"]},
    }
    files = {"mmad.json": json.dumps(mmad, indent=1).encode(), "domain_knowledge.json": b"{}"}
    for index, path in enumerate(["DS-MVTec/bottle/image/broken_large/000.png", "DS-MVTec/bottle/mask/broken_large/000.png", "VisA/candle/test/bad/002.JPG",
                                  "MVTec-AD/bottle/train/good/001.png"]):
        files[path] = bytes([index]) * (big if index == 0 and big else 300)
    return files


@pytest.fixture
def known(monkeypatch):
    """Make a question file's digest a known release, as releases.toml makes the real ones."""
    table = list(releases_module.releases())

    def add(data: bytes, questions: int, name: str = "fixture release") -> None:
        table.append(Release(name=name, sha256=hashlib.sha256(data).hexdigest(), questions=questions, official=True))

    monkeypatch.setattr(releases_module, "releases", lambda: table)
    return add


def test_fetch_mmad_downloads_the_pinned_revision_and_checks_it(tmp_path, capsys, known):
    files = mmad_files()
    repo = HubRepo("jiang-cc/MMAD", files)
    hub = serve(repo)
    try:
        out = tmp_path / "MMAD"
        # an unknown release is fetched and said to be one (exit 2, one line, the data kept)
        assert main(["fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint]) == 2
        captured = capsys.readouterr()
        assert "is no release iadbench knows" in captured.out and "is not complete" in captured.err
        assert all((out / name).read_bytes() == data for name, data in files.items())
        assert any(path.endswith(f"/tree/{PIN}") for _, path, _ in repo.requests), "the pinned revision is asked for"
        known(files["mmad.json"], 3)
        assert main(["fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint]) == 0
        captured = capsys.readouterr().out
        assert "mmad.json: 3 questions; release fixture release (SHA-256 checked)" in captured
        assert "images: all 4 files the question files name are present" in captured
        assert f"ready: pass --data mmad:{out.resolve()}/mmad.json" in captured
        # the data it says to pass works
        assert main(["eval", "--model", "oracle", "--data", f"mmad:{out}/mmad.json", "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
        # another revision is asked for by name; one the hub lacks is one line
        assert main(["fetch", "mmad", "--out", str(tmp_path / "other"), "--endpoint", hub.endpoint, "--revision", "v9"]) == 2
        assert "has no revision 'v9' of jiang-cc/MMAD (HTTP 404)" in capsys.readouterr().err
        # nothing listening: one line, exit 2, for either source
        for name in ("mmad", "robustmad"):
            assert main(["fetch", name, "--out", str(tmp_path / f"down-{name}"), "--endpoint", "http://127.0.0.1:9"]) == 2
            assert capsys.readouterr().err.splitlines()[-1].startswith("iadbench: error:")
    finally:
        hub.__exit__()


def test_the_token_goes_to_the_hub_and_never_to_its_cdn(tmp_path, monkeypatch, known):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_for_the_test")
    files = mmad_files()
    known(files["mmad.json"], 3)
    repo = HubRepo("jiang-cc/MMAD", files, cdn=True)
    hub = serve(repo)
    try:
        assert main(["fetch", "mmad", "--out", str(tmp_path / "MMAD"), "--endpoint", hub.endpoint]) == 0
        assert all((tmp_path / "MMAD" / name).read_bytes() == data for name, data in files.items())
        cdn = [authorized for path, authorized in repo.authorized if path.startswith("/cdn/")]
        hub_calls = [authorized for path, authorized in repo.authorized if path.startswith(("/api/", "/datasets/"))]
        assert len(cdn) == 4 and not any(cdn), "the CDN never sees the token"
        assert hub_calls and all(hub_calls), "the hub does"
        assert "hf_secret_token_for_the_test" not in "".join(p.read_text(errors="ignore") for p in (tmp_path / "MMAD").rglob("*") if p.is_file())
    finally:
        hub.__exit__()


def test_fetch_names_every_missing_file(tmp_path, capsys, known):
    files = mmad_files()
    del files["MVTec-AD/bottle/train/good/001.png"], files["DS-MVTec/bottle/mask/broken_large/000.png"]  # MMAD issue #6: files missing from the hub copy
    known(files["mmad.json"], 3)
    hub = serve(HubRepo("jiang-cc/MMAD", files))
    try:
        out = tmp_path / "MMAD"
        assert main(["fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint]) == 2
        captured = capsys.readouterr()
        assert "missing: 2 of 4 files" in captured.out and "  MVTec-AD/bottle/train/good/001.png" in captured.out
        assert (out / "missing.txt").read_text().splitlines() == ["DS-MVTec/bottle/mask/broken_large/000.png", "MVTec-AD/bottle/train/good/001.png"]
        # one line of error after the hub client's progress bar
        assert captured.err.count("iadbench: error:") == 1 and captured.err.splitlines()[-1].startswith("iadbench: error:") and "2 files missing" in captured.err
    finally:
        hub.__exit__()


def test_a_file_unlike_its_published_hash_is_named_and_never_kept(tmp_path, capsys, known):
    files = mmad_files()
    known(files["mmad.json"], 3)
    repo = HubRepo("jiang-cc/MMAD", files, corrupt={"VisA/candle/test/bad/002.JPG", "domain_knowledge.json"})
    hub = serve(repo)
    try:
        out = tmp_path / "MMAD"
        assert main(["fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint]) == 2
        error = capsys.readouterr().err.splitlines()[-1]
        assert "2 of 6 files did not arrive" in error and ("is not the published" in error)
        assert not (out / "VisA/candle/test/bad/002.JPG").exists() and not list(out.rglob("*.part"))
        assert (out / "mmad.json").read_bytes() == files["mmad.json"]  # the good ones are kept
        repo.corrupt.clear()
        assert main(["fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint]) == 0
        assert (out / "VisA/candle/test/bad/002.JPG").read_bytes() == files["VisA/candle/test/bad/002.JPG"]
    finally:
        hub.__exit__()


def test_a_killed_hub_download_resumes_where_it_stopped(tmp_path, known):
    piece = 100_000  # the first bytes of each body arrive at once, the rest crawls
    files = mmad_files(big=400_000)
    known(files["mmad.json"], 3)
    repo = HubRepo("jiang-cc/MMAD", files, trickle_after=piece)
    hub = serve(repo)
    out = tmp_path / "MMAD"
    try:
        process = subprocess.Popen([sys.executable, "-m", "harness.cli", "fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        partial = lambda: [p for p in out.rglob("*.part") if p.stat().st_size >= piece]  # noqa: E731
        wait_for(lambda: bool(partial()), timeout=60)
        process.send_signal(signal.SIGKILL)  # killed mid-file: no clean-up of any kind
        process.wait(timeout=10)
        assert not (out / "DS-MVTec/bottle/image/broken_large/000.png").exists()
        kept = partial()[0].stat().st_size
        repo.trickle_after = None
        assert main(["fetch", "mmad", "--out", str(out), "--endpoint", hub.endpoint]) == 0
        big = "/DS-MVTec/bottle/image/broken_large/000.png"
        ranges = [r for method, path, r in repo.requests if method == "GET" and path.endswith(big) and r]
        assert ranges and int(ranges[-1].removeprefix("bytes=").rstrip("-")) >= kept >= piece, ranges
        assert (out / big.lstrip("/")).read_bytes() == files[big.lstrip("/")]
    finally:
        hub.__exit__()


def robustmad_files(tmp_path: Path) -> dict[str, bytes]:
    """RobustMAD's four question files in its shapes (the open ones without options)."""
    fixture = build_fixture(tmp_path / "fixture", images=2)
    question_file = fixture.read_bytes()
    data = json.loads(question_file)
    for image in data["images"]:
        for question in image["questions"]:
            question.pop("options")
            question["answer"] = "A written answer."
    opened = json.dumps(data).encode()
    return {"RobustMAD_MCQ.json": question_file, "RobustMAD_MCQ_low.json": question_file.replace(b".png", b"_blur.png"),
            "RobustMAD_OE.json": opened, "RobustMAD_OE_low.json": opened.replace(b".png", b"_blur.png")}


def test_fetch_robustmad_resumes_checks_the_release_and_names_the_images(tmp_path, capsys, known):
    files = robustmad_files(tmp_path)
    repo = HubRepo("en-research/RobustMAD", files)
    hub = serve(repo)
    try:
        out = tmp_path / "RobustMAD"
        out.mkdir()
        (out / "RobustMAD_MCQ.json.part").write_bytes(files["RobustMAD_MCQ.json"][:1000])  # what a killed run left
        for name, data in files.items():
            known(data, 22, f"{name} (fixture)")
        # another revision than the pinned one (whose files' blob ids the fixture cannot have)
        fetch = ["fetch", "robustmad", "--out", str(out), "--endpoint", hub.endpoint, "--revision", "fixture-rev"]
        assert main(fetch) == 2
        captured = capsys.readouterr()
        assert ("GET", "/en-research/RobustMAD/fixture-rev/RobustMAD_MCQ.json", "bytes=1000-") in repo.requests
        assert (out / "RobustMAD_MCQ.json").read_bytes() == files["RobustMAD_MCQ.json"] and not (out / "RobustMAD_MCQ.json.part").exists()
        assert "RobustMAD_MCQ.json: 22 questions; release RobustMAD_MCQ.json (fixture)" in captured.out
        assert "RobustMAD_OE.json: 22 questions; release RobustMAD_OE.json (fixture)" in captured.out
        assert "missing: 8 of 8 files" in captured.out and "MVTec-AD/" in captured.out and "generate_LoQ_images.py" in captured.out
        # with the images in place (the originals; the degraded copies of the low files still missing)
        for path in (tmp_path / "fixture").rglob("*.png"):
            target = out / path.relative_to(tmp_path / "fixture")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        assert main(fetch) == 2
        assert "missing: 4 of 8 files" in capsys.readouterr().out
        assert [line for line in (out / "missing.txt").read_text().splitlines() if "_blur" not in line] == []
        # images kept elsewhere: --data-root, and the line to pass says so
        assert main([*fetch, "--data-root", str(tmp_path / "fixture")]) == 2
        captured = capsys.readouterr()
        assert "missing: 4 of 8 files" in captured.out and f"--data-root {(tmp_path / 'fixture').resolve()}" in captured.err
    finally:
        hub.__exit__()


def test_at_the_pinned_revision_each_github_file_must_be_the_published_blob(tmp_path, capsys):
    hub = serve(HubRepo("en-research/RobustMAD", robustmad_files(tmp_path)))
    try:
        out = tmp_path / "RobustMAD"
        assert main(["fetch", "robustmad", "--out", str(out), "--endpoint", hub.endpoint]) == 2
        error = capsys.readouterr().err.splitlines()[-1]
        assert "4 of 4 files did not arrive" in error and "is not the published" in error  # the fixture's files are not RobustMAD's
        assert not list(out.glob("*.json")) and not list(out.glob("*.part"))
    finally:
        hub.__exit__()


def test_an_archive_is_unpacked_inside_the_folder_only(tmp_path, capsys, known):
    files = mmad_files()
    images = {k: v for k, v in files.items() if not k.endswith(".json")}
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, data in images.items():
            archive.writestr(name, data)
    known(files["mmad.json"], 3)
    hub = serve(HubRepo("jiang-cc/MMAD", {"mmad.json": files["mmad.json"], "ALL_DATA.zip": bundle.getvalue()}))
    try:
        assert main(["fetch", "mmad", "--out", str(tmp_path / "MMAD"), "--endpoint", hub.endpoint]) == 0
        assert "ALL_DATA.zip: 4 entries unpacked" in capsys.readouterr().out
        assert all((tmp_path / "MMAD" / name).read_bytes() == data for name, data in images.items())
    finally:
        hub.__exit__()
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escaped.txt", b"x")
    hub = serve(HubRepo("jiang-cc/MMAD", {"mmad.json": files["mmad.json"], "ALL_DATA.zip": evil.getvalue()}))
    try:
        assert main(["fetch", "mmad", "--out", str(tmp_path / "evil"), "--endpoint", hub.endpoint]) == 2
        assert "escapes the data root" in capsys.readouterr().err and not (tmp_path / "escaped.txt").exists()
    finally:
        hub.__exit__()
