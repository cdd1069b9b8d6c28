"""Tiny random multimodal models of real architectures, built locally (no hub), for offline tests.

Each builder writes a folder that `AutoProcessor`/`AutoModelForImageTextToText.from_pretrained`
load exactly as they load a hub checkpoint: config, safetensors weights, a byte-level BPE tokenizer
trained here on a fixed text, an image processor and a chat template that takes image parts.
The weights are random and seeded, so answers are meaningless but repeatable; tests assert on
plumbing (image tokens, batching, scoring), never on what the model says.
"""

from __future__ import annotations

import json
from pathlib import Path

ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_onevision", "idefics3", "smolvlm", "gemma3", "internvl")

# A fixed training text: the tokenizer must not depend on files of the machine.
_CORPUS = (
    "You are an industrial inspector. Is there any defect in the object? Answer with the option's "
    "letter from the given choices directly. A: Yes B: No C: scratch D: crack E: contamination "
    "Which region shows the defect? top left, bottom right, center. The image shows a metal washer, "
    "a capsule, a screw, a printed circuit board, brick, grass and gravel with a hole or a stain. "
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;!?()[]'\"-\n"
)

_QWEN_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
_LLAVA_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
_IDEFICS_TOKENS = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>", "<video>"] + [
    f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)
]

_GEMMA_TOKENS = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]

# Chat templates in each family's layout; every one renders {"type": "image"} parts in place.
_IMAGE_LOOP = "{%- for part in message['content'] -%}{%- if part['type'] == 'image' -%}IMAGE{%- else -%}{{ part['text'] }}{%- endif -%}{%- endfor -%}"
_QWEN_TEMPLATE = (
    "{%- for message in messages -%}<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    + _IMAGE_LOOP.replace("IMAGE", "<|vision_start|><|image_pad|><|vision_end|>")
    + "<|im_end|>{{ '\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)
# Qwen2-VL-Instruct's published chat template (its chat_template.json), byte for byte: the default
# system prompt, and "Picture k: " before each image under add_vision_id, which MMAD's script set.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_ONEVISION_TEMPLATE = (
    "{%- for message in messages -%}<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    + _IMAGE_LOOP.replace("IMAGE", "<image>{{ '\\n' }}")
    + "<|im_end|>{{ '\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)
_LLAVA_TEMPLATE = (
    "{%- for message in messages -%}{{ message['role'].upper() }}: "
    + _IMAGE_LOOP.replace("IMAGE", "<image>{{ '\\n' }}")
    + " {%- endfor -%}{%- if add_generation_prompt -%}ASSISTANT:{%- endif -%}"
)
_IDEFICS_TEMPLATE = (
    "<|im_start|>{%- for message in messages -%}{{ message['role'] | capitalize }}:"
    + _IMAGE_LOOP.replace("IMAGE", "<image>")
    + "<end_of_utterance>{{ '\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}Assistant:{%- endif -%}"
)

_GEMMA_TEMPLATE = (
    "<bos>{%- for message in messages -%}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}{{ '\\n' }}"
    + _IMAGE_LOOP.replace("IMAGE", "<start_of_image>")
    + "<end_of_turn>{{ '\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}<start_of_turn>model{{ '\\n' }}{%- endif -%}"
)

_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)


