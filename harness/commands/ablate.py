"""`iadbench ablate`: one model, several strategy arms as resumable runs, deltas with paired intervals."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.flags import add_backend_flags, add_run_flags, given_model_options
from harness.errors import IadbenchError


def register(commands) -> None:
    ablate = commands.add_parser("ablate", help="one model, several strategy arms, deltas with paired bootstrap intervals")
    ablate.add_argument("--model", required=True)
    ablate.add_argument("--strategies", default="baseline", help="arms separated by commas, strategies in an arm joined by '+': baseline,rag,agent=expert:bbox,rag+agent=expert")
    ablate.add_argument("--perturb-sweep", metavar="KIND[,KIND]", help="add one arm per severity 1-5 of each degradation kind (iadbench list perturbations); the report draws accuracy against severity")
    ablate.add_argument("--perturb-templates", action="store_true", help="with --perturb-sweep: degrade the template images too")
    add_run_flags(ablate)
    add_backend_flags(ablate)
    ablate.add_argument("--out", help="ablation folder (default runs/ablate-<time>); give the same one to resume")
    ablate.set_defaults(handler=_ablate)


def _ablate(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from harness.results.ablation import ablation_table, markdown, parse_arms, sweep_arms, write_outputs
    from harness.run.evaluate import EvalOverrides, resolve_spec, run_evaluation, start_run
    from harness.models.base import ModelOptions
    from harness.models.registry import create_model
    from harness.run.runlog import RunFolder

    arms = parse_arms(args.strategies) + (sweep_arms(args.perturb_sweep) if args.perturb_sweep else [])
    folder = Path(args.out or Path(args.runs_dir) / f"ablate-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}")
    options = ModelOptions(**given_model_options(args))
    model = create_model(args.model, seed=args.seed, options=options)

    def shared(spec):
        """A local model is loaded once for all arms; other backends are made afresh per arm."""
        if not getattr(model, "reusable_across_runs", False):
            return None
        from harness.strategies import parse_strategies
        from harness.strategies.wrappers import wrap

        return wrap(model, parse_strategies(spec.strategies))

    # Every arm is resolved (strategies, degradations, what the model can do) before the first
    # runs: a bad arm name costs seconds, not the arms before it and a half-made ablation folder.
    planned = []
    for arm in arms:
        target = folder / arm.slug
        if (target / "spec.json").is_file():  # resumable: an arm already started is continued
            planned.append((arm, target, RunFolder.open(target).spec(), True))
            continue
        overrides = EvalOverrides(
            data=args.data, limit=args.limit, seed=args.seed, run_id=arm.slug, strategies=arm.strategies, knowledge=args.knowledge,
            max_connections=args.max_connections, model_options=options, choice_scoring=args.choice_scoring, max_new_tokens=args.max_new_tokens,
            perturb=list(arm.perturb), perturb_templates=args.perturb_templates and bool(arm.perturb),
        )
        try:
            spec = resolve_spec(args.suite or "synthetic-quick", args.model, overrides, model.default_concurrency)
        except IadbenchError as error:
            raise type(error)(f"arm {arm.name!r}: {error}") from error
        planned.append((arm, target, spec, False))
    done = []
    for arm, target, spec, started in planned:
        if started:
            run = RunFolder.open(target)
            print(f"[{arm.name}] resuming {target}", file=sys.stderr)
            summary = run_evaluation(spec, run, model=shared(spec), progress=not args.quiet)
        else:
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