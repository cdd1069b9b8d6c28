"""`iadbench report`: compare run folders as HTML, Markdown, CSV (official layout) or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import IadbenchError


def register(commands) -> None:
    report = commands.add_parser("report", help="compare run folders: HTML, Markdown, CSV (official MMAD layout) or JSON")
    report.add_argument("runs", nargs="+", help="run folders")
    report.add_argument("--out", help="output file (default report.<format>; a folder for csv with several runs)")
    report.add_argument("--format", choices=["html", "md", "csv", "json"], help="default: from --out's suffix, else html")
    report.add_argument("--published", choices=["auto", "always", "never"], default="auto", help="MMAD's published rows: auto shows them for runs on MMAD data")
    report.add_argument("--gallery-run", type=int, default=0, help="which run (0-based, in the order given) the failure gallery shows")
    report.add_argument("--gallery-size", type=int, default=60, help="failures shown in the gallery")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from harness.report.build import build_report
    from harness.report.render import csv_files, html, json_text, markdown
    from harness.report.runs import load_run

    paths = []
    for path in map(Path, args.runs):  # an ablation folder stands for its arms
        arms = sorted(p for p in path.iterdir() if (p / "spec.json").is_file()) if path.is_dir() and not (path / "spec.json").is_file() else []
        paths += arms or [path]
    runs = [load_run(path) for path in paths]
    fmt = args.format or (Path(args.out).suffix.lstrip(".") if args.out else "html")
    fmt = {"htm": "html", "markdown": "md"}.get(fmt, fmt)
    if fmt == "csv":
        out = Path(args.out or "report_csv")
        for path in csv_files(runs, out):
            print(f"wrote {path}")
        return 0
    if fmt not in ("html", "md", "json"):
        raise IadbenchError(f"--format {fmt!r}: use html, md, csv or json")
    report = build_report(runs, published=args.published, gallery_run=args.gallery_run, gallery_size=args.gallery_size)
    text = {"html": html, "md": markdown, "json": json_text}[fmt](report)
    out = Path(args.out or f"report.{fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)  # --out into a folder not made yet: make it
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text.encode()) / 1e6:.1f} MB, {len(runs)} runs)")
    return 0