def _tokenizer(special_tokens: list[str], *, eos: str, pad: str, chat_template: str, image_token: str, bos: str | None = None, **extra):
    """With `bos`, the tokenizer prepends it to every text, as Gemma's and Llama's do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tokenizer.token_to_id(bos))])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        extra_special_tokens={"image_token": image_token, **extra},
    )
    wrapped.chat_template = chat_template
    return wrapped


def _save(folder: Path, model, processor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def _qwen(folder: Path, version: str, text: dict | None = None, vision: dict | None = None, max_pixels: int = 224 * 224, dtype=None) -> Path:
    import transformers as tf

    tok = _tokenizer(_QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", chat_template=QWEN2_VL_CHAT_TEMPLATE, image_token="<|image_pad|>", video_token="<|video_pad|>", vision_start_token="<|vision_start|>", vision_end_token="<|vision_end|>")
    ids = {t: tok.convert_tokens_to_ids(t) for t in _QWEN_TOKENS}
    config_class, model_class = (tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration) if version == "2" else (tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration)
    text = text or dict(vocab_size=len(tok), **_TEXT)
    vision = vision or dict(depth=3, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_chans=3)
    if version == "2.5":
        vision = dict(depth=3, hidden_size=32, out_hidden_size=64, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3, window_size=56, fullatt_block_indexes=[2])
    config = config_class(
        text_config=dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": _mrope_section(text)}, **text),
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    image_processor = tf.Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=max_pixels)
    processor = _processor_without_video(tf.Qwen2VLProcessor if version == "2" else tf.Qwen2_5_VLProcessor, image_processor, tok)
    model = model_class(config)
    return _save(folder, model.to(dtype) if dtype is not None else model, processor)


def _qwen3(folder: Path) -> Path:
    """Qwen3-VL: 16-px patches merged 2×2 (images in multiples of 32), deep-stacked vision features."""
    import transformers as tf

    tok = _tokenizer(_QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", chat_template=_QWEN_TEMPLATE, image_token="<|image_pad|>", video_token="<|video_pad|>", vision_start_token="<|vision_start|>", vision_end_token="<|vision_end|>")
    ids = {t: tok.convert_tokens_to_ids(t) for t in _QWEN_TOKENS}
    text = dict(vocab_size=len(tok), head_dim=16, **_TEXT)
    config = tf.Qwen3VLConfig(
        text_config=dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": _mrope_section(text), "mrope_interleaved": True}, **text),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64, deepstack_visual_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    config.eos_token_id, config.pad_token_id = ids["<|im_end|>"], ids["<|endoftext|>"]
    image_processor = tf.Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, min_pixels=64 * 64, max_pixels=256 * 256)
    processor = _processor_without_video(tf.Qwen3VLProcessor, image_processor, tok)
    return _save(folder, tf.Qwen3VLForConditionalGeneration(config), processor)


def _mrope_section(text: dict) -> list[int]:
    """Qwen2-VL's split of the rotary dimensions over (time, height, width); sums to head_dim / 2."""
    half = text["hidden_size"] // text["num_attention_heads"] // 2
    return [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]


# Qwen2-VL-2B-Instruct's published shapes (config.json), for throughput benchmarks with random weights.
QWEN2_VL_2B_TEXT = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768)
QWEN2_VL_2B_VISION = dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_chans=3)


def build_qwen2_vl(folder: Path, *, text: dict, vision: dict, max_pixels: int, dtype=None, seed: int = 0) -> Path:
    """A Qwen2-VL of any shape with random weights (e.g. QWEN2_VL_2B_*), saved like a checkpoint."""
    import torch

    torch.manual_seed(seed)
    return _qwen(folder, "2", text, vision, max_pixels, dtype)


def _processor_without_video(processor_class, image_processor, tokenizer, **kwargs):
    from harness.models.hf_processors import ImageOnlyVideoProcessor, construct_processor

    return construct_processor(processor_class, image_processor=image_processor, tokenizer=tokenizer, video_processor=ImageOnlyVideoProcessor(), **kwargs)


def _llava(folder: Path) -> Path:
    import transformers as tf

    tok = _tokenizer(_LLAVA_TOKENS, eos="</s>", pad="<pad>", chat_template=_LLAVA_TEMPLATE, image_token="<image>")
    vision = tf.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14, projection_dim=32)
    config = tf.LlavaConfig(
        vision_config=vision,
        text_config=tf.LlamaConfig(vocab_size=len(tok), **_TEXT),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.convert_tokens_to_ids("<pad>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    image_processor = tf.CLIPImageProcessorPil(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    processor = tf.LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=14, num_additional_image_tokens=1, vision_feature_select_strategy="default", chat_template=_LLAVA_TEMPLATE)
    return _save(folder, tf.LlavaForConditionalGeneration(config), processor)


def _llava_onevision(folder: Path) -> Path:
    import transformers as tf

    tok = _tokenizer(_QWEN_TOKENS[:3] + ["<image>", "<video>"], eos="<|im_end|>", pad="<|endoftext|>", chat_template=_ONEVISION_TEMPLATE, image_token="<image>", video_token="<video>")
    pinpoints = [[56, 56], [56, 112], [112, 56], [112, 112]]
    config = tf.LlavaOnevisionConfig(
        vision_config=tf.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14),
        text_config=tf.Qwen2Config(vocab_size=len(tok), **_TEXT),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        video_token_id=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=pinpoints,
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )
    image_processor = tf.LlavaOnevisionImageProcessorPil(size={"height": 56, "width": 56}, image_grid_pinpoints=pinpoints)
    processor = _processor_without_video(
        tf.LlavaOnevisionProcessor, image_processor, tok, num_image_tokens=16, vision_feature_select_strategy="full", chat_template=_ONEVISION_TEMPLATE
    )
    return _save(folder, tf.LlavaOnevisionForConditionalGeneration(config), processor)


def _idefics3(folder: Path, smol: bool) -> Path:
    import transformers as tf

    tok = _tokenizer(_IDEFICS_TOKENS, eos="<end_of_utterance>", pad="<|endoftext|>", chat_template=_IDEFICS_TEMPLATE, image_token="<image>")
    config_class, model_class = (tf.SmolVLMConfig, tf.SmolVLMForConditionalGeneration) if smol else (tf.Idefics3Config, tf.Idefics3ForConditionalGeneration)
    vision_class = tf.SmolVLMVisionConfig if smol else tf.Idefics3VisionConfig
    config = config_class(
        vision_config=vision_class(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=112, patch_size=14),
        text_config=tf.LlamaConfig(vocab_size=len(tok), **_TEXT),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2,
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )
    processor_class = tf.SmolVLMImageProcessorPil if smol else tf.Idefics3ImageProcessorPil
    image_processor = processor_class(size={"longest_edge": 224}, max_image_size={"longest_edge": 112})
    if smol:
        processor = _processor_without_video(tf.SmolVLMProcessor, image_processor, tok, image_seq_len=16, chat_template=_IDEFICS_TEMPLATE)
    else:
        processor = tf.Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=16, chat_template=_IDEFICS_TEMPLATE)
    return _save(folder, model_class(config), processor)


