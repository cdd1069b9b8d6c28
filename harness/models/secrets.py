"""Every credential the run knows, and the one function that takes them out of text.

A server may echo the key it was sent (in an error body, or in a reply a hostile or buggy proxy
writes); a model may repeat a token from its prompt. Whatever a backend hands back is scrubbed of
these before it reaches the cache, samples.jsonl, judgements.jsonl, a log or a report
(harness/models/admission.py). Backends register the keys they use; tokens and keys in this
process's environment (HF_TOKEN, *_API_KEY, …) are known from the start.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"
# Shorter values ("EMPTY", "none", a one-letter placeholder key for a local server) are not
# secrets, and replacing them would garble every reply that happens to contain the word.
MIN_SECRET_CHARS = 6
_CREDENTIAL_NAME = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_PLACEHOLDERS = frozenset({"EMPTY", "none", "dummy", "sk-no-key-required"})

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a credential this run uses, so no text it writes ever holds it."""
    if value and len(value) >= MIN_SECRET_CHARS and value not in _PLACEHOLDERS:
        _registered.add(value)


def register_url_credentials(url: str | None) -> None:
    """A base URL's password (user:password@host) and query values (?api-key=…) are credentials too."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        register_secret(parts.password)
        for _, value in parse_qsl(parts.query):
            register_secret(value)
    except ValueError:  # an unparsable URL is refused where it is used
        return


def known_secrets() -> list[str]:
    """The registered credentials and the environment's, longest first (a key containing another
    is replaced whole)."""
    found = set(_registered)
    for name, value in os.environ.items():
        if _CREDENTIAL_NAME.search(name) and value and len(value) >= MIN_SECRET_CHARS and value not in _PLACEHOLDERS:
            found.add(value)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every known credential replaced by ***."""
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
