"""Regenerate the figures the docs quote from documented commands, or check them (`--check`).

Each figure is a block of a docs file between two marker comments, with the command that prints it:
    <!-- figure: NAME -->
    ```
    ...what the command prints...
    ```
    <!-- /figure -->
`python scripts/docs_figures.py` runs each command and rewrites its block; `--check` only compares and
exits 1 naming each block that differs (tests/test_docs_figures.py runs the check).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figure:
    name: str
    file: str  # relative to the repository root
    command: list[str]  # run with python -m harness.cli, in a scratch folder
    first: str  # the first line of the output kept (a prefix)
    last: str  # the last line kept (a prefix)


FIGURES = (
    Figure("first-table", "README.md", ["eval", "--model", "expert/patchknn"], "expert/patchknn on synthetic-quick", "official-scorer average:"),
)
_BLOCK = "<!-- figure: {name} -->\n```\n(?P<body>.*?)\n```\n<!-- /figure -->"


def printed(figure: Figure, cache: Path) -> str:
    """What the figure's command prints, from its first kept line to its last."""
    with tempfile.TemporaryDirectory() as scratch:
        env = os.environ | {"IADBENCH_CACHE": str(cache)}
        result = subprocess.run([sys.executable, "-m", "harness.cli", *figure.command, "--runs-dir", str(Path(scratch) / "runs")],
                                cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{figure.name}: `iadbench {' '.join(figure.command)}` failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(figure.first))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(figure.last))
    return "\n".join(lines[start : end + 1])


def quoted(text: str, name: str) -> str | None:
    match = re.search(_BLOCK.format(name=re.escape(name)), text, re.S)
    return match.group("body") if match else None


def differences(texts: dict[str, str], outputs: dict[str, str]) -> list[str]:
    """One line per figure whose quoted block is missing or differs from the command's output."""
    problems = []
    for figure in FIGURES:
        body = quoted(texts[figure.file], figure.name)
        if body is None:
            problems.append(f"{figure.file}: no block <!-- figure: {figure.name} -->")
        elif body != outputs[figure.name]:
            problems.append(f"{figure.file}: figure {figure.name!r} differs from what `iadbench {' '.join(figure.command)}` prints; run python scripts/docs_figures.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 naming each figure that differs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        outputs = {figure.name: printed(figure, Path(cache)) for figure in FIGURES}
    texts = {figure.file: (ROOT / figure.file).read_text(encoding="utf-8") for figure in FIGURES}
    problems = differences(texts, outputs)
    if args.check:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for figure in FIGURES:
        text = texts[figure.file]
        block = f"<!-- figure: {figure.name} -->\n```\n{outputs[figure.name]}\n```\n<!-- /figure -->"
        texts[figure.file] = re.sub(_BLOCK.format(name=re.escape(figure.name)), lambda _: block, text, flags=re.S)
        (ROOT / figure.file).write_text(texts[figure.file], encoding="utf-8")
    print(f"{len(FIGURES)} figure(s) written" + (f"; {len(problems)} had changed" if problems else ", none had changed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
