"""Loading a model's processor, with the one fallback transformers 5 needs on machines without torchvision.

Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision and SmolVLM processors require a video processor, and
transformers' video processors import torchvision. Where torchvision is installed (every GPU
machine a user runs on) the stock `AutoProcessor` is used, always. Only where it is missing is the
real processor class built by hand with an image-only stand-in in its video slot: its own
`__call__` and `apply_chat_template` then run unchanged, so prompts and image tokens are exactly
those of the stock processor.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from transformers.utils import PushToHubMixin

from harness.errors import ConfigError

# The keys of processor_config.json that are not constructor arguments of the processor.
_BOOKKEEPING_KEYS = {"processor_class", "auto_map", "image_processor", "video_processor", "tokenizer"}


class ImageOnlyVideoProcessor(PushToHubMixin):
    """Stands in for a video processor where none can load. It refuses videos; SmolVLM's processor
    reads frame settings from it at construction, hence the attributes."""

    _auto_class = None
    num_frames = 64
    fps = 1
    max_image_size = {"longest_edge": 384}
    size = {"longest_edge": 384}

    def __call__(self, *args, **kwargs):
        raise ConfigError("videos are not supported without torchvision (iadbench asks about images only)")

    def to_dict(self) -> dict[str, Any]:
        return {}

    def to_json_string(self) -> str:
        return "{}"

    def save_pretrained(self, *args, **kwargs) -> list:
        return []


def construct_processor(processor_class, **arguments):
    """Build `processor_class` with an ImageOnlyVideoProcessor in its video slot, skipping the
    class check on that one argument only."""

    class Lenient(processor_class):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and isinstance(argument, ImageOnlyVideoProcessor):
                return ImageOnlyVideoProcessor
            return super().check_argument_for_proper_class(argument_name, argument)

    processor = Lenient(**arguments)
    processor.__class__ = processor_class  # behave (and save) as the real class
    return processor


def torchvision_available() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_processor(model_dir: str, *, trust_remote_code: bool = False, revision: str | None = None):
    """The model's processor; the image-only fallback only when the stock path fails for want of
    torchvision and the model is a local folder (a hub model is first fetched by the stock path)."""
    import transformers

    try:
        return transformers.AutoProcessor.from_pretrained(model_dir, trust_remote_code=trust_remote_code, revision=revision), False
    except (ImportError, ValueError, TypeError, OSError, AttributeError) as error:
        folder = Path(model_dir)
        if torchvision_available() or not folder.is_dir():
            raise
        stock_error = error
    config = _read_json(folder / "processor_config.json")
    class_name = config.get("processor_class") or _read_json(folder / "preprocessor_config.json").get("processor_class")
    processor_class = getattr(transformers, class_name or "", None)
    if processor_class is None:
        raise ConfigError(f"{folder}: cannot load its processor ({stock_error}); no processor_class in processor_config.json to fall back on")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    image_processor = transformers.AutoImageProcessor.from_pretrained(folder)
    arguments = {k: v for k, v in config.items() if k not in _BOOKKEEPING_KEYS}
    accepted = processor_class.get_attributes()
    if "video_processor" in accepted:
        arguments["video_processor"] = ImageOnlyVideoProcessor()
    template = folder / "chat_template.jinja"
    if template.is_file():
        arguments["chat_template"] = template.read_text()
    elif getattr(tokenizer, "chat_template", None):
        arguments["chat_template"] = tokenizer.chat_template
    return construct_processor(processor_class, image_processor=image_processor, tokenizer=tokenizer, **arguments), True
