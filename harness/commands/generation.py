"""`iadbench generate`, `convert` and `synth`: question sets from AD datasets, and their formats."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from harness.commands.flags import add_backend_flags, given_model_options, number_at_least
from harness.errors import IadbenchError


def register(commands) -> None:
    generate = commands.add_parser("generate", help="generate an MMAD-style question set from an AD dataset")
    generate.add_argument("--source", required=True, help="synthetic | mvtec:DIR | visa:DIR | loco:DIR | goodsad:DIR | dsmvtec:DIR | folder:DIR (images + labels.csv)")
    generate.add_argument("--strict", action="store_true", help="stop at the first warning (resized mask, unreadable image, orphan mask, unknown defect kind)")
    generate.add_argument("--llm", metavar="MODEL", help="write Defect Description/Analysis and Object Analysis questions with this model (any backend), each verified")
    generate.add_argument("--knowledge", metavar="FILE", help="domain knowledge in MMAD's domain_knowledge.json shape (JSON, or TOML of the same shape): defect names, description/analysis options and object facts from its texts")
    generate.add_argument("--mmad-shape", action="store_true", help="at most 5 questions per image in MMAD's mix (detection first; defect questions for anomalies, object questions for normal images)")
    generate.add_argument("--llm-concurrency", type=number_at_least(1), default=16, help="images written at once with --llm")
    generate.add_argument("--max-connections", type=int, help=argparse.SUPPRESS)
    add_backend_flags(generate)
    generate.add_argument("--report", action="store_true", help="print the quality report (balance, length bias, discards) instead of the counts")
    generate.add_argument("--out", required=True)
    generate.add_argument("--name", help="dataset name used as the first path component (default: DIR's name)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--size", type=number_at_least(32), default=256, help="image size of the synthetic source")
    generate.set_defaults(handler=_generate)
    convert = commands.add_parser("convert", help="a question set to a Hugging Face dataset (mmad:PATH) or back to mmad.json (hf:PATH)")
    convert.add_argument("source", help="mmad:PATH/mmad.json or hf:PATH")
    convert.add_argument("--out", required=True)
    convert.add_argument("--data-root", help="folder the mmad.json paths are relative to (default: its folder)")
    convert.set_defaults(handler=_convert)
    synth = commands.add_parser("synth", help="write the built-in synthetic dataset (MVTec AD layout)")
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=number_at_least(32), default=256)
    synth.set_defaults(handler=_synth)


def _generate(args: argparse.Namespace) -> int:
    from question_gen.generate import generate_question_set, generate_synthetic_question_set
    from question_gen.quality import describe
    from harness.adsets.layouts import READERS

    out = Path(args.out)
    kind, _, location = args.source.partition(":")
    shape = {"knowledge_file": Path(args.knowledge) if args.knowledge else None, "mmad_shape": args.mmad_shape}
    if kind == "synthetic":
        report = generate_synthetic_question_set(out, seed=args.seed, size=args.size, strict=args.strict, llm=_generator_model(args), llm_concurrency=args.llm_concurrency, **shape)
    elif kind in READERS and location:
        root = Path(location)
        categories = READERS[kind](root)
        knowledge_key = "mvtec-ad" if kind in ("mvtec", "dsmvtec") else kind  # DS-MVTec keeps MVTec AD's categories and folder names
        if _drawn_by_synth(root):  # `iadbench synth`'s folder, read in its MVTec layout: the synthetic objects' facts
            knowledge_key = "synthetic"
        report = generate_question_set(
            root, out, dataset_name=args.name or root.name, knowledge_key=knowledge_key, seed=args.seed, categories=categories, strict=args.strict,
            llm=_generator_model(args), llm_concurrency=args.llm_concurrency, **shape,
        )
    else:
        raise IadbenchError(f"--source {args.source!r}: use synthetic or one of " + ", ".join(f"{k}:DIR" for k in READERS))
    if args.report:
        print(describe(report.quality))
    else:  # the counts in one line; the whole record is generation_report.json, the quality --report
        counts = report.as_dict()
        from harness.results.tables import SHORT

        by_subtask = ", ".join(f"{SHORT.get(subtask, subtask)} {n}" for subtask, n in counts.get("questions_by_subtask", {}).items())
        print(f"{counts.get('questions', 0):,} questions from {counts.get('images', 0):,} images of {counts.get('dataset', '?')} ({by_subtask}); "
              f"all counts in {out / 'generation_report.json'}, the quality report with --report")
    for warning in report.warnings[:10]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(report.warnings) > 10:
        print(f"... {len(report.warnings) - 10} more warnings in {out / 'generation_report.json'}", file=sys.stderr)
    for warning in [] if args.report else report.quality.get("warnings", []):  # --report's text holds them already
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"question set: {out / 'mmad.json'}  (evaluate with: iadbench eval --data mmad:{out / 'mmad.json'})")
    if importlib.util.find_spec("datasets") is not None:
        from harness.data.hf_dataset import write_hf_dataset

        write_hf_dataset(out / "mmad.json", out / "hf")
        print(f"as a Hugging Face dataset: {out / 'hf'} (save_to_disk in dataset/, parquet shards in parquet/; evaluate with --data hf:{out / 'hf'})")
    else:
        print("(pip install -e '.[datasets]' to also write it as a Hugging Face dataset)")
    return 0


def _generator_model(args: argparse.Namespace):
    """The --llm model that writes and verifies description and analysis questions, if any."""
    if not args.llm:
        return None
    from harness.models.base import ModelOptions
    from harness.models.registry import create_model

    model = create_model(args.llm, seed=args.seed, options=ModelOptions(**given_model_options(args)))
    getattr(model, "ready", lambda: None)()
    return model


def _convert(args: argparse.Namespace) -> int:
    """mmad.json ⇄ Hugging Face dataset."""
    from harness.data.hf_dataset import read_hf_dataset, write_hf_dataset

    kind, _, location = args.source.partition(":")
    out = Path(args.out)
    if kind == "mmad" and location:
        path = Path(location)
        path = path / "mmad.json" if path.is_dir() else path
        count = write_hf_dataset(path, out, data_root=Path(args.data_root) if args.data_root else None)
        print(f"wrote {count} image records as a Hugging Face dataset to {out} (dataset/ for load_from_disk, parquet/ shards)")
    elif kind == "hf" and location:
        print(f"wrote {read_hf_dataset(Path(location), out)} and its images")
    else:
        raise IadbenchError(f"convert {args.source!r}: use mmad:PATH/mmad.json (to a Hugging Face dataset) or hf:PATH (back to mmad.json)")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from question_gen.synthetic.writer import write_synthetic_dataset

    metadata = write_synthetic_dataset(Path(args.out), seed=args.seed, size=args.size)
    print(f"wrote the synthetic dataset ({len(metadata['categories'])} categories) to {args.out}")
    return 0


def _drawn_by_synth(root: Path) -> bool:
    """Whether ROOT is a dataset `iadbench synth` drew (its synthetic.json says so): its categories
    are the synthetic objects, whose facts and taxonomy live under "synthetic", not "mvtec-ad"."""
    marker = root / "synthetic.json"
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("generator") == "iadbench-synthetic"
    except (OSError, ValueError, AttributeError):
        return False
