"""What reaches the terminal: everything iadbench prints goes through one guard that shows control
characters escaped, so text that came from data, a server or a model cannot act on the terminal.

A folder named `\\x1b]0;owned\\x07`, an API error body holding `\\x1b[2J`, a question key with a
right-to-left override: printed raw, each retitles the window, clears the screen or reorders what
the user reads. The CLI installs `GuardedStream` over stdout and stderr at entry (harness/cli.py), so
every print, warning, log line and argparse message goes through it, including ones written
later: no call site has to remember. The project's own control output (a progress line's carriage
return) is written with `write_control`; a library's progress bar (tqdm) keeps its carriage return
only. Those are the only ways past the guard.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

# C0 controls but newline and tab, DEL, C1 controls (U+0085 and the 8-bit CSI U+009B among them),
# the bidirectional overrides and isolates that reorder what is shown (Trojan Source), and lone
# surrogates (a reply's "\ud800" would otherwise stop the print with UnicodeEncodeError).
_BEYOND_C0 = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f{_BEYOND_C0}]")
# A progress bar drawn by a library (tqdm: Hugging Face downloads, checkpoint shards) redraws its
# line with a carriage return: that one character passes when tqdm itself writes it.
_UNSAFE_BUT_CR = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_BEYOND_C0}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\u202e`); newline and tab kept."""
    return _UNSAFE.sub(_escaped, text) if _UNSAFE.search(text) else text


class GuardedStream:
    """A text stream that escapes control characters in everything written to it, and passes every
    other attribute (fileno, isatty, encoding, flush) to the stream it guards."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        if "\r" in text and sys._getframe(1).f_globals.get("__name__", "").startswith("tqdm"):
            self.inner.write(_UNSAFE_BUT_CR.sub(_escaped, text))
        else:
            self.inner.write(escape_controls(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def write_control(self, text: str) -> None:
        self.inner.write(text)

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def write_control(stream: TextIO, text: str) -> None:
    """The project's own control characters (a carriage return that redraws a progress line),
    written past the guard; only ever constant text, never data."""
    if isinstance(stream, GuardedStream):
        stream.write_control(text)
    else:
        stream.write(text)


@contextmanager
def guarded_output() -> Iterator[None]:
    """stdout and stderr guarded for the length of a command, then put back as they were (a test or
    a library caller that runs main() gets its own streams back)."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _guard(sys.stdout)
    sys.stderr = _guard(sys.stderr)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to show
                pass
        sys.stdout, sys.stderr = saved


def _guard(stream):
    if stream is None or isinstance(stream, GuardedStream):  # pythonw has none; nested main() guards once
        return stream
    return GuardedStream(stream)
