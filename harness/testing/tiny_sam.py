"""A tiny random Segment Anything model (transformers' SamModel, the real architecture at 1024 px
input), saved like a hub checkpoint, for testing the SAM region division offline."""

from __future__ import annotations

from pathlib import Path


def build_tiny_sam(folder: Path, seed: int = 0) -> Path:
    import torch
    import transformers as tf
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    torch.manual_seed(seed)
    vision = tf.SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64, output_channels=32, num_pos_feats=16,
                                image_size=1024, patch_size=16, window_size=4, global_attn_indexes=[1])
    prompt = tf.SamPromptEncoderConfig(hidden_size=32, image_size=1024, patch_size=16, mask_input_channels=4)
    decoder = tf.SamMaskDecoderConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64, iou_head_hidden_dim=32)
    config = tf.SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(), mask_decoder_config=decoder.to_dict())
    folder.mkdir(parents=True, exist_ok=True)
    tf.SamModel(config).save_pretrained(folder, safe_serialization=True)
    SamImageProcessorPil().save_pretrained(folder)
    return folder
