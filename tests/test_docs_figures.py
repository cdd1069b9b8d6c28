"""The README's first table is what its command prints (scripts/docs_figures.py regenerates it), and
the check notices a figure edited by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "scripts" / "docs_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    texts = {figure.file: (ROOT / figure.file).read_text(encoding="utf-8") for figure in module.FIGURES}
    return module, texts


@pytest.mark.slow  # 11 s: the synthetic set generated afresh and the README's command run
def test_the_readme_table_is_what_its_command_prints(figures, tmp_path):
    module, texts = figures
    outputs = {figure.name: module.printed(figure, tmp_path / "fresh-cache") for figure in module.FIGURES}  # a newcomer's first run
    assert module.differences(texts, outputs) == []
    assert "AUROC" in outputs["first-table"] and outputs["first-table"].startswith("expert/patchknn on synthetic-quick")


def test_an_edited_figure_is_noticed(figures):
    module, texts = figures
    body = module.quoted(texts["README.md"], "first-table")
    assert body is not None and body.startswith("expert/patchknn on synthetic-quick")
    outputs = {"first-table": body}  # what the command printed when the README was last regenerated
    assert module.differences(texts, outputs) == []
    average = next(line for line in body.splitlines() if line.startswith("Average"))
    edited = texts["README.md"].replace(average, average[:-1] + ("1" if average[-1] != "1" else "2"))
    assert module.differences({**texts, "README.md": edited}, outputs) == [
        "README.md: figure 'first-table' differs from what `iadbench eval --model expert/patchknn` prints; run python scripts/docs_figures.py"]
    assert "no block" in module.differences({**texts, "README.md": "no table here"}, outputs)[0]


def test_every_file_the_docs_name_exists():
    """A page that names a module, a data table, a script or a test names one that is there (a layout
    change once left paths behind)."""
    import re

    named = re.compile(r"(?<![\w/])(?:harness|question_gen|benchmarks|tests|scripts|prompts)/[\w/.-]+\.(?:py|toml|j2|sh)\b")
    pages = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [f"{page.name}: {path}" for page in pages for path in sorted(set(named.findall(page.read_text(encoding="utf-8")))) if not (ROOT / path).exists()]
    assert missing == []
