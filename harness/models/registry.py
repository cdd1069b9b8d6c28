"""The registry of providers: which backend a model name names.

A model name is `provider/model` (`openai/gpt-4o`, `hf//abs/path`) or a bare baseline name
(`random`, `oracle`). Providers are registered by import path and imported only when used, so an
optional SDK is never loaded for a run that does not need it. The backends import base.py (the
protocol), never this module: the registry sits above them, with no cycle.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.models.base import Model, ModelOptions


@dataclass(frozen=True)
class Provider:
    name: str
    factory: str  # "module:function", imported lazily; called as f(model_name, seed=…, options=…)
    description: str
    needs_model_part: bool = True
    # Whether it writes free text (a chain-of-thought description turn); a baseline that only picks
    # letters or boxes cannot, and --strategy cot with it is refused before a run starts.
    free_text: bool = True
    # A baseline computed here (random, oracle, the expert): no tokens, no price, nothing to estimate.
    local_baseline: bool = False
    # Questions in flight at most, whatever --max-connections asks (None: no limit): a person
    # answers one question at a time, in the run's order.
    max_concurrency: int | None = None
    # A person answers (in the browser): multiple-choice questions only, one per call under the
    # harmonised protocol, never resampled; a report shows agreement between such runs.
    person: bool = False
    # How a report names its runs, with {part} the model part ("human: {part}"); None: the model name.
    row_label: str | None = None


_PROVIDERS: dict[str, Provider] = {}


def register_provider(provider: Provider) -> None:
    _PROVIDERS[provider.name] = provider


def providers() -> list[Provider]:
    return sorted(_PROVIDERS.values(), key=lambda p: p.name)


def provider_of(name: str) -> Provider | None:
    """The provider a model name belongs to (None: unknown; create_model names the known ones)."""
    return _PROVIDERS.get(name.partition("/")[0])


def model_label(name: str) -> str:
    """How reports name a model: its provider's row label ("human: ana") or the name itself."""
    provider = provider_of(name)
    if provider is None or provider.row_label is None:
        return name
    return provider.row_label.format(part=name.partition("/")[2])


def check_concurrency(name: str, requested: int, flag: str = "--max-connections") -> int:
    """`requested` questions in flight, refused past what the model's provider allows."""
    provider = provider_of(name)
    cap = provider.max_concurrency if provider is not None else None
    if cap is not None and requested > cap:
        raise ConfigError(f"{flag} {requested}: {name} answers {cap} question{'s' if cap > 1 else ''} at a time; leave {flag} out")
    return requested


def create_model(name: str, *, seed: int = 0, options: ModelOptions | None = None) -> Model:
    """Resolve a model name to a backend instance."""
    provider_name, _, model_part = name.partition("/")
    provider = _PROVIDERS.get(provider_name)
    if provider is None:
        known = ", ".join(p.name for p in providers())
        raise ConfigError(f"unknown model provider {provider_name!r} in {name!r}; known providers: {known}")
    if provider.needs_model_part and not model_part:
        raise ConfigError(f"model {name!r} needs a model after the provider, like {provider.name}/<model>")
    if not provider.needs_model_part and model_part:
        raise ConfigError(f"baseline {provider.name!r} takes no model part; use --model {provider.name}")
    module_name, _, function_name = provider.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), function_name)
    return factory(name, seed=seed, options=options or ModelOptions())


register_provider(
    Provider("openai", "harness.models.openai:create_openai", "any OpenAI-compatible chat API: OpenAI, vLLM, Ollama, llama.cpp (--base-url)")
)
for _engine, _what in (("vllm", "vLLM"), ("sglang", "SGLang"), ("transformers-serve", "transformers serve")):
    register_provider(Provider(_engine, "harness.models.engines:create_engine_model", f"{_what} started for the run on a free local port (--engine-args), stopped after: {_engine}/<model>"))
register_provider(
    Provider("hf", "harness.models.hf:create_hf", "local transformers MLLMs: hf/<hub id> or hf//abs/path (batched, GPU or CPU)")
)
register_provider(
    Provider("expert", "harness.models.expert:create_expert", "training-free non-LLM detectors: expert/patchknn", free_text=False, local_baseline=True)
)
register_provider(
    Provider("random", "harness.models.baselines:create_random", "uniform random choice, seeded per question", False, free_text=False, local_baseline=True)
)
register_provider(
    Provider("oracle", "harness.models.baselines:create_oracle", "always answers right: proves scoring gives 100", False, local_baseline=True)
)
register_provider(
    Provider("human", "harness.models.human:create_human", "a person answering in the browser, one question at a time: human/<name> (a page on 127.0.0.1; --port)",
             free_text=False, local_baseline=True, max_concurrency=1, person=True, row_label="human: {part}")
)
