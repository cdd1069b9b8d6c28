"""How the hf/ backend turns queued requests into batches: which requests may share a forward
pass (same decoding, same protocol switches), questions about one image kept together, sampled
decoding alone under its own seed, and the processor arguments a protocol asks for."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from harness.models.base import ChatMessage, GenerateRequest, ImagePart


@dataclass
class _Pending:
    request: GenerateRequest
    future: asyncio.Future
    images: tuple[str, ...] = field(default_factory=tuple)
    kind: tuple = field(init=False)  # which requests it may share a batch with, computed once

    def __post_init__(self) -> None:
        self.kind = _batch_kind(self.request)


def hf_messages(messages: list[ChatMessage]) -> list[dict]:
    """Our messages in the chat-template layout processors expect: images as {"type": "image"}
    parts in place, so multi-image prompts keep their order (templates, query, overlays)."""
    converted = []
    for message in messages:
        parts = [{"type": "image"} if isinstance(p, ImagePart) else {"type": "text", "text": p.text} for p in message.content]
        converted.append({"role": message.role, "content": parts})
    return converted


def _request_images(request: GenerateRequest) -> tuple[ImagePart, ...]:
    return tuple(p for m in request.messages for p in m.content if isinstance(p, ImagePart))


def _sampled(request: GenerateRequest) -> bool:
    return request.decoding.sampled


def processor_arguments(request: GenerateRequest) -> dict:
    """The processor call's extra arguments: a protocol's min/max pixels as the image processor's
    size bounds (transformers 5 spells them shortest_edge/longest_edge, in pixels)."""
    extra = dict(request.processor_kwargs)
    if "min_pixels" in extra or "max_pixels" in extra:
        extra["size"] = {"shortest_edge": extra.pop("min_pixels", None), "longest_edge": extra.pop("max_pixels", None)}
    return extra


def _scores_letters(request: GenerateRequest) -> bool:
    return request.choice_scoring == "logprobs" and bool(request.option_letters)


def group_by_images(pending: list[_Pending], limit: int, config_samples: bool = False) -> list[_Pending]:
    """Up to `limit` requests of the same kind as the oldest, whole image groups first in order of
    arrival: questions about one image travel together. `config_samples`: the checkpoint's own
    generation config samples (do_sample with top_k other than 1)."""
    first = pending[0]
    alone = _sampled(first.request) or (config_samples and first.request.decoding.sampling == "model-default")
    if alone and not _scores_letters(first.request):
        return [first]  # sampled decoding: alone, so its seed alone decides it
    compatible = [p for p in pending if p.kind == first.kind]
    groups: OrderedDict[tuple, list[_Pending]] = OrderedDict()
    for item in compatible:
        groups.setdefault(item.images, []).append(item)
    chosen: list[_Pending] = []
    for members in groups.values():
        chosen.extend(members[: limit - len(chosen)])
        if len(chosen) >= limit:
            break
    return chosen


def _batch_kind(request: GenerateRequest) -> tuple:
    has_images = bool(_request_images(request))
    # Requests under different chat-template switches or processor settings never share a batch.
    protocol = (tuple(sorted(request.chat_template_kwargs.items())), repr(sorted(request.processor_kwargs.items())))
    if _scores_letters(request):
        return ("logprobs", has_images, protocol)
    return ("generate", has_images, request.decoding.max_new_tokens, _sampled(request), request.decoding.sampling, protocol)