def _gemma3(folder: Path) -> Path:
    import transformers as tf

    tok = _tokenizer(_GEMMA_TOKENS, bos="<bos>", eos="<eos>", pad="<pad>", chat_template=_GEMMA_TEMPLATE, image_token="<image_soft_token>", boi_token="<start_of_image>", eoi_token="<end_of_image>")
    ids = {t: tok.convert_tokens_to_ids(t) for t in _GEMMA_TOKENS}
    config = tf.Gemma3Config(
        text_config=tf.Gemma3TextConfig(vocab_size=len(tok), head_dim=16, sliding_window=64, bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"], pad_token_id=ids["<pad>"], **_TEXT),
        vision_config=tf.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14),
        mm_tokens_per_image=4,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
        pad_token_id=ids["<pad>"],
    )
    image_processor = tf.Gemma3ImageProcessorPil(size={"height": 56, "width": 56})
    processor = tf.Gemma3Processor(image_processor=image_processor, tokenizer=tok, image_seq_length=4, chat_template=_GEMMA_TEMPLATE)
    return _save(folder, tf.Gemma3ForConditionalGeneration(config), processor)


def _internvl(folder: Path) -> Path:
    import transformers as tf

    special = _QWEN_TOKENS[:3] + ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
    tok = _tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", chat_template=_QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<IMG_CONTEXT>"),
                     image_token="<IMG_CONTEXT>", start_image_token="<img>", end_image_token="</img>", context_image_token="<IMG_CONTEXT>", video_token="<video>")
    config = tf.InternVLConfig(
        vision_config=tf.InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=[56, 56], patch_size=[14, 14]),
        text_config=tf.Qwen2Config(vocab_size=len(tok), **_TEXT),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        downsample_ratio=0.5,
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )
    image_processor = tf.GotOcr2ImageProcessorPil(size={"height": 56, "width": 56}, crop_to_patches=False)
    processor = _processor_without_video(tf.InternVLProcessor, image_processor, tok, image_seq_length=4, chat_template=tok.chat_template)
    return _save(folder, tf.InternVLForConditionalGeneration(config), processor)


def build_tiny_vlm(architecture: str, folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny random model of `architecture` (one of ARCHITECTURES) to `folder`."""
    import torch

    torch.manual_seed(seed)
    builders = {
        "qwen2_vl": lambda: _qwen(folder, "2"),
        "qwen2_5_vl": lambda: _qwen(folder, "2.5"),
        "qwen3_vl": lambda: _qwen3(folder),
        "llava": lambda: _llava(folder),
        "llava_onevision": lambda: _llava_onevision(folder),
        "idefics3": lambda: _idefics3(folder, smol=False),
        "smolvlm": lambda: _idefics3(folder, smol=True),
        "gemma3": lambda: _gemma3(folder),
        "internvl": lambda: _internvl(folder),
    }
    if architecture not in builders:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    path = builders[architecture]()
    (path / "iadbench_tiny.json").write_text(json.dumps({"architecture": architecture, "seed": seed}))
    return path
