"""Reaching the Hugging Face hub for hf/<hub id> models: fail at once where it cannot be reached."""

from __future__ import annotations

import os

from harness.errors import ConfigError


def check_hub_reachable(repo_id: str, revision: str | None) -> None:
    """Before a hub model is loaded: when the hub cannot even be resolved (no network), fail at
    once unless the model is in the local cache, in which case loading goes straight to the cache.
    (Without this, transformers retries the network for about 30 s per attempt.)"""
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return
    host = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
        return
    except OSError:
        pass
    try:
        from huggingface_hub import constants, try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ImportError:
        cached = None
    if not isinstance(cached, str):
        raise ConfigError(
            f"hf/{repo_id}: the Hugging Face hub ({host}) cannot be reached from here and the model is not in the local cache; "
            "download it where the hub is reachable (or set HF_HOME to a cache that has it), or pass hf//path/to/folder"
        )
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True  # read at import time by huggingface_hub: set the live value too
