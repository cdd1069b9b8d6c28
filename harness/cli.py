"""The `iadbench` command line. Each command lives in harness/commands/; heavy modules are imported
inside each command, so start-up stays fast.

Every way out is one line and an exit code (README: exit codes): a user's mistake is 2 with what to
do, Ctrl-C at any moment is 130, a file-system failure names its path, and anything unforeseen
says so in one line (IADBENCH_DEBUG=1 shows the traceback) rather than a traceback. Everything
printed while a command runs passes one guard (harness/storage/terminal.py): control characters
that came from data, a server or a model are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import os
import sys

EXIT_BAD_INPUT, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 2, 1, 130


def _interrupted_hook(kind, value, traceback) -> None:
    """Ctrl-C before main() holds the keyboard (while Python imports the commands): 130, quietly."""
    if issubclass(kind, KeyboardInterrupt):
        print("\ninterrupted", file=sys.stderr)
        os._exit(EXIT_INTERRUPTED)
    sys.__excepthook__(kind, value, traceback)


def _unraisable_hook(unraisable) -> None:
    """Ctrl-C landing in a callback Python cannot raise from (an import lock's weakref callback
    during start-up) would print "Exception ignored … Traceback" and be lost: stop as Ctrl-C does."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        print("\ninterrupted", file=sys.stderr)
        os._exit(EXIT_INTERRUPTED)
    sys.__unraisablehook__(unraisable)


if __name__ == "__main__" or "iadbench" in os.path.basename(sys.argv[0] if sys.argv else ""):
    # the console script and `python -m harness.cli` only, never a library user
    sys.excepthook = _interrupted_hook
    sys.unraisablehook = _unraisable_hook


def build_parser():
    import argparse

    from harness.commands import ablate, audit, eval_command, fetch_command, generation, listing, report, scoring

    class Parser(argparse.ArgumentParser):
        """A mistyped flag is one line that says where the options are, not thirty lines of usage."""

        def error(self, message: str):  # type: ignore[override]
            self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} ({self.prog} --help lists what it takes)\n")

    parser = Parser(prog="iadbench", description="Evaluate multimodal LLMs on industrial anomaly detection.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (fetch_command, eval_command, scoring, ablate, report, generation, audit, listing):
        command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from harness.storage.terminal import guarded_output

    with guarded_output():  # all output, from here on: control characters in data shown escaped
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except KeyboardInterrupt:
        print("\niadbench: interrupted; nothing finished was lost (an eval continues with --resume RUN)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `iadbench list suites | head`: the reader left, nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        return _report_error(error)
    finally:
        engines = sys.modules.get("harness.models.engines")
        if engines is not None:  # an engine this command started stops with it, whatever happened
            engines.stop_all()


def _report_error(error: Exception) -> int:
    from harness.errors import IadbenchError

    if isinstance(error, IadbenchError):
        print(f"iadbench: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(error, OSError):  # a full disk, a read-only folder, a missing file: name it
        where = f"{error.filename}: " if error.filename else ""
        print(f"iadbench: error: {where}{error.strerror or error}; check the path, its permissions and free space", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(error, RecursionError):
        print("iadbench: error: an input is nested too deeply to read (thousands of levels); it is not a file iadbench reads", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(error, MemoryError):
        print("iadbench: error: out of memory; try a smaller --batch-size or fewer images at once", file=sys.stderr)
        return EXIT_UNEXPECTED
    if os.environ.get("IADBENCH_DEBUG"):
        import traceback

        traceback.print_exception(error)
    message = str(error).splitlines()[0][:300] if str(error) else ""
    print(f"iadbench: error: unexpected {type(error).__name__}{': ' + message if message else ''} (a bug in iadbench: please report it; IADBENCH_DEBUG=1 shows where)", file=sys.stderr)
    return EXIT_UNEXPECTED


def entry() -> None:
    """The console script (and `python -m harness.cli`): main's exit code, also for Ctrl-C. After an
    interrupt CPython may still end the process by SIGINT at exit (when the interrupt arrived
    inside code it ran through PyRun_*), which a shell sees as -2, not the promised 130."""
    code = main()
    import signal

    # the work is done: a Ctrl-C arriving while the interpreter shuts down must not turn the exit
    # code into death by SIGINT (-2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
