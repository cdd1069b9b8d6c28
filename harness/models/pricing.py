"""Token cost from the editable price table (harness/models/prices.toml, or $IADBENCH_PRICES)."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from harness.schema import Usage


@lru_cache(maxsize=4)
def price_table(path: str | None = None) -> dict[str, dict[str, float]]:
    path = path or os.environ.get("IADBENCH_PRICES")
    text = Path(path).read_text() if path else resources.files("harness.models").joinpath("prices.toml").read_text()
    return tomllib.loads(text)


def cost_usd(model: str, usage: Usage) -> float | None:
    """Cost of one response for `provider/model`, or None when the model has no price."""
    prices = price_table().get(model.split("/", 1)[-1])
    if prices is None:
        return None
    return (usage.prompt_tokens * prices["input"] + usage.completion_tokens * prices["output"]) / 1_000_000
