"""Shared fixtures: an isolated cache, the synthetic question set, and a tiny MMAD-layout tree."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

# Libraries' own caches (Hugging Face datasets' parquet round trip, matplotlib's font cache) go to a
# temporary folder, never the user's home: set before any of them is imported.
_LIBRARY_CACHES = Path(tempfile.mkdtemp(prefix="iadbench-test-caches-"))
os.environ["HF_HOME"] = str(_LIBRARY_CACHES / "huggingface")
os.environ["HF_DATASETS_CACHE"] = str(_LIBRARY_CACHES / "huggingface" / "datasets")
os.environ["MPLCONFIGDIR"] = str(_LIBRARY_CACHES / "matplotlib")

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Keep generated data out of the user's home: every test shares one temp cache."""
    cache = tmp_path_factory.mktemp("iadbench-cache")
    patcher = pytest.MonkeyPatch()
    patcher.setenv("IADBENCH_CACHE", str(cache))
    yield cache
    patcher.undo()


@pytest.fixture(scope="session")
def synthetic_set(isolated_cache) -> Path:
    """The built-in synthetic question set's folder (mmad.json + Synthetic/...)."""
    from harness.storage.sources import synthetic_question_set

    return synthetic_question_set(seed=0)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny random models of every supported architecture, saved as checkpoints (about 2 s in all)."""
    from harness.testing.tiny_vlms import ARCHITECTURES, build_tiny_vlm

    root = tmp_path_factory.mktemp("tiny-vlms")
    return {architecture: build_tiny_vlm(architecture, root / architecture) for architecture in ARCHITECTURES}


def write_image(path: Path, value: int = 128, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


def write_mask(path: Path, box: tuple[int, int, int, int], size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((size, size), dtype=np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    Image.fromarray(mask).save(path)


def detection(answer_yes: bool) -> dict:
    return {"Question": "Is there any defect in the object?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "A" if answer_yes else "B", "type": "Anomaly Detection"}


def build_mmad_tree(root: Path) -> dict:
    """A miniature of MMAD's release: DS-MVTec, MVTec-AD templates, VisA, MVTec-LOCO, all nine types."""
    files = [
        "DS-MVTec/bottle/image/broken_large/000.png",
        "DS-MVTec/bottle/image/good/001.png",
        "MVTec-AD/bottle/train/good/000.png",
        "MVTec-AD/bottle/train/good/001.png",
        "VisA/candle/test/bad/002.JPG",
        "VisA/candle/train/good/010.JPG",
        "MVTec-LOCO/breakfast_box/test/logical_anomalies/000.png",
        "MVTec-LOCO/breakfast_box/train/good/000.png",
    ]
    for relative in files:
        write_image(root / relative)
    write_mask(root / "DS-MVTec/bottle/rbg_mask/broken_large/000_rgb_mask.png", (0, 0, 8, 8))
    write_mask(root / "VisA/candle/ground_truth/bad/002.png", (20, 20, 30, 30))
    write_mask(root / "MVTec-LOCO/breakfast_box/ground_truth/logical_anomalies/000/000.png", (0, 0, 5, 5))
    write_mask(root / "MVTec-LOCO/breakfast_box/ground_truth/logical_anomalies/000/001.png", (10, 10, 15, 15))
    mmad = {
        "DS-MVTec/bottle/image/broken_large/000.png": {
            "conversation": [
                detection(True),
                {"Question": "What type of defect?", "Options": {"A": "Crack", "B": "Broken", "C": "Stain"}, "Answer": "B", "type": "Defect Classification"},
                {"Question": "Where is the defect?", "Options": {"A": "Top left.", "B": "Center."}, "Answer": "A", "type": "Defect Localization"},
                {"Question": "Describe it.", "Options": {"A": "Large break.", "B": "Small dot."}, "Answer": "A", "type": "Defect Description"},
                {"Question": "What follows?", "Options": {"A": "Leaks.", "B": "Nothing.", "C": "Shines.", "D": "Floats."}, "Answer": "A", "type": "Defect Analysis"},
            ],
            "mask_path": "rbg_mask/broken_large/000_rgb_mask.png",
            "similar_templates": ["MVTec-AD/bottle/train/good/001.png"],
            "random_templates": ["MVTec-AD/bottle/train/good/000.png", "MVTec-AD/bottle/train/good/001.png"],
        },
        "DS-MVTec/bottle/image/good/001.png": {
            "conversation": [
                detection(False),
                {"Question": "What is it?", "Options": {"A": "Bottle.", "B": "Cable."}, "Answer": "A", "type": "Object Classification"},
                {"Question": "Its shape?", "Options": {"A": "Round.", "B": "Square."}, "Answer": "A", "type": "Object Structure"},
            ],
            "mask_path": "",
            "similar_templates": ["MVTec-AD/bottle/train/good/001.png"],
            "random_templates": ["MVTec-AD/bottle/train/good/000.png"],
        },
        "VisA/candle/test/bad/002.JPG": {
            "conversation": [
                detection(True),
                {"Question": "How many wicks?", "Options": {"A": "One.", "B": "Two.", "C": "Three.", "D": "Four.", "E": "Five."}, "Answer": "A", "type": "Object Details"},
                {"Question": "What is analysed?", "Options": {"A": "Wax.", "B": "Glass."}, "Answer": "A", "type": "Object Analysis"},
            ],
            "mask_path": "ground_truth/bad/002.png",
            "similar_templates": [],
            "random_templates": ["VisA/candle/train/good/010.JPG"],
        },
        "MVTec-LOCO/breakfast_box/test/logical_anomalies/000.png": {
            "conversation": [detection(True)],
            "mask_path": "ground_truth/logical_anomalies/000",
            "similar_templates": [],
            "random_templates": ["MVTec-LOCO/breakfast_box/train/good/000.png"],
        },
    }
    (root / "mmad.json").write_text(json.dumps(mmad, indent=2))
    return mmad


@pytest.fixture
def mmad_tree(tmp_path) -> Path:
    root = tmp_path / "MMAD"
    build_mmad_tree(root)
    return root


@pytest.fixture
def server():
    """A factory: server(**config) starts the fake OpenAI-compatible server (real HTTP) for a test."""
    from harness.testing.fake_openai import FakeOpenAI, RunningServer, ServerConfig

    started = []

    def start(**config):
        running = RunningServer(FakeOpenAI(ServerConfig(**config))).__enter__()
        started.append(running)
        return running

    yield start
    for running in started:
        running.__exit__()


def question_count(mmad_json: Path) -> int:
    """Questions in a question file: tests compare with this, not with a number that changes
    whenever generation learns to skip one more doubtful question."""
    return sum(len(record["conversation"]) for record in json.loads(mmad_json.read_text()).values())
