"""Run the real iadbench CLI with one extra, deliberately slow test model registered.

`slowtest/<anything>` answers like the random baseline (same letter for the same question and
seed) after a short sleep, so a test can kill the process while answers are still arriving.
"""

import asyncio
import os
import sys

from harness.cli import main
from harness.models.base import GenerateRequest, GenerateResponse
from harness.models.registry import Provider, register_provider
from harness.models.baselines import per_sample_rng


class SlowRandom:
    default_concurrency = 4
    cacheable = False

    def __init__(self, name: str, seed: int) -> None:
        self.name, self.seed = name, seed
        self.cache_identity = name

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        rng = per_sample_rng(self.seed, request.sample_id)
        scale = float(os.environ.get("SLOWTEST_DELAY_SCALE", "1"))  # a test that kills a process mid-run slows it
        await asyncio.sleep(scale * (0.004 + 0.008 * rng.random()))  # uneven latency: answers arrive out of order
        return GenerateResponse(text=f"The answer is {rng.choice(request.option_letters)}.", latency_s=0.01)

    async def aclose(self) -> None:
        return None


def create(name: str, *, seed: int, options=None) -> SlowRandom:
    return SlowRandom(name, seed)


register_provider(Provider("slowtest", "tests.slow_model_cli:create", "test-only slow random model"))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
