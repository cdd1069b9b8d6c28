"""Argument groups several commands share, defined once: backend settings (eval, ablate,
generate --llm) and the run settings eval and ablate both take."""

from __future__ import annotations

import argparse

from harness.storage.sources import DATA_SOURCES


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """How to reach and run the model: shared by eval and ablate."""
    parser.add_argument("--choice-scoring", choices=["generate", "logprobs"], help="parse the reply, or pick the most probable option letter")
    api = parser.add_argument_group("API backends (openai/<model>)")
    api.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for vLLM (default $OPENAI_BASE_URL or OpenAI)")
    api.add_argument("--api-key-env", help="environment variable holding the API key (default OPENAI_API_KEY; the key itself is never recorded)")
    api.add_argument("--image-detail", choices=["low", "high", "auto"], help="the image_url detail level (default low)")
    api.add_argument("--request-timeout", type=POSITIVE_SECONDS, help="seconds one request may take in all (connect, headers and the whole body) before it is abandoned and retried (default 60)")
    api.add_argument("--question-timeout", type=POSITIVE_SECONDS, help="seconds all attempts at one question may take together before it is recorded as failed (default 600)")
    api.add_argument("--max-attempts", type=number_at_least(1), help="tries per question before it is recorded as failed (default 8)")
    engines = parser.add_argument_group("managed engines (vllm/<model>, sglang/<model>, transformers-serve/<model>)")
    engines.add_argument("--engine-args", help='passed to the engine server as written, e.g. "--tensor-parallel-size 4 --data-parallel-size 2 --max-model-len 8192"')
    engines.add_argument("--engine-startup-timeout", type=POSITIVE_SECONDS, help="seconds to wait for the engine to answer (default 1800)")
    local = parser.add_argument_group("local Hugging Face models (hf/<hub id> or hf//abs/path)")
    local.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], help="weights' dtype (default auto: the checkpoint's)")
    local.add_argument("--device", help="cuda:N, cpu or mps (default: this process's GPU, else the CPU)")
    local.add_argument("--device-map", help="accelerate device map, e.g. auto, for a model larger than one GPU")
    local.add_argument("--attn-implementation", help="eager, sdpa or flash_attention_2 (passed to from_pretrained)")
    local.add_argument("--batch-size", type=_batch_size, help="questions per forward pass, or auto (default): start high, halve on out-of-memory")
    local.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own Python code (only for repositories you trust)")
    local.add_argument("--allow-pickle-weights", action="store_true", help="load .bin weights (pickle can run code); safetensors only otherwise")
    local.add_argument("--revision", help="hub branch, tag or commit of the model")
    person = parser.add_argument_group("a person answering in the browser (human/<name>)")
    person.add_argument("--port", type=_port, help="the answer page's port on 127.0.0.1 (default: a free port; give one to keep the address across --resume)")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """What a run evaluates and where it goes: shared by eval and ablate."""
    parser.add_argument("--suite", default=None, help="suite name (iadbench list suites); default synthetic-quick, or gpt4vad-zero-shot with --task gpt4vad")
    parser.add_argument("--data", help="overrides the suite's data: " + "; ".join(f"{form}: {what}" for form, what in DATA_SOURCES.items()))
    parser.add_argument("--knowledge", help="domain knowledge for rag (MMAD's domain_knowledge.json format); default: beside the question file")
    parser.add_argument("--limit", type=number_at_least(1), help="only the first N questions (for a quick look)")
    parser.add_argument("--seed", type=int, default=0, help="recorded in spec.json; seeds every random choice")
    parser.add_argument("--max-connections", type=number_at_least(1), help="requests in flight at once")
    parser.add_argument("--max-new-tokens", type=number_at_least(1))
    parser.add_argument("--runs-dir", default="runs", help="where run folders are created (default: runs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def number_at_least(low: float, kind: type = int):
    """An argparse type: a finite number of `kind` not below `low` (a negative --limit would
    silently drop the last questions, a zero timeout would fail every request)."""
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")) or number < low:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} of at least {low:g}, got {value!r}")
        return number

    return parse


POSITIVE_SECONDS = number_at_least(0.001, float)


def _batch_size(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {value!r}")
    return size


def _port(value: str) -> int:
    port = number_at_least(1)(value)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {value!r}")
    return port


def given_model_options(args: argparse.Namespace) -> dict:
    """Backend options the user gave on the command line (the rest keep their defaults)."""
    given = {
        "base_url": args.base_url,
        "api_key_env": args.api_key_env,
        "image_detail": args.image_detail,
        "request_timeout_s": args.request_timeout,
        "max_sample_seconds": args.question_timeout,
        "max_attempts": args.max_attempts,
        "max_connections": args.max_connections,
        "dtype": args.dtype,
        "device": args.device,
        "device_map": args.device_map,
        "attn_implementation": args.attn_implementation,
        "batch_size": args.batch_size,
        "trust_remote_code": args.trust_remote_code or None,
        "allow_pickle_weights": args.allow_pickle_weights or None,
        "revision": args.revision,
        "engine_args": args.engine_args,
        "engine_startup_timeout_s": args.engine_startup_timeout,
        "port": args.port,
    }
    return {key: value for key, value in given.items() if value is not None}
