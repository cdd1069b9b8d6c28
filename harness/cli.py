"""The `iadbench` command line. Each command lives in harness/commands/; heavy modules are imported
inside each command, so start-up stays fast."""

from __future__ import annotations

import argparse
import sys

from harness.commands import ablate, eval_command, generation, listing, report, scoring
from harness.errors import IadbenchError

COMMANDS = (eval_command, scoring, ablate, report, generation, listing)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iadbench", description="Evaluate multimodal LLMs on industrial anomaly detection.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except IadbenchError as error:
        print(f"iadbench: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `iadbench list suites | head`: the reader left, nothing went wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        engines = sys.modules.get("harness.models.engines")
        if engines is not None:  # an engine this command started stops with it, whatever happened
            engines.stop_all()


if __name__ == "__main__":
    sys.exit(main())
