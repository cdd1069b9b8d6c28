"""Non-LLM baselines: `random` (chance level) and `oracle` (perfect score)."""

from __future__ import annotations

import hashlib
import random

from harness.models.base import GenerateRequest, GenerateResponse


def per_sample_rng(seed: int, sample_id: str) -> random.Random:
    """A generator that depends only on (run seed, question), never on order or concurrency."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class RandomChoice:
    default_concurrency = 64
    cacheable = False

    def __init__(self, name: str, seed: int) -> None:
        self.name, self.seed = name, seed
        self.cache_identity = name

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if not request.option_letters:
            return GenerateResponse(error="random baseline needs the option letters of the question")
        letter = per_sample_rng(self.seed, request.sample_id).choice(request.option_letters)
        return GenerateResponse(text=letter)

    async def aclose(self) -> None:
        return None


class Oracle:
    default_concurrency = 64
    cacheable = False

    def __init__(self, name: str) -> None:
        self.name = self.cache_identity = name

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if request.reference_answer is None:
            return GenerateResponse(error="oracle baseline needs the reference answer of the question")
        return GenerateResponse(text=request.reference_answer)

    async def aclose(self) -> None:
        return None


def create_random(name: str, *, seed: int, options=None) -> RandomChoice:
    return RandomChoice(name, seed)


def create_oracle(name: str, *, seed: int, options=None) -> Oracle:
    return Oracle(name)
