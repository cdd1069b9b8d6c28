"""Protocols: how questions are put to a model, as small TOML files beside this module.

A protocol names everything that varies between MMAD's official per-family scripts (see
shared notes `mmad-official-protocols.md`): the prompt layout (a jinja template under prompts/), how
an image's questions are grouped into calls, image preprocessing, decoding, retries on refusal
words, option order and the parser the published row used. Adding a model family is adding one
file here; no code branches on model names. `harmonised` is the one layout iadbench uses for every
model in the `mmad-1shot`/`mmad-0shot` suites (the fair comparison, strictly parsed).
"""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError
from harness.models.image_loading import DEFAULT_LOADING, LoadingName, require_loading
from harness.schema import DecodingSpec

HARMONISED = "harmonised"

Batching = Literal["single", "cumulative", "first-then-rest"]
Numbering = Literal["none", "plain", "index"]
ImageMode = Literal["cap", "cv2-fit", "qwen-native"]


class ImageSpec(BaseModel):
    """How an image reaches the model.

    cap: longest side scaled down to the run's --image-max-side (Pillow, never enlarged), JPEG q95.
    cv2-fit: OpenCV INTER_AREA to fit `size`×`size` with int() truncation (small images are
      ENLARGED), re-encoded by cv2.imencode('.jpg'), as MMAD's GPT-4o/Gemini/LLaVA scripts do.
    qwen-native: native resolution rounded to multiples of 28 (qwen-vl-utils' rule, bicubic), then
      the processor with `min_pixels`/`max_pixels`.
    `loading` is how the script opens the file before any of that (harness/models/image_loading.py):
    alpha, 16-bit, palettes and EXIF orientation differ between the scripts' libraries.
    """

    model_config = ConfigDict(extra="forbid")
    loading: LoadingName = Field(DEFAULT_LOADING, description="the image loading recipe; an official protocol names its script's")
    mode: ImageMode = "cap"
    size: int = 512
    mime: Literal["jpeg", "extension"] = "jpeg"
    mime_default: str = Field("image/jpeg", description="MIME label for an extension that is neither png nor jpg/jpeg")
    detail: Literal["low", "high", "auto", "omit"] | None = Field(None, description="API detail; None: the run's --image-detail; omit: no detail field")
    min_pixels: int | None = None
    max_pixels: int | None = None


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    source: str = Field("", description="the official script and commit the facts were read from")
    models: list[str] = Field(default_factory=list, description="fnmatch patterns on the model id (lower case) that pick this protocol")
    template: str = Field(description="prompt layout under prompts/")
    instruction: str = ""
    batching: Batching = "single"
    numbering: Numbering = "index"
    images: ImageSpec = Field(default_factory=ImageSpec)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    chat_template_kwargs: dict[str, bool] = Field(default_factory=dict)
    retry_keywords: list[str] = Field(default_factory=list, description="a reply containing one (lower-cased) is asked again")
    retry_tries: int = 1
    shuffle_options: bool = Field(False, description="the official script shuffled options (unseeded); iadbench seeds and records it")
    parser: Literal["strict", "last-letter", "first-letter"] = "strict"
    fuzzy: bool = Field(False, description="no letter: the closest option text (difflib, cutoff 0)")
    differences: list[str] = Field(default_factory=list, description="what cannot be identical to the official run, and why")

    @property
    def official(self) -> bool:
        return self.name != HARMONISED


def protocol_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def load_protocol(name: str) -> Protocol:
    resource = resources.files(__name__).joinpath(f"{name}.toml")
    if not resource.is_file():
        raise ConfigError(f"unknown protocol {name!r}; known protocols: {', '.join(protocol_names())}")
    try:
        return Protocol(name=name, **tomllib.loads(resource.read_text()))
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise ConfigError(f"protocol file {name}.toml is invalid: {error}") from None


def protocol_for_model(model: str) -> Protocol:
    """The official protocol whose patterns match the model id (`openai/gpt-4o` → gpt-4o,
    `hf/Qwen/Qwen2.5-VL-7B-Instruct` → qwen2.5-vl); an unknown family is refused with the list."""
    model_id = model.split("/", 1)[-1].rstrip("/").lower()
    last = model_id.rsplit("/", 1)[-1]
    candidates = []
    for name in protocol_names():
        protocol = load_protocol(name)
        for pattern in protocol.models:
            if fnmatch.fnmatchcase(last, pattern) or fnmatch.fnmatchcase(model_id, pattern):
                candidates.append((len(pattern), protocol))
    if not candidates:
        families = ", ".join(n for n in protocol_names() if n != HARMONISED)
        raise ConfigError(
            f"no official MMAD protocol matches the model {model!r}; pass --protocol NAME (one of: {families}), "
            "or use the harmonised suites (mmad-1shot) for a model MMAD did not publish"
        )
    return max(candidates, key=lambda c: c[0])[1]  # the most specific pattern: gpt-4o-mini over gpt-4o*


def resolve_protocol(name: str, model: str, changed_flags: list[str], strategies: list[str]) -> Protocol:
    """The protocol a run uses (auto: the model family's official one). An official protocol fixes
    what its script fixed: flags and strategies that would change it are refused."""
    protocol = protocol_for_model(model) if name == "auto" else load_protocol(name)
    others = [s for s in strategies if not s.startswith("rag")]
    if protocol.official and (changed_flags or others):
        raise ConfigError(
            f"protocol {protocol.name} is the official script's: {', '.join(changed_flags + others)} would change what it sent; "
            "drop them, or use the harmonised suites (mmad-1shot) to vary decoding, images and strategies"
        )
    require_loading(protocol.images.loading)  # OpenCV missing: one line now, not every image failing later
    return protocol
