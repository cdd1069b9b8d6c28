"""Non-LLM baselines: `random` (chance level) and `oracle` (perfect score)."""

from __future__ import annotations

import hashlib
import json
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
        if request.box_frame is not None:
            return GenerateResponse(text=self._boxes(request))
        if not request.option_letters:
            return GenerateResponse(error="random baseline needs the option letters of the question")
        letter = per_sample_rng(self.seed, request.sample_id).choice(request.option_letters)
        return GenerateResponse(text=letter)

    def _boxes(self, request: GenerateRequest) -> str:
        """Chance level for boxes: no box half the time, else one box of random place and size
        (a side of 5-50% of the image), in the request's coordinate frame."""
        rng = per_sample_rng(self.seed, request.sample_id)
        if rng.random() < 0.5:
            return "[]"
        width, height = request.box_frame
        w, h = rng.uniform(0.05, 0.5) * width, rng.uniform(0.05, 0.5) * height
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        return json.dumps([{"bbox": [round(x, 2), round(y, 2), round(x + w, 2), round(y + h, 2)]}])

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
