"""Strategies that change how a model is called, not what a prompt says: chain-of-thought and
self-consistency wrap any backend and keep its protocol."""

from __future__ import annotations

import asyncio
from collections import Counter

from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, Model, TextPart
from harness.asking.parsing import parse_choice
from harness.schema import Usage


def _add_usage(first: Usage, second: Usage) -> Usage:
    return Usage(prompt_tokens=first.prompt_tokens + second.prompt_tokens, completion_tokens=first.completion_tokens + second.completion_tokens)


class _Wrapper:
    def __init__(self, inner: Model, suffix: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.default_concurrency = inner.default_concurrency
        self.cacheable = inner.cacheable
        self.cache_identity = f"{inner.cache_identity}+{suffix}"  # a different call pattern is a different answer

    def ready(self) -> None:
        getattr(self.inner, "ready", lambda: None)()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ChainOfThought(_Wrapper):
    """Turn 1: the context and a request to compare the query with the normal sample. Turn 2: the
    question, with the model's own description kept in the conversation before it."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner, "cot")

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if not request.chain_of_thought:
            return await self.inner.generate(request)
        context, _, question = request.messages
        # The description turn is free text whatever the run's choice scoring: no letters to score.
        describe = {"messages": [context], "chain_of_thought": False, "choice_scoring": "generate", "option_letters": None}
        first = await self.inner.generate(request.model_copy(update=describe))
        if first.error is not None:
            return first
        conversation = [context, ChatMessage(role="assistant", content=[TextPart(text=first.text or "(no description)")]), question]
        second = await self.inner.generate(request.model_copy(update={"messages": conversation, "chain_of_thought": False}))
        return second.model_copy(update={
            "usage": _add_usage(first.usage, second.usage),
            "latency_s": first.latency_s + second.latency_s,
            "attempts": first.attempts + second.attempts - 1,
            "reasoning": first.text,
            "notes": first.notes + second.notes,
        })


class SelfConsistency(_Wrapper):
    """N answers at temperature T (each with its own seed), majority vote over the parsed letters.
    Ties go to the higher summed log-probability when the backend gives them, else to the earlier
    letter; the share of samples agreeing with the answer is kept as `consistency`."""

    def __init__(self, inner: Model, samples: int, temperature: float) -> None:
        super().__init__(inner, f"sc{samples}@{temperature:g}")
        self.samples, self.temperature = samples, temperature

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        decoding = request.decoding.model_copy(update={"temperature": self.temperature})
        variants = [request.model_copy(update={"decoding": decoding, "sample_seed": request.sample_seed * 1000 + i}) for i in range(self.samples)]
        responses = await asyncio.gather(*(self.inner.generate(v) for v in variants))
        answered = [r for r in responses if r.error is None]
        if not answered:
            return responses[0]
        letters = [parse_choice(r.text, request.options or {}).letter for r in answered]
        votes = Counter(letter for letter in letters if letter)
        usage = Usage()
        for r in responses:
            usage = _add_usage(usage, r.usage)
        summary = ", ".join(f"{letter}x{count}" for letter, count in sorted(votes.items())) or "no parsable answer"
        if not votes:
            return answered[0].model_copy(update={"usage": usage, "reasoning": f"votes: {summary}", "consistency": 0.0})
        best = max(votes.values())
        tied = sorted(letter for letter, count in votes.items() if count == best)

        def logprob_mass(letter: str) -> float:
            return sum((r.option_logprobs or {}).get(letter, float("-inf")) for r in answered if r.option_logprobs)

        winner = max(tied, key=lambda letter: (logprob_mass(letter), -ord(letter)))
        return GenerateResponse(
            text=winner,
            usage=usage,
            latency_s=max(r.latency_s for r in responses),
            attempts=1 + sum(r.attempts - 1 for r in responses),  # retries are failed attempts, not the samples
            reasoning=f"votes: {summary}",
            consistency=best / self.samples,
            notes=[n for r in responses for n in r.notes],
        )


def wrap(model: Model, strategies) -> Model:
    """Apply the call-pattern strategies of a run: self-consistency outside chain-of-thought, so
    each of the N samples is a whole chain."""
    if strategies.cot:
        model = ChainOfThought(model)
    if strategies.sc:
        model = SelfConsistency(model, strategies.sc.samples, strategies.sc.temperature)
    return model
