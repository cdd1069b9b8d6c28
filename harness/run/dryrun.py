"""`iadbench eval --dry-run`: what a run would send and cost, without calling anything.

Token counts are estimates: text as characters / 4 (no tokenizer dependency), images by OpenAI's
published vision rule (low detail: 85 tokens; high: 85 + 170 per 512-px tile after fitting the
image in 2048 px and its short side in 768 px), replies as the task kind guesses them (a few tokens
for a letter, more for an open answer). Cost uses the editable price table.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PIL import Image

from harness.models.base import GenerateRequest, ImagePart, TextPart
from harness.models.registry import provider_of
from harness.models.pricing import cost_usd
from harness.schema import RunSpec, Usage
from harness.storage.files import json_text



@dataclass
class DryRunEstimate:
    requests: int
    distinct_images: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    local_baseline: bool = False  # random, oracle, the expert: computed here, no tokens and no cost

    def describe(self, model: str) -> str:
        if self.local_baseline:
            return (f"dry run for {model}: nothing was sent\n"
                    f"requests: {self.requests:,} (answered here: {model} is a local baseline, no model is called)\n"
                    f"distinct images (queries and templates): {self.distinct_images:,}\n"
                    "tokens and cost: none")
        cost = "unknown (no price for this model in the price table)" if self.cost_usd is None else f"${self.cost_usd:,.2f}"
        return (
            f"dry run for {model}: nothing was sent\n"
            f"requests: {self.requests:,}\n"
            f"distinct images (queries and templates): {self.distinct_images:,}\n"
            f"estimated tokens: {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion\n"
            f"estimated cost: {cost}"
        )


def image_tokens(size: tuple[int, int], max_side: int | None, detail: str) -> int:
    width, height = size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = round(width * scale), round(height * scale)
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def estimate(spec: RunSpec, data: Any, model=None, dump_dir: Path | None = None) -> DryRunEstimate:
    """What the run would send: one request per distinct call (questions that share a call, as
    in the official two-call protocols, count once). `data` is what the task kind prepared; its
    task is built as a run would build it, with a scratch folder for what it keeps. With
    `dump_dir`, each call is written there as the backend would send it (see `dump_request`)."""
    import tempfile

    from harness.tasks.registry import task_kind
    from harness.tasks.mcq.task import RequestDigester

    scratch = SimpleNamespace(path=Path(tempfile.mkdtemp(prefix="iadbench-dryrun-")))  # stands in for the run folder
    task, _ = task_kind(spec.task).build(spec, scratch, data)
    detail = spec.model_options.get("image_detail", "low")
    digester = RequestDigester()
    sizes: dict[str, tuple[int, int]] = {}
    seen: set[str] = set()
    prompt_tokens = 0
    if dump_dir is not None:
        dump_dir.mkdir(parents=True, exist_ok=True)
    for ordinal, sample_id in enumerate(task.ids):
        request = task.build_request(ordinal)
        digest = digester.digest(spec.model, request)
        if digest in seen:
            continue
        seen.add(digest)
        if dump_dir is not None:
            dump_request(model, request, dump_dir / f"{len(seen):05d}-{_slug(sample_id)}")
        for part in (p for message in request.messages for p in message.content):
            if isinstance(part, TextPart):
                prompt_tokens += math.ceil(len(part.text) / 4)
            elif isinstance(part, ImagePart):
                if part.path not in sizes:
                    with Image.open(part.path) as image:  # reads the header only
                        sizes[part.path] = image.size
                size = (part.fit, part.fit) if part.prep == "cv2-fit" else sizes[part.path]
                prompt_tokens += image_tokens(size, part.max_side, part.detail if part.detail in ("low", "high", "auto") else detail)
    reply = 1 if spec.choice_scoring == "logprobs" else min(spec.decoding.max_new_tokens, task_kind(spec.task).reply_tokens_guess)
    completion_tokens = reply * len(seen)
    return DryRunEstimate(
        requests=len(seen),
        distinct_images=len(sizes),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd(spec.model, Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)),
        local_baseline=bool((provider := provider_of(spec.model)) and provider.local_baseline),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-120:]


def dump_request(model, request: GenerateRequest, base: Path) -> None:
    """One request as its backend would hand it on: an API backend's exact JSON body (images
    inline) in BASE.json; a local model's prompt after the chat template (BASE/prompt.txt), each
    image exactly as given to the processor (BASE/image-K.png) and the token count
    (BASE/request.json); any other backend's messages with image paths (BASE.json)."""
    inner = getattr(model, "inner", model)
    while hasattr(inner, "inner"):
        inner = inner.inner
    if hasattr(inner, "request_body"):
        base.with_name(base.name + ".json").write_text(json_text(inner.request_body(request), indent=1) + "\n", encoding="utf-8")
        return
    if hasattr(inner, "render_request"):
        rendered = inner.render_request(request)
        base.mkdir(parents=True, exist_ok=True)
        (base / "prompt.txt").write_text(rendered["text"], encoding="utf-8")
        for index, image in enumerate(rendered["images"]):
            image.save(base / f"image-{index}.png")
        inputs = rendered["inputs"]
        meta = {"prompt_tokens": rendered["prompt_tokens"], "input_shapes": {k: list(v.shape) for k, v in inputs.items() if hasattr(v, "shape")}}
        if "image_grid_thw" in inputs:
            meta["image_grid_thw"] = inputs["image_grid_thw"].tolist()
        (base / "request.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return
    base.with_name(base.name + ".json").write_text(json_text(request.model_dump(mode="json", exclude_defaults=True), indent=1) + "\n", encoding="utf-8")
