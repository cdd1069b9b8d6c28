"""Suites: what a standard evaluation is, as small TOML files beside this module."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError
from harness.schema import DecodingSpec, ScoringMode, TemplateKind

DEFAULT_SUITE = "synthetic-quick"


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    data: str
    task: str = "mcq"  # a task kind's name (harness/tasks/registry.py)
    regions: str = "slic"
    gpt4vad_prompt: Literal["zero-shot", "zero-shot-no-class", "iadbench-one-shot", "one-shot"] = "zero-shot"
    shots: int = 1
    templates: TemplateKind = "random"
    image_max_side: int | None = None
    scoring: ScoringMode = "strict"
    choice_scoring: Literal["generate", "logprobs"] = "generate"
    protocol: str = Field("harmonised", description="harness/protocols/ name, or auto: the model family's official protocol")
    decoding: DecodingSpec = DecodingSpec()


def suite_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def load_suite(name: str) -> Suite:
    resource = resources.files(__name__).joinpath(f"{name}.toml")
    if not resource.is_file():
        raise ConfigError(f"unknown suite {name!r}; known suites: {', '.join(suite_names())}")
    try:
        return Suite(name=name, **tomllib.loads(resource.read_text()))
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise ConfigError(f"suite file {name}.toml is invalid: {error}") from None
