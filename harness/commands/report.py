"""`iadbench report`: compare run folders as HTML, Markdown, CSV (official layout) or JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.flags import number_at_least
from harness.errors import IadbenchError


def register(commands) -> None:
    report = commands.add_parser("report", help="compare run folders: HTML, Markdown, CSV (official MMAD layout) or JSON")
    report.add_argument("runs", nargs="+", help="run folders")
    report.add_argument("--out", help="output file (default report.<format>); a name without a suffix, or a folder, gets report.<format> inside it (csv: a folder of files)")
    report.add_argument("--format", choices=["html", "md", "csv", "json"], help="default: from --out's suffix, else html")
    report.add_argument("--published", choices=["auto", "always", "never"], default="auto", help="MMAD's published rows: auto shows them for runs on MMAD data")
    report.add_argument("--gallery-run", type=number_at_least(0), default=None, help="which run (0-based, in the order given) the failure gallery shows (default: the first run that got anything wrong)")
    report.add_argument("--gallery-hide-declined", action="store_true", help="leave the questions a model declined out of the failure gallery (an expert declines whole subtasks)")
    report.add_argument("--gallery-size", type=number_at_least(0), default=60, help="failures shown in the gallery")
    report.set_defaults(handler=_report)


def _arms(folder: Path) -> list[Path]:
    """An ablation folder's arms, in the order the ablation ran them (its baseline first), then
    any other run folders inside it by name."""
    if not folder.is_dir() or (folder / "spec.json").is_file():
        return []
    found = sorted(p for p in folder.iterdir() if (p / "spec.json").is_file())
    import json

    from harness.errors import RunFolderError
    from harness.storage.runfiles import read_inside

    try:  # the ablation folder is iadbench's own: its record is read without following a link
        ordered = [Path(row["run"]).name for row in json.loads(read_inside(folder, "ablation.json", what="ablation folder"))["rows"]]
    except (OSError, ValueError, KeyError, TypeError, RunFolderError):
        ordered = []
    rank = {name: index for index, name in enumerate(ordered)}
    return sorted(found, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def _report(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from harness.report.runs import label_runs, load_run
    from harness.run.runlog import RunFolder

    paths, seen = [], set()
    for path in map(Path, args.runs):  # an ablation folder stands for its arms
        for found in _arms(path) or [path]:
            if found.resolve() in seen:  # one run named twice would be compared with itself
                print(f"iadbench: note: {found} is given more than once; it is reported once", file=sys.stderr)
                continue
            seen.add(found.resolve())
            paths.append(found)
    with ExitStack() as held:
        for path in paths:  # read while no eval or score writes them
            held.enter_context(RunFolder.open(path).lock(shared=True))
        return _write_report(args, label_runs([load_run(path) for path in paths]))


def _write_report(args: argparse.Namespace, runs) -> int:
    from harness.storage.files import write_text_atomically
    from harness.report.build import build_report
    from harness.report.render import csv_files, html, json_text, markdown

    given = Path(args.out) if args.out else None
    # an --out without a suffix (or a folder that exists) is a folder: the report goes in it as report.<format>
    folder = given is not None and (given.is_dir() or not given.suffix)
    fmt = args.format or (given.suffix.lstrip(".") if given is not None and not folder else "html")
    fmt = {"htm": "html", "markdown": "md"}.get(fmt, fmt)
    if fmt == "csv":
        out = Path(args.out or "report_csv")
        for path in csv_files(runs, out):
            print(f"wrote {path}")
        return 0
    if fmt not in ("html", "md", "json"):
        raise IadbenchError(f"--format {fmt!r}: use html, md, csv or json")
    report = build_report(runs, published=args.published, gallery_run=args.gallery_run, gallery_size=args.gallery_size, gallery_hide_declined=args.gallery_hide_declined)
    text = {"html": html, "md": markdown, "json": json_text}[fmt](report)
    out = given / f"report.{fmt}" if folder and given is not None else Path(args.out or f"report.{fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)  # --out into a folder not made yet: make it
    write_text_atomically(out, text)
    print(f"wrote {out} ({len(text.encode()) / 1e6:.1f} MB, {len(runs)} run{'' if len(runs) == 1 else 's'})")
    return 0
