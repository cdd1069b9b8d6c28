"""`iadbench list`: suites, models (providers), protocols, box formats and degradations."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    listing = commands.add_parser("list", help="list suites, models (providers), protocols, box formats or degradations")
    listing.add_argument("what", choices=["suites", "models", "protocols", "box-formats", "perturbations"])
    listing.set_defaults(handler=_list)


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
    elif args.what == "box-formats":
        from harness.tasks.bbox.task import box_formats

        for name, box_format in box_formats().items():
            picks = f" (picked for: {', '.join(box_format.patterns)})" if box_format.patterns else ""
            print(f"{name:<12} {box_format.description}{picks}")
    elif args.what == "perturbations":
        from harness.asking.perturb import PARAMETERS

        from harness.tasks.registry import task_kind, task_kind_names

        for kind, values in PARAMETERS.items():
            print(f"{kind:<16} severities 1-5: {', '.join(f'{v:g}' for v in values)}")
        from harness.tasks.registry import kinds_owning

        owned = sorted({value for name in task_kind_names() for value in task_kind(name).own_perturbations})
        for value in owned:  # a benchmark's own degradations, applied by its kind
            print(f"{value:<16} a benchmark's own degradation, with {kinds_owning(lambda kind, value=value: value in kind.own_perturbations)}")
    else:
        from harness.models.registry import providers

        for provider in providers():
            example = provider.name if not provider.needs_model_part else f"{provider.name}/<model>"
            print(f"{example:<18} {provider.description}")
    return 0
