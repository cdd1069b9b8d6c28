"""`iadbench eval --dry-run`: what a run would send and cost, without calling anything.

Token counts are estimates: text as characters / 4 (no tokenizer dependency), images by OpenAI's
published vision rule (low detail: 85 tokens; high: 85 + 170 per 512-px tile after fitting the
image in 2048 px and its short side in 768 px), replies as a few tokens (the prompt asks for a
letter). Cost uses the editable price table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from harness.data.mmad import QuestionSet
from harness.models.base import ImagePart, TextPart
from harness.models.pricing import cost_usd
from harness.schema import RunSpec, Usage
from harness.tasks.mcq import build_request

REPLY_TOKENS_GUESS = 5


@dataclass
class DryRunEstimate:
    requests: int
    distinct_images: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None

    def describe(self, model: str) -> str:
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


def estimate(spec: RunSpec, question_set: QuestionSet) -> DryRunEstimate:
    import tempfile
    from pathlib import Path

    from harness.evaluate import prompt_settings

    settings = prompt_settings(spec, question_set, Path(tempfile.mkdtemp(prefix="iadbench-dryrun-")))
    detail = spec.model_options.get("image_detail", "low")
    sizes: dict[str, tuple[int, int]] = {}
    prompt_tokens = 0
    for question in question_set.questions:
        request = build_request(question, question_set.images[question.image_id], question_set.root, settings, spec.seed)
        for part in request.messages[0].content:
            if isinstance(part, TextPart):
                prompt_tokens += math.ceil(len(part.text) / 4)
            elif isinstance(part, ImagePart):
                if part.path not in sizes:
                    with Image.open(part.path) as image:  # reads the header only
                        sizes[part.path] = image.size
                prompt_tokens += image_tokens(sizes[part.path], part.max_side, detail)
    reply = 1 if spec.choice_scoring == "logprobs" else min(spec.decoding.max_new_tokens, REPLY_TOKENS_GUESS)
    completion_tokens = reply * len(question_set.questions)
    return DryRunEstimate(
        requests=len(question_set.questions),
        distinct_images=len(sizes),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd(spec.model, Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)),
    )
