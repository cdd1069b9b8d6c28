"""Token cost from the editable price table (harness/models/prices.toml, or $IADBENCH_PRICES)."""

from __future__ import annotations

import math
import os
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from harness.schema import Usage


# No model costs a million dollars per million tokens; the bound keeps every cost finite (inf or
# 1e308 in a price table would make summary.json's cost Infinity and every budget check wrong).
MAX_PRICE = 1_000_000


def _valid_price(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= MAX_PRICE


def price_table(path: str | None = None) -> dict[str, dict[str, float]]:
    """{model: {input, output}} in USD per million tokens; a malformed table is named, entry by entry."""
    # the environment is read on every call (a cache keyed on no argument kept the first table seen)
    return _read_table(path or os.environ.get("IADBENCH_PRICES"))


@lru_cache(maxsize=4)
def _read_table(path: str | None) -> dict[str, dict[str, float]]:
    from harness.errors import ConfigError
    from harness.storage.files import read_text_file

    where = path or "harness/models/prices.toml"
    text = read_text_file(Path(path), what="price table") if path else resources.files("harness.models").joinpath("prices.toml").read_text()
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML ({error})") from None
    for model, prices in table.items():
        if not isinstance(prices, dict) or not all(_valid_price(prices.get(k)) for k in ("input", "output")):
            raise ConfigError(f"{where}: [{model}] needs input and output prices (USD per million tokens, finite numbers from 0 to {MAX_PRICE:,})")
    return table


def cost_usd(model: str, usage: Usage) -> float | None:
    """Cost of one response for `provider/model`, or None when the model has no price."""
    prices = price_table().get(model.split("/", 1)[-1])
    if prices is None:
        return None
    return (usage.prompt_tokens * prices["input"] + usage.completion_tokens * prices["output"]) / 1_000_000
