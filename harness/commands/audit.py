"""`iadbench audit` and `iadbench review`: is a question set's every key right? The audit checks each
question against its image's folder, mask and pixels, with evidence the generator did not use (its
own measures of the mask region, the category's normal images, a --judge model), and says how often
each check agreed with a hand audit (--hand); the review page is where a person makes that audit."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.flags import add_backend_flags, given_model_options, number_at_least
from harness.errors import ConfigError


def register(commands) -> None:
    audit = commands.add_parser("audit", help="check every question of a set (MMAD's or a generated one) against its image's folder, mask, pixels and normal images")
    audit.add_argument("set", help="the question file (mmad.json, or mmad:PATH, or its folder); images and masks are read beside it, or under --data-root")
    audit.add_argument("--out", default="audit.json", help="where the per-question verdicts and the summary go (default: audit.json)")
    audit.add_argument("--errata", metavar="FILE", help="also write the flagged questions as an errata file for `eval --errata FILE`")
    audit.add_argument("--errata-verdicts", default="likely wrong", help="which verdicts the errata file lists, comma-separated (default: likely wrong; also: ambiguous, giveaway)")
    audit.add_argument("--kind", choices=["mvtec-ad", "visa", "loco", "goodsad", "synthetic"], help="the dataset kind whose tables apply, when the keys do not say (DS-MVTec, VisA, … do)")
    audit.add_argument("--knowledge", metavar="FILE", help="a domain_knowledge.json to read Description/Analysis keys against (default: the one beside the set)")
    audit.add_argument("--data-root", metavar="DIR", help="where the images, masks and normal images are (as eval's --data-root; default: the set's folder)")
    audit.add_argument("--judge", metavar="MODEL", help="also let this model (any backend) read every question beside its image, without the key, and say which option fits")
    audit.add_argument("--hand", metavar="HAND_AUDIT_JSON", help="a hand audit (the review page exports one): print how often each check agreed with it")
    audit.add_argument("--max-connections", type=int, help=argparse.SUPPRESS)
    add_backend_flags(audit)
    audit.set_defaults(handler=_audit)
    review = commands.add_parser("review", help="an HTML page (and its image folder) to audit questions by hand beside their images: blind answers, zoom, marks with reasons")
    review.add_argument("set", help="the question file (mmad.json, or mmad:PATH, or its folder)")
    review.add_argument("--out", default="review.html")
    review.add_argument("--audit", metavar="AUDIT_JSON", help="show this audit's verdicts and evidence on each question")
    review.add_argument("--flagged", action="store_true", help="only the questions the audit flagged (needs --audit)")
    review.add_argument("--limit", type=number_at_least(1), default=400, help="questions on the page (default 400)")
    review.add_argument("--data-root", metavar="DIR", help="where the images and masks are (as eval's --data-root; default: the set's folder)")
    review.set_defaults(handler=_review)


def _set_path(given: str) -> Path:
    path = Path(given.removeprefix("mmad:"))
    if path.is_dir():
        path = path / "mmad.json"
    if not path.is_file():
        raise ConfigError(f"{given}: no question file there (give mmad.json or the folder that holds it)")
    return path


def _audit(args: argparse.Namespace) -> int:
    from harness.storage.files import write_json_atomically, write_text_atomically
    from question_gen.audit.checks import SEVERITY
    from question_gen.audit.run import audit_set, errata_text

    verdicts = tuple(v.strip() for v in args.errata_verdicts.split(",") if v.strip())
    unknown = [v for v in verdicts if v not in SEVERITY or v in ("ok", "not checked")]
    if unknown:
        raise ConfigError(f"--errata-verdicts: {', '.join(map(repr, unknown))} is no verdict to list; use likely wrong, ambiguous, giveaway")
    path = _set_path(args.set)
    data_root = Path(args.data_root) if args.data_root else None
    if data_root is not None and not data_root.is_dir():
        raise ConfigError(f"--data-root {args.data_root}: no such folder (give the folder that holds the set's image paths, as for eval)")
    hand = None
    if args.hand:
        from question_gen.audit.agreement import read_hand_audit

        hand = read_hand_audit(Path(args.hand))
    report = audit_set(path, kind=args.kind, knowledge_path=Path(args.knowledge) if args.knowledge else None, progress=True, data_root=data_root, judge=_judge(args))
    from question_gen.shortcuts import describe_shortcuts, shortcut_warnings

    summary = report.summary()
    if hand is not None:
        from question_gen.audit.agreement import agreement

        summary["agreement"] = [entry.row() for entry in agreement(report.questions, hand)]
    write_json_atomically(Path(args.out), {"set": str(path), "summary": summary, "questions": report.questions})
    print(f"audited {summary['questions']} questions of {path}: " + ", ".join(f"{v} {n}" for v, n in summary["verdicts"].items()))
    for subtask, counts in summary["by_subtask"].items():
        print(f"  {subtask:<22} " + ", ".join(f"{v} {n}" for v, n in counts.items()))
    for line in describe_shortcuts(summary.get("shortcuts", {})) + shortcut_warnings(summary.get("shortcuts", {})):
        print(f"  {line}")
    if summary["missing_evidence"]:
        print("  evidence missing: " + ", ".join(f"{k} ({n} images)" for k, n in summary["missing_evidence"].items()))
    flagged = report.flagged()
    for row in flagged[:10]:
        finding = next(f for f in row["findings"] if f["verdict"] == row["verdict"])
        print(f"  {row['verdict']}: {row['id']} ({row['subtask']}): {finding['check']}: {finding['evidence']}")
    if len(flagged) > 10:
        print(f"  ... {len(flagged) - 10} more in {args.out}")
    if hand is not None:
        from question_gen.audit.agreement import agreement, agreement_lines

        ids = {row["id"] for row in report.questions}
        for line in agreement_lines(agreement(report.questions, hand), sum(1 for qid in hand if qid not in ids)):
            print(line)
    print(f"verdicts and evidence: {args.out}")
    if args.errata:
        write_text_atomically(Path(args.errata), errata_text(report, name=f"audit-{path.parent.name or 'set'}", verdicts=verdicts))  # type: ignore[arg-type]
        print(f"errata ({len(report.flagged(verdicts))} questions): {args.errata}  (leave them out with: iadbench eval --data mmad:{path} --errata {args.errata})")  # type: ignore[arg-type]
    return 0


def _judge(args: argparse.Namespace):
    """The --judge model, if any, built as eval builds its model."""
    if not args.judge:
        return None
    from harness.models.base import ModelOptions
    from harness.models.registry import create_model

    model = create_model(args.judge, seed=0, options=ModelOptions(**given_model_options(args)))
    getattr(model, "ready", lambda: None)()
    return model


def _review(args: argparse.Namespace) -> int:
    from question_gen.audit.review import build_review

    if args.flagged and not args.audit:
        raise ConfigError("--flagged shows the audit's flagged questions: give --audit AUDIT_JSON (from `iadbench audit`)")
    path = _set_path(args.set)
    if args.data_root and not Path(args.data_root).is_dir():
        raise ConfigError(f"--data-root {args.data_root}: no such folder (give the folder that holds the set's image paths, as for eval)")
    out = Path(args.out)
    shown, total = build_review(path, out, audit_path=Path(args.audit) if args.audit else None, only_flagged=args.flagged, limit=args.limit,
                         data_root=Path(args.data_root) if args.data_root else None)
    what = f"{shown} of {total} questions" + (f"; --limit {args.limit} caps it, raise it to see the rest" if shown < total and not args.flagged else "")
    print(f"review page ({what}): {out}, its images in {out.parent / (out.stem + '_files')}  (keep them together; open the page in a browser:"
          " answer 1-5 blind, o/w/a mark the key with a reason, z zoom, r raw view; export the errata or the hand audit)")
    return 0

