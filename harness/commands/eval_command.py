"""`iadbench eval`: a new run, a resumed one, a dry run, or one rank of a data-parallel run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.commands.flags import add_backend_flags, add_run_flags, given_model_options, number_at_least
from harness.strategies import STRATEGY_FORMS
from harness.errors import FatalBackendError, IadbenchError
from harness.tasks.registry import task_kind, task_kind_help, task_kind_names

# The exit-code contract (README): 0 finished with at least one question answered; 2 bad input (a
# flag, a file, a record); 3 stopped by --max-cost; 4 every question failed (or the backend cannot
# answer: no such model, nothing listening, bad key); 130 interrupted. Runs stopped by 3, 4 or 130
# keep every answer and continue with --resume.
EXIT_BAD_INPUT, EXIT_COST_LIMIT, EXIT_ALL_FAILED, EXIT_INTERRUPTED = 2, 3, 4, 130


def register(commands) -> None:
    parser = commands.add_parser("eval", help="evaluate a model on a suite (default: the built-in synthetic set)")
    add_run_flags(parser)
    parser.add_argument("--task", choices=task_kind_names(), help="; ".join(f"{name}: {task_kind_help(name)}" for name in task_kind_names()))
    parser.add_argument("--box-format", help="bbox: how boxes are asked for and read (iadbench list box-formats; default: by model family)")
    parser.add_argument("--judge", metavar="MODEL", help="--task open: the model that scores each answer with RobustMAD's guidelines (its rows used openai/gpt-5)")
    parser.add_argument("--judge-base-url", metavar="URL", help="the judge's API base URL (default: the provider's)")
    parser.add_argument("--judge-api-key-env", metavar="NAME", help="environment variable holding the judge's API key (default OPENAI_API_KEY; never recorded)")
    parser.add_argument("--perturb", action="append", default=None, metavar="KIND:SEVERITY", help="degrade query images, repeatable: gaussian_noise, defocus_blur, motion_blur, jpeg, brightness, contrast at 1..5")
    parser.add_argument("--perturb-templates", action="store_true", help="degrade the template images too")
    parser.add_argument("--regions", help="gpt4vad region division: slic (default), grid:K, sam[:MODEL] (Segment Anything, default facebook/sam-vit-huge), masks:DIR (PNG label maps or .npz per image), official:DIR[:METHOD] (the public code's *_masks.pth files)")
    parser.add_argument("--gpt4vad-prompt", choices=["zero-shot", "zero-shot-no-class", "iadbench-one-shot"], help="gpt4vad prompt: GPT-4V-AD's zero-shot text with or without the class, or iadbench's own one-shot variant")
    parser.add_argument("--metrics", choices=["exact", "ader", "ader-adeval"], help="gpt4vad metrics: exact MVTec definitions (default); ADer's evaluator (pooled image score, 256 px, its F1 and AUPRO; mean named mAD); or ADer with ADEval's 50-strip pixel metrics")
    parser.add_argument("--model", default=None, help="provider/model or a baseline: random, oracle (iadbench list models)")
    parser.add_argument("--data-root", help="folder the question file's paths are relative to (default: its folder)")
    parser.add_argument("--shots", type=number_at_least(0), help="normal template images per question (0, 1, k)")
    parser.add_argument("--templates", choices=["random", "similar"], help="which template list to take shots from")
    parser.add_argument("--image-max-side", type=number_at_least(1), help="longest image side sent to the model, in pixels")
    parser.add_argument("--temperature", type=number_at_least(0, float))
    parser.add_argument("--mmad-compat", action="store_true", help="headline scores by the official MMAD scorer")
    parser.add_argument("--strict", action="store_true", help="headline scores strict (unparsable = wrong), also under --suite mmad-official")
    parser.add_argument("--skip-bad", action="store_true", help="skip malformed records (counted and reported) instead of stopping")
    parser.add_argument("--run-id", help="name of the run folder (default: time_model_suite)")
    parser.add_argument("--resume", metavar="RUN", help="continue a run folder: asks only the questions not yet answered")
    parser.add_argument("--retry-errors", action="store_true", help="with --resume: ask again the questions whose backend call failed")
    parser.add_argument("--dry-run", action="store_true", help="print requests, images, estimated tokens and cost; call nothing")
    parser.add_argument("--dump-requests", metavar="DIR", help="with --dry-run: write each request as the backend would send it (API JSON bodies; hf/ prompt text, images, token counts)")
    parser.add_argument("--protocol", help="how questions are put to the model (iadbench list protocols); --suite mmad-official picks the model family's")
    parser.add_argument("--errata", action="append", default=None, metavar="NAME|FILE", help="leave out known faulty records, e.g. mmad-ds-mvtec-pill (counted and shown)")
    parser.add_argument("--strategy", action="append", default=None, metavar="NAME", help="enhancement strategy, repeatable: " + ", ".join(STRATEGY_FORMS))
    add_backend_flags(parser)
    parser.add_argument("--num-processes", type=number_at_least(1), default=1, help="data parallel on this machine: N processes (one per GPU for hf/ models), as torchrun would start them; their answers are merged")
    parser.add_argument("--max-cost", type=number_at_least(0, float), metavar="USD", help="stop cleanly (resumable) once paid tokens reach this cost")
    parser.add_argument("--no-cache", action="store_true", help="bypass the persistent response cache")
    parser.set_defaults(handler=run)


def _resume_spec(args: argparse.Namespace, folder):
    spec = folder.spec()
    folder.check_answer_config(spec)
    given = {"--model": args.model, "--suite": args.suite, "--data": args.data, "--shots": args.shots, "--choice-scoring": args.choice_scoring, "--task": args.task, "--regions": args.regions, "--box-format": args.box_format}
    if args.perturb or args.perturb_templates:
        raise IadbenchError("--resume keeps the run's --perturb (see spec.json); start a new run for other degradations")
    conflicts = [flag for flag, value in given.items() if value is not None and str(value) != str(getattr(spec, flag[2:].replace("-", "_")))]
    if conflicts:
        raise IadbenchError(f"--resume keeps the run's own settings; drop {', '.join(conflicts)} (see {folder.path / 'spec.json'})")
    if args.strategy or args.knowledge:
        raise IadbenchError("--resume keeps the run's strategies (see spec.json); start a new run to try others")
    if args.image_detail or args.api_key_env:
        raise IadbenchError("--resume keeps the run's --image-detail and --api-key-env (see spec.json)")
    # How a run is carried out (connections, timeouts, attempts, budget, cache) may change on
    # resume; what it asks and how it scores may not.
    carried_out = {k: v for k, v in given_model_options(args).items() if k != "base_url"}
    updates: dict = {"model_options": spec.model_options | carried_out}
    if args.max_connections:
        from harness.models.registry import check_concurrency

        updates["max_connections"] = check_concurrency(spec.model, args.max_connections)
    if args.max_cost is not None:
        updates["max_cost_usd"] = args.max_cost
    if args.no_cache:
        updates["cache"] = False
    spec = spec.model_copy(update=updates)
    folder.update_spec(spec)
    if args.retry_errors:
        from harness.run.runlog import RunFolder

        kind = task_kind(spec.task)
        dropped = folder.drop_failed_samples(kind.sample_type)
        for name, sample_type in kind.second_pass_files.items():  # e.g. a judge's failed calls
            if (folder.path / name).is_file():
                dropped += RunFolder(folder.path, name).drop_failed_samples(sample_type)
        print(f"--retry-errors: {dropped} failed samples will be asked again", file=sys.stderr)
    print(f"resuming {folder.path}", file=sys.stderr)
    return spec, folder


def _new_spec(args: argparse.Namespace):
    from harness.run.evaluate import EvalOverrides, resolve_spec
    from harness.models.base import ModelOptions
    from harness.models.registry import create_model

    if args.retry_errors:
        raise IadbenchError("--retry-errors goes with --resume RUN")
    if not args.model:  # a run of the random baseline nobody asked for would look like a result
        raise IadbenchError("eval needs --model: provider/model (openai/gpt-4o, hf/Qwen/Qwen2.5-VL-7B-Instruct, …), or a baseline: random, oracle, expert/patchknn (iadbench list models)")
    model_name = args.model
    options = ModelOptions(**given_model_options(args))
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
        metric_definitions=args.metrics,
        box_format=args.box_format,
        judge=args.judge,
        judge_base_url=args.judge_base_url,
        judge_api_key_env=args.judge_api_key_env,
        perturb=args.perturb,
        perturb_templates=args.perturb_templates,
    )
    from harness.strategies import parse_strategies
    from harness.strategies.wrappers import wrap

    model = wrap(create_model(model_name, seed=args.seed, options=options), parse_strategies(args.strategy or []))
    suite = args.suite or task_kind(args.task or "mcq").default_suite
    return resolve_spec(suite, model_name, overrides, model.default_concurrency), model


def run(args: argparse.Namespace) -> int:
    """One process writes a run at a time: the run folder is locked from before a resume touches it
    until its summary is written."""
    from contextlib import ExitStack

    with ExitStack() as held:
        return _run(args, held)


def _run(args: argparse.Namespace, held) -> int:
    from harness.run.distributed import launched_rank
    from harness.run.runlog import RunFolder
    from harness.run.evaluate import model_for, run_evaluation, start_run

    if launched_rank() is not None:
        return _run_as_rank(args, held)
    if args.num_processes > 1 and args.model:  # refused before a run folder exists
        from harness.models.registry import check_concurrency

        check_concurrency(args.model, args.num_processes, "--num-processes")
    question_set = model = None
    if args.resume:
        folder = RunFolder.open(Path(args.resume))
        if args.num_processes <= 1:  # with several processes, their rank 0 holds the lock
            held.enter_context(folder.lock())
        spec, folder = _resume_spec(args, folder)
        if args.num_processes <= 1:
            model = model_for(spec, base_url=args.base_url)
            getattr(model, "ready", lambda: None)()
    else:
        spec, model = _new_spec(args)
        if args.dump_requests and not args.dry_run:
            raise IadbenchError("--dump-requests goes with --dry-run (nothing is sent)")
        if args.dry_run:
            from harness.run.dryrun import estimate

            kind = task_kind(spec.task)
            if not kind.dry_runnable:
                raise IadbenchError(f"--dry-run cannot build the requests of --task {spec.task} without running it; try --limit on a real run")
            dump = Path(args.dump_requests) if args.dump_requests else None
            spec, data = kind.prepare(spec)
            print(estimate(spec, data, model, dump).describe(spec.model))
            note = kind.dry_run_note(spec)
            if note:
                print(note)
            if dump is not None:
                print(f"requests written to {dump}")
            return 0
        getattr(model, "ready", lambda: None)()  # e.g. an API key: checked before the folder exists
        task_kind(spec.task).ready(spec)
        spec, folder, question_set = start_run(spec, Path(args.runs_dir))
        if args.num_processes <= 1:
            held.enter_context(folder.lock())
        if not args.quiet:  # where a long run's answers go (to resume it); --quiet names it once, at the end
            print(f"answers go to {folder.path} as they arrive", file=sys.stderr)
    if args.num_processes > 1:
        from harness.models.registry import check_concurrency
        from harness.run.parallel import launch_ranks

        check_concurrency(spec.model, args.num_processes, "--num-processes")

        if getattr(model, "managed_engine", False):
            raise IadbenchError("--num-processes with a managed engine would start one engine a process; let the engine parallelise: --engine-args '--data-parallel-size N'")
        from harness.run.evaluate import build_task

        total = len(build_task(spec, folder, question_set)[0].ids)  # for the progress line
        return launch_ranks(folder, args.num_processes, total=total, base_url=args.base_url, progress=not args.quiet)
    getattr(model, "attach_run_folder", lambda path: None)(folder.path)
    try:
        summary = run_evaluation(spec, folder, question_set=question_set, model=model, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted; every finished answer is saved. Continue with: iadbench eval --resume {folder.path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FatalBackendError as error:
        print(f"iadbench: error: {error}\nevery finished answer is saved; continue with: iadbench eval --resume {folder.path} --retry-errors", file=sys.stderr)
        return EXIT_ALL_FAILED
    return _finish(spec, summary, folder)


def _finish(spec, summary, folder) -> int:
    """Print the results and say how the run ended (the exit-code contract above)."""
    from harness.report.reference import comparison_lines
    from harness.results.tables import answered
    from harness.results.run_table import results_table
    from harness.tasks.registry import task_kind

    print(results_table(summary, spec))
    # a run without answers has no scores to compare, only why (above); the comparison lines are
    # the MMAD-style kinds' (their protocol, the other scorer, the published row)
    if answered(summary) and task_kind(spec.task).answers_questions:
        for line in comparison_lines(spec, summary, folder):
            print(line)
    print(f"run folder: {folder.path}")
    if summary.stopped_reason:
        print(f"stopped early ({summary.stopped_reason}); continue with: iadbench eval --resume {folder.path} --max-cost <higher>", file=sys.stderr)
        return EXIT_COST_LIMIT
    failed = summary.status_counts.get("error", 0)
    if summary.n_samples and failed == summary.n_samples:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.error_counts.items()))
        print(f"iadbench: error: every question failed ({kinds}); fix the cause, then: iadbench eval --resume {folder.path} --retry-errors", file=sys.stderr)
        return EXIT_ALL_FAILED
    return 0


def _run_as_rank(args: argparse.Namespace, held) -> int:
    """One of WORLD_SIZE processes (torchrun, accelerate launch, --num-processes): see
    harness/run/distributed.py for who does what."""
    from harness.run.distributed import ProcessGroup
    from harness.run.evaluate import model_for, run_evaluation, start_run
    from harness.run.runlog import RunFolder

    if args.num_processes > 1:
        raise IadbenchError("already one of several processes (WORLD_SIZE is set): drop --num-processes under torchrun or accelerate launch")
    if args.dry_run:
        raise IadbenchError("--dry-run runs in one process; drop torchrun/accelerate launch")
    if args.model:  # several processes each asking their own block: not for a model that answers one question at a time
        from harness.models.registry import check_concurrency

        check_concurrency(args.model, int(os.environ.get("WORLD_SIZE", "1")), "WORLD_SIZE")
    group = ProcessGroup()
    held.callback(group.close)
    model, found, failure = None, None, None
    if group.rank == 0:
        try:
            if args.resume:
                folder = RunFolder.open(Path(args.resume))
                held.enter_context(folder.lock())
                spec, folder = _resume_spec(args, folder)
            else:
                spec, model = _new_spec(args)
                getattr(model, "ready", lambda: None)()
                spec, folder, _ = start_run(spec, Path(args.runs_dir))
                held.enter_context(folder.lock())
                print(f"run folder: {folder.path} ({group.world} processes)", file=sys.stderr)
            folder.merge_shards(task_kind(spec.task).sample_type)  # what a killed run left in shard files
            found = str(folder.path)
        except IadbenchError as error:
            failure = error
    path, message = group.broadcast((found, None if failure is None else str(failure)))
    if message is not None:
        if failure is not None:
            raise failure
        return EXIT_BAD_INPUT
    folder = RunFolder.open(Path(path))
    spec = folder.spec()
    if model is None:
        model = model_for(spec, base_url=args.base_url)
        getattr(model, "ready", lambda: None)()
    fatal = None
    try:
        run_evaluation(spec, folder, model=model, progress=not args.quiet and group.rank == 0, shard=(group.rank, group.world))
    except FatalBackendError as error:  # still meet the others, so no rank waits forever
        fatal = error
    group.barrier()
    if group.rank != 0:
        return EXIT_ALL_FAILED if fatal else 0
    try:
        summary = run_evaluation(spec, folder, model=model, progress=False)  # merges the shards; asks what a failed rank left
    except FatalBackendError as error:
        print(f"iadbench: error: {error}\nevery finished answer is saved; continue with: iadbench eval --resume {folder.path} --retry-errors", file=sys.stderr)
        return EXIT_ALL_FAILED
    return _finish(spec, summary, folder)
