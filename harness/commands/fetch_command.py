"""`iadbench fetch mmad|robustmad`: a benchmark's data at a pinned revision, checked before use."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import DataError

SHOWN = 10  # missing files named on the terminal; all of them go to missing.txt


def register(commands) -> None:
    fetch = commands.add_parser("fetch", help="download a benchmark's data (mmad, robustmad) at a pinned revision and check it against the known releases")
    fetch.add_argument("name", choices=["mmad", "robustmad"], help="mmad: the Hugging Face dataset jiang-cc/MMAD; robustmad: its question files from GitHub (the images are MVTec AD's and VisA's)")
    fetch.add_argument("--out", help="the folder to fill (default: data/NAME); run again with the same folder to resume")
    fetch.add_argument("--revision", help="a commit, tag or branch instead of the pinned revision (a file of another release is fetched, and said to be one)")
    fetch.add_argument("--data-root", metavar="DIR", help="look for the images there rather than in --out (the MVTec AD and VisA trees you already keep; pass the same --data-root to eval)")
    fetch.add_argument("--endpoint", help="another host: a Hugging Face mirror for mmad (default $HF_ENDPOINT or huggingface.co), a raw GitHub mirror for robustmad")
    fetch.set_defaults(handler=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    from harness.data.fetch import fetch, sources
    from harness.storage.files import write_text_atomically

    out = Path(args.out or f"data/{args.name}")
    images = Path(args.data_root) if args.data_root else None
    report = fetch(args.name, out, revision=args.revision, endpoint=args.endpoint, images=images)
    for filename, info in report.files.items():
        if info["release"]:
            print(f"{filename}: {info['questions']:,} questions; release {info['release']} (SHA-256 checked)")
        else:
            print(f"{filename}: {info['questions']:,} questions; SHA-256 {info['sha256'][:16]}… is no release iadbench knows: published rows will not be shown beside its runs")
    missing_list = out / "missing.txt"
    if report.missing:
        write_text_atomically(missing_list, "".join(f"{path}\n" for path in report.missing))
        print(f"missing: {len(report.missing):,} of {report.referenced:,} files the question files name (all in {missing_list}):")
        for path in report.missing[:SHOWN]:
            print(f"  {path}")
        if len(report.missing) > SHOWN:
            print(f"  … and {len(report.missing) - SHOWN:,} more")
        print(f"  {sources()[args.name].images_hint}")
    else:
        missing_list.unlink(missing_ok=True)
        print(f"images: all {report.referenced:,} files the question files name are present")
    data = sources()[args.name].data.format(out=out.resolve()) + (f" --data-root {images.resolve()}" if images else "")
    if not report.complete:
        raise DataError(f"{out} is not complete ({len(report.missing):,} files missing, {sum(not f['release'] for f in report.files.values())} question files of no known release); "
                        f"once it is, pass --data {data}")
    print(f"ready: pass --data {data}")
    return 0
