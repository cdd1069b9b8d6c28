"""`iadbench list`: suites, models (providers) and protocols."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    listing = commands.add_parser("list", help="list suites or models")
    listing.add_argument("what", choices=["suites", "models", "protocols"])
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
    else:
        from harness.models.base import providers

        for provider in providers():
            example = provider.name if not provider.needs_model_part else f"{provider.name}/<model>"
            print(f"{example:<18} {provider.description}")
    return 0
