"""The `iadbench` command line. Heavy modules are imported inside each command, so start-up stays fast."""

from __future__ import annotations

import argparse
import importlib.util
import os
import json
import sys
import time
from pathlib import Path

from harness.errors import IadbenchError


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """How to reach and run the model: shared by eval and ablate."""
    parser.add_argument("--choice-scoring", choices=["generate", "logprobs"], help="parse the reply, or pick the most probable option letter")
    api = parser.add_argument_group("API backends (openai/<model>)")
    api.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for vLLM (default $OPENAI_BASE_URL or OpenAI)")
    api.add_argument("--api-key-env", help="environment variable holding the API key (default OPENAI_API_KEY; the key itself is never recorded)")
    api.add_argument("--image-detail", choices=["low", "high", "auto"], help="the image_url detail level (default low)")
    api.add_argument("--request-timeout", type=float, help="seconds before one request is abandoned and retried (default 60)")
    api.add_argument("--max-attempts", type=int, help="tries per question before it is recorded as failed (default 8)")
    local = parser.add_argument_group("local Hugging Face models (hf/<hub id> or hf//abs/path)")
    local.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], help="weights' dtype (default auto: the checkpoint's)")
    local.add_argument("--device", help="cuda:N, cpu or mps (default: this process's GPU, else the CPU)")
    local.add_argument("--device-map", help="accelerate device map, e.g. auto, for a model larger than one GPU")
    local.add_argument("--attn-implementation", help="eager, sdpa or flash_attention_2 (passed to from_pretrained)")
    local.add_argument("--batch-size", type=_batch_size, help="questions per forward pass, or auto (default): start high, halve on out-of-memory")
    local.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own Python code (only for repositories you trust)")
    local.add_argument("--allow-pickle-weights", action="store_true", help="load .bin weights (pickle can run code); safetensors only otherwise")
    local.add_argument("--revision", help="hub branch, tag or commit of the model")


def _add_eval(commands) -> None:
    parser = commands.add_parser("eval", help="evaluate a model on a suite (default: the built-in synthetic set)")
    parser.add_argument("--suite", default=None, help="suite name (iadbench list suites); default synthetic-quick, or gpt4vad-zero-shot with --task gpt4vad")
    parser.add_argument("--task", choices=["mcq", "gpt4vad"], help="multiple-choice questions, or GPT-4V-AD region scoring with image/pixel metrics")
    parser.add_argument("--regions", help="gpt4vad region division: slic (default), grid:K, masks:DIR (PNG label maps or .npz per image)")
    parser.add_argument("--gpt4vad-prompt", choices=["zero-shot", "zero-shot-no-class", "one-shot"], help="gpt4vad prompt variant")
    parser.add_argument("--model", default=None, help="provider/model or a baseline: random, oracle (iadbench list models)")
    parser.add_argument("--data", help="synthetic | synthetic:SEED | mmad:PATH/mmad.json (overrides the suite)")
    parser.add_argument("--data-root", help="folder the question file's paths are relative to (default: its folder)")
    parser.add_argument("--shots", type=int, help="normal template images per question (0, 1, k)")
    parser.add_argument("--templates", choices=["random", "similar"], help="which template list to take shots from")
    parser.add_argument("--image-max-side", type=int, help="longest image side sent to the model, in pixels")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--mmad-compat", action="store_true", help="headline scores by the official MMAD scorer")
    parser.add_argument("--strict", action="store_true", help="headline scores strict (unparsable = wrong), also under --suite mmad-official")
    parser.add_argument("--seed", type=int, default=0, help="recorded in spec.json; seeds every random choice")
    parser.add_argument("--limit", type=int, help="only the first N questions (for a quick look)")
    parser.add_argument("--skip-bad", action="store_true", help="skip malformed records (counted and reported) instead of stopping")
    parser.add_argument("--max-connections", type=int, help="requests in flight at once")
    parser.add_argument("--runs-dir", default="runs", help="where run folders are created (default: runs/)")
    parser.add_argument("--run-id", help="name of the run folder (default: time_model_suite)")
    parser.add_argument("--resume", metavar="RUN", help="continue a run folder: asks only the questions not yet answered")
    parser.add_argument("--retry-errors", action="store_true", help="with --resume: ask again the questions whose backend call failed")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--dry-run", action="store_true", help="print requests, images, estimated tokens and cost; call nothing")
    parser.add_argument("--dump-requests", metavar="DIR", help="with --dry-run: write each request as the backend would send it (API JSON bodies; hf/ prompt text, images, token counts)")
    parser.add_argument("--protocol", help="how questions are put to the model (iadbench list protocols); --suite mmad-official picks the model family's")
    parser.add_argument("--errata", action="append", default=None, metavar="NAME|FILE", help="leave out known faulty records, e.g. mmad-ds-mvtec-pill (counted and shown)")
    parser.add_argument("--strategy", action="append", default=None, metavar="NAME", help="enhancement strategy, repeatable: rag, rag=topk:K, agent=expert|oracle|maps:DIR[:bbox|contour|highlight|mask]")
    parser.add_argument("--knowledge", help="domain knowledge for rag (MMAD's domain_knowledge.json format); default: beside the question file")
    add_backend_flags(parser)
    parser.add_argument("--num-processes", type=int, default=1, help="hf/ models, data parallel: shard the questions over N processes (one per GPU) and merge their samples")
    parser.add_argument("--shard", help=argparse.SUPPRESS)  # INDEX/COUNT: one process of a --num-processes run
    parser.add_argument("--max-cost", type=float, metavar="USD", help="stop cleanly (resumable) once paid tokens reach this cost")
    parser.add_argument("--no-cache", action="store_true", help="bypass the persistent response cache")


