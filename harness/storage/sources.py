"""Resolving a `--data` source string to a question file and its data root.

    synthetic            the built-in synthetic suite (generated into the cache on first use)
    synthetic:SEED       the same, drawn with another seed
    mmad:PATH            an MMAD-format mmad.json (or the folder holding it)
    mmad                 $IADBENCH_MMAD (the path of MMAD's mmad.json)
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

SYNTHETIC_SIZE = 256


# Every --data form, for the help text (generated from here so it cannot drift from resolve_data).
DATA_SOURCES = {
    "synthetic": "the built-in synthetic set",
    "synthetic:SEED": "the same, drawn with another seed",
    "mmad": "$IADBENCH_MMAD (MMAD's mmad.json)",
    "mmad:PATH": "an MMAD-format mmad.json or its folder (MMAD's release, or any set iadbench generate wrote)",
    "hf:PATH": "a question set saved as a Hugging Face dataset",
    "mvtec:DIR": "--task gpt4vad: an MVTec AD tree",
    "visa:DIR": "--task gpt4vad: a VisA tree",
    "robustmad:PATH": "--task robustmad: RobustMAD_MCQ.json or RobustMAD_MCQ_low.json (images beside it, or under --data-root)",
    "robustmad": "--task robustmad: $IADBENCH_ROBUSTMAD/RobustMAD_MCQ.json (robustmad-low: its _low file)",
}


@dataclass(frozen=True)
class ResolvedData:
    json_path: Path
    root: Path


def cache_dir() -> Path:
    return Path(os.environ.get("IADBENCH_CACHE") or Path.home() / ".cache" / "iadbench")


def synthetic_question_set(seed: int = 0, size: int = SYNTHETIC_SIZE) -> Path:
    """The synthetic question set's folder, built once and atomically (a killed build leaves nothing)."""
    from question_gen.synthetic.version import GENERATOR_VERSION

    final = cache_dir() / f"synthetic-v{GENERATOR_VERSION}-seed{seed}-size{size}"
    if (final / "mmad.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    from question_gen.generate import generate_synthetic_question_set

    building = Path(tempfile.mkdtemp(prefix=".building-", dir=final.parent))
    try:
        generate_synthetic_question_set(building, seed=seed, size=size)
        try:
            os.rename(building, final)
        except OSError:  # another process finished first: theirs is identical
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final


def resolve_gpt4vad_source(source: str, seed: int = 0):
    """(dataset name, root, categories) of an AD dataset for the GPT-4V-AD task:
    synthetic[:SEED], mvtec:DIR or visa:DIR."""
    from harness.adsets.layouts import read_mvtec_layout, read_visa_layout

    kind, _, argument = source.partition(":")
    if kind == "synthetic":
        root = synthetic_question_set(int(argument) if argument else 0) / "Synthetic"
        return "Synthetic", root, read_mvtec_layout(root)
    if kind in ("mvtec", "visa") and argument:
        root = Path(argument).expanduser()
        reader = read_mvtec_layout if kind == "mvtec" else read_visa_layout
        return root.name, root, reader(root)
    raise ConfigError(f"--data {source!r}: the gpt4vad task reads synthetic, mvtec:DIR or visa:DIR")


def resolve_data(source: str, data_root: str | None = None) -> ResolvedData:
    kind, _, argument = source.partition(":")
    if kind == "synthetic":
        try:
            seed = int(argument) if argument else 0
        except ValueError:
            raise ConfigError(f"--data {source!r}: the synthetic seed must be an integer, like synthetic:1") from None
        folder = synthetic_question_set(seed)
        return ResolvedData(folder / "mmad.json", Path(data_root) if data_root else folder)
    if kind == "mmad":
        path_text = argument or os.environ.get("IADBENCH_MMAD", "")
        if not path_text:
            raise ConfigError(
                "the MMAD data is needed: `iadbench fetch mmad --out data/mmad` (hub dataset jiang-cc/MMAD), then pass "
                "--data mmad:/path/to/MMAD/mmad.json or set IADBENCH_MMAD to that path"
            )
        path = Path(path_text).expanduser()
        if path.is_dir():
            path = path / "mmad.json"
        return ResolvedData(path, Path(data_root) if data_root else path.parent)
    if kind == "hf" and argument:
        from harness.data.hf_dataset import materialised

        json_path = materialised(Path(argument).expanduser(), cache_dir())
        return ResolvedData(json_path, json_path.parent)
    raise ConfigError(f"--data {source!r}: unknown source; use synthetic, synthetic:SEED, mmad:PATH/mmad.json or hf:PATH (a set saved as a Hugging Face dataset)")


def data_label(data: str) -> str:
    """A short readable name of a --data value for run ids and table headers: synthetic:1 →
    synthetic-1, mmad:/data/MMAD/mmad.json → mmad-MMAD."""
    kind, _, argument = data.partition(":")
    if not argument:
        return kind
    path = Path(argument)
    name = path.parent.name if path.suffix == ".json" else path.name
    return re.sub(r"[^A-Za-z0-9.]+", "-", f"{kind}-{name or argument}").strip("-")[:40]
