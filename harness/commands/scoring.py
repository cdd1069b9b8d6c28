"""`iadbench score` and `iadbench export`: re-score a run or an MMAD answers file; write a run in MMAD's answers format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import IadbenchError


def register(commands) -> None:
    score = commands.add_parser("score", help="score a run folder or an MMAD answers file")
    score.add_argument("target", help="run folder, or an MMAD answers .json")
    score.add_argument("--mmad-compat", action="store_true", help="also print the official MMAD scorer's table and write its CSV; the run's headline stays as recorded")
    score.add_argument("--headline", choices=["strict", "mmad-compat"], help="change which score the run leads with; recorded in spec.json")
    score.add_argument("--csv", help="where to write the official-layout CSV")
    score.set_defaults(handler=_score)
    export = commands.add_parser("export", help="write a run in MMAD's answers-file format")
    export.add_argument("run")
    export.add_argument("--format", choices=["mmad"], default="mmad")
    export.add_argument("--out", help="output file (default: RUN/mmad_answers.json)")
    export.set_defaults(handler=_export)


def _score(args: argparse.Namespace) -> int:
    from harness.run.runlog import RunFolder

    target = Path(args.target)
    if not target.exists():
        raise IadbenchError(f"{target}: no such run folder or file; give a run folder (runs/<id>) or an MMAD answers .json")
    if target.is_dir():
        folder = RunFolder.open(target)
        with folder.lock():  # no eval may write the run while it is re-scored
            return _score_run(args, folder)
    return _score_answers_file(args, target)


def _score_run(args: argparse.Namespace, folder) -> int:
    from harness.metrics.accuracy import mmad_compat_table
    from harness.results.run_table import results_table
    from harness.tasks.registry import task_kind

    spec = folder.spec()
    kind = task_kind(spec.task)
    if (args.mmad_compat or args.headline) and not kind.answers_questions:
        raise IadbenchError(f"--mmad-compat and --headline score multiple-choice runs; this is a {kind.title} run")
    if args.headline and args.headline != spec.scoring:
        from datetime import datetime, timezone

        note = f"headline changed from {spec.scoring} to {args.headline} by iadbench score on {datetime.now(timezone.utc):%Y-%m-%d}"
        spec = spec.model_copy(update={"scoring": args.headline, "notes": spec.notes + [note]})
        folder.update_spec(spec)
        print(note, file=sys.stderr)
    data = kind.load(spec)  # first: a question file that is not the run's is the error to name
    samples = sorted(folder.read_samples(sample_type=kind.sample_type), key=lambda s: s.ordinal)
    earlier = folder.summary()  # re-scoring keeps what it does not recompute: the run's time and stop
    summary = kind.summarise(spec, samples, data, folder, earlier.wall_time_s if earlier else None, earlier.stopped_reason if earlier else None)
    folder.write_summary(summary)
    print(results_table(summary, spec))
    if args.mmad_compat:
        from harness.results.export import answers_file_records
        from harness.tasks.mcq.tables import official_table

        if spec.scoring != "mmad-compat":
            print("\n".join(official_table(summary, spec)))
        csv_path = Path(args.csv) if args.csv else folder.path / "mmad_accuracy.csv"
        samples = sorted(kind.rescored(spec, folder, samples, data), key=lambda s: s.ordinal)  # the replies, never a stored verdict
        mmad_compat_table(answers_file_records(samples, with_text=False)).write_csv(csv_path)
        print(f"official-layout CSV: {csv_path} (the run's headline stays {spec.scoring}; --headline changes it)")
    return 0


def _score_answers_file(args: argparse.Namespace, target: Path) -> int:
    from harness.storage.files import read_json_file
    from harness.metrics.accuracy import mmad_compat_table

    answers = read_json_file(target, what="MMAD answers file")
    fields = ("image", "question_type", "correct_answer", "gpt_answer")
    if not isinstance(answers, list) or not all(isinstance(a, dict) and all(isinstance(a.get(f), str) for f in fields) for a in answers):
        raise IadbenchError(f"{target}: expected MMAD's answers format, a list of {{image, question_type, correct_answer, gpt_answer}}, each a string")
    if not args.mmad_compat:
        print("note: an MMAD answers file holds letters only, so it is scored with the official rules (--mmad-compat)", file=sys.stderr)
    table = mmad_compat_table(answers)
    # MMAD's own scorer writes <stem>_accuracy.csv beside the answers: ours gets a name of its own,
    # so the official script's CSV is never overwritten
    csv_path = Path(args.csv) if args.csv else target.with_name(target.stem + "_accuracy.iadbench.csv")
    table.write_csv(csv_path)
    print(table.to_csv(), end="")
    print(f"removed (answer not A-E): {table.removed}; skipped after a removal: {table.skipped}; CSV: {csv_path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from harness.run.runlog import RunFolder
    from harness.tasks.registry import task_kind

    folder = RunFolder.open(Path(args.run))
    kind = task_kind(folder.spec().task)
    out = Path(args.out) if args.out else folder.path / kind.export_name
    written = kind.export(folder, out)
    print(f"wrote {written} {kind.export_what} to {out}")
    return 0
