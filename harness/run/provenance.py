"""What spec.json records about where a run came from: package versions, the git revision of the
checkout, and backend options with credentials removed."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import harness
from harness.models.base import ModelOptions


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "iadbench": harness.__version__}
    for package in ("numpy", "pillow", "pydantic", "jinja2", "scikit-learn", "scikit-image", "openai", "torch", "transformers", "accelerate", "opencv-python-headless", "vllm", "sglang"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_revision() -> str | None:
    """The revision of the iadbench checkout that ran (with +dirty for local changes)."""
    source = Path(harness.__file__).resolve().parents[1]
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
        if revision.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True, timeout=5)
        return revision.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def recorded_options(options: ModelOptions) -> dict:
    """Backend options as spec.json keeps them: the base URL without credentials or query."""
    from harness.models.openai import redact_url

    recorded = options.model_dump()
    if recorded["base_url"]:
        recorded["base_url"] = redact_url(recorded["base_url"])
    return recorded