def _batch_size(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {value!r}")
    return size


def _given_model_options(args: argparse.Namespace) -> dict:
    """Backend options the user gave on the command line (the rest keep their defaults)."""
    given = {
        "base_url": args.base_url,
        "api_key_env": args.api_key_env,
        "image_detail": args.image_detail,
        "request_timeout_s": args.request_timeout,
        "max_attempts": args.max_attempts,
        "max_connections": args.max_connections,
        "dtype": args.dtype,
        "device": args.device,
        "device_map": args.device_map,
        "attn_implementation": args.attn_implementation,
        "batch_size": args.batch_size,
        "trust_remote_code": args.trust_remote_code or None,
        "allow_pickle_weights": args.allow_pickle_weights or None,
        "revision": args.revision,
    }
    return {key: value for key, value in given.items() if value is not None}


def _resume_spec(args: argparse.Namespace):
    from harness.runlog import RunFolder

    folder = RunFolder.open(Path(args.resume))
    spec = folder.spec()
    given = {"--model": args.model, "--suite": args.suite, "--data": args.data, "--shots": args.shots, "--choice-scoring": args.choice_scoring, "--task": args.task, "--regions": args.regions}
    conflicts = [flag for flag, value in given.items() if value is not None and str(value) != str(getattr(spec, flag[2:].replace("-", "_")))]
    if conflicts:
        raise IadbenchError(f"--resume keeps the run's own settings; drop {', '.join(conflicts)} (see {folder.path / 'spec.json'})")
    if args.strategy or args.knowledge:
        raise IadbenchError("--resume keeps the run's strategies (see spec.json); start a new run to try others")
    if args.image_detail or args.api_key_env:
        raise IadbenchError("--resume keeps the run's --image-detail and --api-key-env (see spec.json)")
    # How a run is carried out (connections, timeouts, attempts, budget, cache) may change on
    # resume; what it asks and how it scores may not.
    carried_out = {k: v for k, v in _given_model_options(args).items() if k != "base_url"}
    updates: dict = {"model_options": spec.model_options | carried_out}
    if args.max_connections:
        updates["max_connections"] = args.max_connections
    if args.max_cost is not None:
        updates["max_cost_usd"] = args.max_cost
    if args.no_cache:
        updates["cache"] = False
    spec = spec.model_copy(update=updates)
    folder.update_spec(spec)
    if args.retry_errors:
        from harness.schema import RegionSample, SampleResult

        dropped = folder.drop_failed_samples(RegionSample if spec.task == "gpt4vad" else SampleResult)
        print(f"--retry-errors: {dropped} failed samples will be asked again", file=sys.stderr)
    print(f"resuming {folder.path}", file=sys.stderr)
    return spec, folder


def _new_spec(args: argparse.Namespace):
    from harness.evaluate import EvalOverrides, resolve_spec
    from harness.models.base import ModelOptions, create_model

    if args.retry_errors:
        raise IadbenchError("--retry-errors goes with --resume RUN")
    model_name = args.model or "random"
    options = ModelOptions(**_given_model_options(args))
    overrides = EvalOverrides(
        data=args.data,
        data_root=args.data_root,
        shots=args.shots,
        templates=args.templates,
        image_max_side=args.image_max_side,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        scoring="mmad-compat" if args.mmad_compat else "strict" if args.strict else None,
        choice_scoring=args.choice_scoring,
        seed=args.seed,
        limit=args.limit,
        skip_bad=args.skip_bad,
        max_connections=args.max_connections,
        run_id=args.run_id,
        task=args.task,
        regions=args.regions,
        gpt4vad_prompt=args.gpt4vad_prompt,
        cache=not args.no_cache,
        max_cost_usd=args.max_cost,
        model_options=options,
        strategies=args.strategy,
        knowledge=args.knowledge,
        protocol=args.protocol,
        errata=args.errata,
    )
    from harness.strategies import parse_strategies
    from harness.strategies.wrappers import wrap

    model = wrap(create_model(model_name, seed=args.seed, options=options), parse_strategies(args.strategy or []))
    suite = args.suite or ("gpt4vad-zero-shot" if args.task == "gpt4vad" else "synthetic-quick")
    return resolve_spec(suite, model_name, overrides, model.default_concurrency), model


def _eval(args: argparse.Namespace) -> int:
    from harness.errors import FatalBackendError
    from harness.evaluate import load_questions, model_for, run_evaluation, start_run
    from harness.tables import results_table

    question_set = model = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not args.shard:
        raise IadbenchError("launched as one of several processes (WORLD_SIZE is set): use iadbench eval --num-processes N instead of accelerate launch/torchrun")
    if args.shard:
        return _eval_shard(args)
    if args.resume:
        spec, folder = _resume_spec(args)
        model = model_for(spec, base_url=args.base_url)
        getattr(model, "ready", lambda: None)()
    else:
        spec, model = _new_spec(args)
        if args.dump_requests and not args.dry_run:
            raise IadbenchError("--dump-requests goes with --dry-run (nothing is sent)")
        if args.dry_run:
            from harness.dryrun import estimate

            if spec.task != "mcq":
                raise IadbenchError("--dry-run estimates multiple-choice runs only")

            dump = Path(args.dump_requests) if args.dump_requests else None
            print(estimate(spec, load_questions(spec), model, dump).describe(spec.model))
            if dump is not None:
                print(f"requests written to {dump}")
            return 0
        getattr(model, "ready", lambda: None)()  # e.g. an API key: checked before the folder exists
        spec, folder, question_set = start_run(spec, Path(args.runs_dir))
        print(f"run folder: {folder.path}", file=sys.stderr)
    try:
        if args.num_processes > 1:
            started = time.perf_counter()
            finished, question_set = _run_in_processes(spec, folder, question_set, args)
            if not finished:
                return 2
            shard_time = time.perf_counter() - started
        summary = run_evaluation(spec, folder, question_set=question_set, model=model, progress=not args.quiet)
        if args.num_processes > 1:  # the time the shard processes took, besides the final scoring
            summary = summary.model_copy(update={"wall_time_s": (summary.wall_time_s or 0.0) + shard_time})
            folder.write_summary(summary)
    except KeyboardInterrupt:
        print(f"\ninterrupted; every finished answer is saved. Continue with: iadbench eval --resume {folder.path}", file=sys.stderr)
        return 130
    except FatalBackendError as error:
        print(f"iadbench: error: {error}\nevery finished answer is saved; continue with: iadbench eval --resume {folder.path}", file=sys.stderr)
        return 2
    print(results_table(summary))
    from harness.report.reference import comparison_lines

    for line in comparison_lines(spec, summary, folder):
        print(line)
    print(f"run folder: {folder.path}")
    if summary.stopped_reason:
        print(f"stopped early ({summary.stopped_reason}); continue with: iadbench eval --resume {folder.path} --max-cost <higher>", file=sys.stderr)
        return 3
    return 0


def _eval_shard(args: argparse.Namespace) -> int:
    """One process of a data-parallel run: answer this shard's block into its own file."""
    from harness.evaluate import model_for, run_evaluation
    from harness.parallel import parse_shard

    if not args.resume:
        raise IadbenchError("--shard is internal to --num-processes and needs --resume RUN")
    try:
        shard = parse_shard(args.shard)
    except ValueError as error:
        raise IadbenchError(str(error)) from None
    from harness.runlog import RunFolder

    folder = RunFolder.open(Path(args.resume))
    spec = folder.spec()  # read only: the launcher settled the spec, and N processes must not rewrite it
    run_evaluation(spec, folder, model=model_for(spec), progress=not args.quiet, shard=shard)
    return 0


def _run_in_processes(spec, folder, question_set, args: argparse.Namespace):
    """Answer the run with --num-processes shard processes and merge their samples. Returns
    (whether all finished, the question set loaded on the way, for the final scoring)."""
    from harness.evaluate import build_task
    from harness.parallel import run_shards

    task, data = build_task(spec, folder, question_set)
    folder.merge_shards(task.sample_type)
    done = len(folder.read_samples(sample_type=task.sample_type))
    print(f"answering with {args.num_processes} processes", file=sys.stderr)
    failed = run_shards(folder, args.num_processes, total=len(task.ids), already_done=done, progress=not args.quiet)
    merged = folder.merge_shards(task.sample_type)
    if failed:
        print(f"iadbench: error: {len(failed)} of {args.num_processes} processes failed (exit codes {failed}); {merged} answers merged. "
              f"Continue with: iadbench eval --resume {folder.path} --num-processes {args.num_processes}", file=sys.stderr)
        return False, question_set
    return True, (data if spec.task == "mcq" else question_set)


def _score(args: argparse.Namespace) -> int:
    from harness.metrics.accuracy import mmad_compat_table
    from harness.runlog import RunFolder

    target = Path(args.target)
    if target.is_dir():
        from harness.evaluate import load_questions, summarise
        from harness.tables import results_table

        folder = RunFolder.open(target)
        spec = folder.spec()
        if spec.task == "gpt4vad":
            from harness.evaluate import summarise_regions
            from harness.schema import RegionSample
            from harness.tasks.gpt4vad import load_region_items

            if args.mmad_compat:
                raise IadbenchError("--mmad-compat scores multiple-choice runs; this is a GPT-4V-AD run")
            items, _ = load_region_items(spec.data, spec.seed)
            items = items[: spec.limit] if spec.limit is not None else items  # as the run selected them
            samples = sorted(folder.read_samples(sample_type=RegionSample), key=lambda s: s.ordinal)
            summary = summarise_regions(spec, samples, items, folder, None, None)
            folder.write_summary(summary)
            print(results_table(summary))
            return 0
        if args.mmad_compat or args.strict:
            spec = spec.model_copy(update={"scoring": "mmad-compat" if args.mmad_compat else "strict"})
        samples = sorted(folder.read_samples(), key=lambda s: s.ordinal)
        summary = summarise(spec, samples, load_questions(spec), None)
        folder.write_summary(summary)
        print(results_table(summary))
        if args.mmad_compat:
            from harness.export import answers_file_records

            csv_path = Path(args.csv) if args.csv else folder.path / "mmad_accuracy.csv"
            mmad_compat_table(answers_file_records(samples)).write_csv(csv_path)
            print(f"official-layout CSV: {csv_path}")
        return 0
    try:
        answers = json.loads(target.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise IadbenchError(f"{target}: cannot read an MMAD answers file ({error})") from None
    if not isinstance(answers, list) or not all(isinstance(a, dict) and {"image", "question_type", "correct_answer", "gpt_answer"} <= a.keys() for a in answers):
        raise IadbenchError(f"{target}: expected MMAD's answers format, a list of {{image, question_type, correct_answer, gpt_answer}}")
    if not args.mmad_compat:
        print("note: an MMAD answers file holds letters only, so it is scored with the official rules (--mmad-compat)", file=sys.stderr)
    table = mmad_compat_table(answers)
    csv_path = Path(args.csv) if args.csv else target.with_name(target.stem + "_accuracy.csv")
    table.write_csv(csv_path)
    print(table.to_csv(), end="")
    print(f"removed (answer not A-E): {table.removed}; skipped after a removal: {table.skipped}; CSV: {csv_path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from harness.export import answers_file_records
    from harness.runlog import RunFolder

    folder = RunFolder.open(Path(args.run))
    if folder.spec().task != "mcq":
        raise IadbenchError(f"{folder.path}: MMAD's answers format holds multiple-choice answers; this is a GPT-4V-AD run")
    records = answers_file_records(folder.read_samples())
    out = Path(args.out) if args.out else folder.path / "mmad_answers.json"
    out.write_text(json.dumps(records, indent=4) + "\n")
    print(f"wrote {len(records)} answers in MMAD's format to {out}")
    return 0


def _ablate(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from harness.ablation import ablation_table, markdown, parse_arms, write_outputs
    from harness.evaluate import EvalOverrides, resolve_spec, run_evaluation, start_run
    from harness.models.base import ModelOptions, create_model
    from harness.runlog import RunFolder

    arms = parse_arms(args.strategies)
    folder = Path(args.out or Path(args.runs_dir) / f"ablate-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}")
    options = ModelOptions(**_given_model_options(args))
    model = create_model(args.model, seed=args.seed, options=options)

    def shared(spec):
        """A local model is loaded once for all arms; other backends are made afresh per arm."""
        if not getattr(model, "reusable_across_runs", False):
            return None
        from harness.strategies import parse_strategies
        from harness.strategies.wrappers import wrap

        return wrap(model, parse_strategies(spec.strategies))

    done = []
    for arm in arms:
        target = folder / arm.slug
        if (target / "spec.json").is_file():  # resumable: an arm already started is continued
            run = RunFolder.open(target)
            spec = run.spec()
            print(f"[{arm.name}] resuming {target}", file=sys.stderr)
            summary = run_evaluation(spec, run, model=shared(spec), progress=not args.quiet)
        else:
            overrides = EvalOverrides(
                data=args.data, limit=args.limit, seed=args.seed, run_id=arm.slug, strategies=arm.strategies, knowledge=args.knowledge,
                max_connections=args.max_connections, model_options=options, choice_scoring=args.choice_scoring, max_new_tokens=args.max_new_tokens,
            )
            spec = resolve_spec(args.suite or "synthetic-quick", args.model, overrides, model.default_concurrency)
            spec, run, question_set = start_run(spec, folder)
            print(f"[{arm.name}] {target}", file=sys.stderr)
            summary = run_evaluation(spec, run, question_set=question_set, model=shared(spec), progress=not args.quiet)
        if summary.n_samples < summary.n_questions:
            raise IadbenchError(f"arm {arm.name} stopped early ({summary.stopped_reason}); continue with the same command")
        done.append((arm, target))
    table = ablation_table(done)
    write_outputs(table, folder)
    print(markdown(table), end="")
    print(f"ablation folder: {folder} (ablation.md, ablation.json, one run folder per arm)")
    return 0


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
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text.encode()) / 1e6:.1f} MB, {len(runs)} runs)")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from question_gen.generate import generate_question_set, generate_synthetic_question_set
    from question_gen.quality import describe
    from question_gen.sources import READERS

    out = Path(args.out)
    kind, _, location = args.source.partition(":")
    if kind == "synthetic":
        report = generate_synthetic_question_set(out, seed=args.seed, size=args.size, strict=args.strict, llm=_generator_model(args), llm_concurrency=args.llm_concurrency)
    elif kind in READERS and location:
        root = Path(location)
        categories = READERS[kind](root)
        knowledge_key = "mvtec-ad" if kind in ("mvtec", "dsmvtec") else kind  # object facts are known for MVTec AD categories
        report = generate_question_set(
            root, out, dataset_name=args.name or root.name, knowledge_key=knowledge_key, seed=args.seed, categories=categories, strict=args.strict,
            llm=_generator_model(args), llm_concurrency=args.llm_concurrency,
        )
    else:
        raise IadbenchError(f"--source {args.source!r}: use synthetic or one of " + ", ".join(f"{k}:DIR" for k in READERS))
    if args.report:
        print(describe(report.quality))
    else:
        print(json.dumps({k: v for k, v in report.as_dict().items() if k not in ("quality", "warnings")}, indent=2))
    for warning in report.warnings[:10]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(report.warnings) > 10:
        print(f"... {len(report.warnings) - 10} more warnings in {out / 'generation_report.json'}", file=sys.stderr)
    for warning in report.quality.get("warnings", []):
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
    from harness.models.base import ModelOptions, create_model

    model = create_model(args.llm, seed=args.seed, options=ModelOptions(**_given_model_options(args)))
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


def _list(args: argparse.Namespace) -> int:
    if args.what == "suites":
        from harness.suites import load_suite, suite_names

        for name in suite_names():
            print(f"{name:<18} {load_suite(name).description}")
    elif args.what == "protocols":
        from harness.protocols import load_protocol, protocol_names

        for name in protocol_names():
            protocol = load_protocol(name)
            picks = f" (picked for: {', '.join(protocol.models)})" if protocol.models else ""
            print(f"{name:<20} {protocol.description}{picks}")
    else:
        from harness.models.base import providers

        for provider in providers():
            example = provider.name if not provider.needs_model_part else f"{provider.name}/<model>"
            print(f"{example:<18} {provider.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iadbench", description="Evaluate multimodal LLMs on industrial anomaly detection.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_eval(commands)

    score = commands.add_parser("score", help="score a run folder or an MMAD answers file")
    score.add_argument("target", help="run folder, or an MMAD answers .json")
    score.add_argument("--mmad-compat", action="store_true", help="the official MMAD scorer, number for number")
    score.add_argument("--strict", action="store_true", help="headline strict scores (the run's official answers stay in summary.json)")
    score.add_argument("--csv", help="where to write the official-layout CSV")

    export = commands.add_parser("export", help="write a run in MMAD's answers-file format")
    export.add_argument("run")
    export.add_argument("--format", choices=["mmad"], default="mmad")
    export.add_argument("--out", help="output file (default: RUN/mmad_answers.json)")

    ablate = commands.add_parser("ablate", help="one model, several strategy arms, deltas with paired bootstrap intervals")
    ablate.add_argument("--model", required=True)
    ablate.add_argument("--strategies", required=True, help="arms separated by commas, strategies in an arm joined by '+': baseline,rag,agent=expert:bbox,rag+agent=expert")
    ablate.add_argument("--suite", help="default synthetic-quick")
    ablate.add_argument("--data")
    ablate.add_argument("--knowledge")
    ablate.add_argument("--limit", type=int)
    ablate.add_argument("--seed", type=int, default=0)
    ablate.add_argument("--max-connections", type=int)
    ablate.add_argument("--max-new-tokens", type=int)
    add_backend_flags(ablate)
    ablate.add_argument("--runs-dir", default="runs")
    ablate.add_argument("--out", help="ablation folder (default runs/ablate-<time>); give the same one to resume")
    ablate.add_argument("--quiet", action="store_true")

    report = commands.add_parser("report", help="compare run folders: HTML, Markdown, CSV (official MMAD layout) or JSON")
    report.add_argument("runs", nargs="+", help="run folders")
    report.add_argument("--out", help="output file (default report.<format>; a folder for csv with several runs)")
    report.add_argument("--format", choices=["html", "md", "csv", "json"], help="default: from --out's suffix, else html")
    report.add_argument("--published", choices=["auto", "always", "never"], default="auto", help="MMAD's published rows: auto shows them for runs on MMAD data")
    report.add_argument("--gallery-run", type=int, default=0, help="which run (0-based, in the order given) the failure gallery shows")
    report.add_argument("--gallery-size", type=int, default=60, help="failures shown in the gallery")

    generate = commands.add_parser("generate", help="generate an MMAD-style question set from an AD dataset")
    generate.add_argument("--source", required=True, help="synthetic | mvtec:DIR | visa:DIR | loco:DIR | goodsad:DIR | dsmvtec:DIR | folder:DIR (images + labels.csv)")
    generate.add_argument("--strict", action="store_true", help="stop at the first warning (resized mask, unreadable image, orphan mask, unknown defect kind)")
    generate.add_argument("--llm", metavar="MODEL", help="write Defect Description/Analysis and Object Analysis questions with this model (any backend), each verified")
    generate.add_argument("--llm-concurrency", type=int, default=16, help="images written at once with --llm")
    generate.add_argument("--max-connections", type=int, help=argparse.SUPPRESS)
    add_backend_flags(generate)
    generate.add_argument("--report", action="store_true", help="print the quality report (balance, length bias, discards) instead of the counts")
    generate.add_argument("--out", required=True)
    generate.add_argument("--name", help="dataset name used as the first path component (default: DIR's name)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--size", type=int, default=256, help="image size of the synthetic source")

    convert = commands.add_parser("convert", help="a question set to a Hugging Face dataset (mmad:PATH) or back to mmad.json (hf:PATH)")
    convert.add_argument("source", help="mmad:PATH/mmad.json or hf:PATH")
    convert.add_argument("--out", required=True)
    convert.add_argument("--data-root", help="folder the mmad.json paths are relative to (default: its folder)")
    synth = commands.add_parser("synth", help="write the built-in synthetic dataset (MVTec AD layout)")
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=int, default=256)

    listing = commands.add_parser("list", help="list suites or models")
    listing.add_argument("what", choices=["suites", "models", "protocols"])
    return parser


HANDLERS = {"eval": _eval, "score": _score, "export": _export, "report": _report, "ablate": _ablate, "generate": _generate, "convert": _convert, "synth": _synth, "list": _list}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except IadbenchError as error:
        print(f"iadbench: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `iadbench list suites | head`: the reader left, nothing went wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
