"""The one door a backend's response comes in by, before the cache, samples.jsonl,
judgements.jsonl, logs or a report see it (harness/run/runner.py calls admit on every response,
fresh or cached, the judge's included).

Whatever a server or a model wrote is made safe to keep here, once, for every backend:
credentials the run knows are scrubbed (a server echoing the key), lone surrogates (JSON's
"\\ud800", which no UTF-8 file holds) become U+FFFD, token counts past any real reply are capped,
and per-option log-probabilities that are not probabilities are dropped. Each change is said in a
note, so the run's spec records that it happened.
"""

from __future__ import annotations

import math

from harness.models.base import GenerateResponse
from harness.models.secrets import known_secrets, scrub
from harness.schema import Usage
from harness.storage.files import json_safe

# No model reads or writes 100 million tokens in one call; a larger count (10**400, 1e308) is a
# server's nonsense and would make the run's cost infinite.
MAX_RESPONSE_TOKENS = 100_000_000
SURROGATE_NOTE = "a reply held lone UTF-16 surrogates (text no UTF-8 file can hold); each was kept as U+FFFD"
SECRET_NOTE = "a response held a credential this run uses (the server echoed it); it was replaced by ***"
USAGE_NOTE = f"a server reported more than {MAX_RESPONSE_TOKENS:,} tokens for one call; the count was capped there"
LOGPROB_NOTE = "a server returned option log-probabilities that are not finite numbers ≤ 0; they were left out"


def without_surrogates(text: str) -> str:
    """`text` with each lone surrogate (a Python str from JSON can hold them) replaced by U+FFFD."""
    return json_safe(text)  # type: ignore[return-value]  # the writers' own rule, so both agree


def valid_logprob(value: object) -> bool:
    """A log-probability as a probability has one: a real number (not a bool), finite, at most 0."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value <= 0


def admit(response: GenerateResponse) -> GenerateResponse:
    """`response` as a run may keep it (see the module's docstring); unchanged when nothing is wrong."""
    updates: dict = {}
    notes = list(response.notes)
    secrets = known_secrets()
    for field in ("text", "error", "reasoning"):
        value = getattr(response, field)
        if not value:
            continue
        cleaned = without_surrogates(value)
        if cleaned != value and SURROGATE_NOTE not in notes:
            notes.append(SURROGATE_NOTE)
        scrubbed = scrub(cleaned, secrets)
        if scrubbed != cleaned and SECRET_NOTE not in notes:
            notes.append(SECRET_NOTE)
        if scrubbed != value:
            updates[field] = scrubbed
    usage = response.usage
    if max(usage.prompt_tokens, usage.completion_tokens) > MAX_RESPONSE_TOKENS:
        updates["usage"] = Usage(prompt_tokens=min(usage.prompt_tokens, MAX_RESPONSE_TOKENS), completion_tokens=min(usage.completion_tokens, MAX_RESPONSE_TOKENS))
        notes.append(USAGE_NOTE)
    if response.option_logprobs is not None:
        kept = {str(letter): float(value) for letter, value in response.option_logprobs.items() if valid_logprob(value)}
        if len(kept) != len(response.option_logprobs):
            updates["option_logprobs"] = kept or None
            notes.append(LOGPROB_NOTE)
    cleaned_notes = [scrub(without_surrogates(note), secrets) for note in notes]
    if cleaned_notes != response.notes:
        updates["notes"] = list(dict.fromkeys(cleaned_notes))
    return response.model_copy(update=updates) if updates else response
