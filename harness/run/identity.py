"""What a run folder's answers were made under: the settings that decide them, and the run's identity.

answers_config.json records ANSWER_FIELDS when a run is created (a resume with other values is
refused); every sample line carries `settings_digest` of IDENTITY_FIELDS, so answers from another
model, protocol or question set are refused even when answers_config.json is gone.
"""

from __future__ import annotations

import hashlib
import json

from harness.schema import RunSpec

# The settings that decide answers. Written once when a run is created; a resume whose spec.json
# differs in any of them would mix answers from two configurations under one name.
ANSWER_FIELDS = ("task", "data", "data_root", "data_digest", "model", "shots", "templates", "image_max_side", "decoding", "choice_scoring",
                 "protocol", "strategies", "knowledge", "errata", "seed", "regions", "gpt4vad_prompt", "metric_definitions",
                 "perturb", "perturb_templates", "box_format")
ANSWER_OPTIONS = ("image_detail", "dtype", "revision", "attn_implementation", "trust_remote_code")


def answer_config(spec: RunSpec) -> dict:
    dumped = spec.model_dump(mode="json")
    config = {field: dumped[field] for field in ANSWER_FIELDS}
    config["model_options"] = {k: dumped["model_options"].get(k) for k in ANSWER_OPTIONS}
    return config


# What a run *is*: the model, how it asks (protocol, shots, templates, decoding, strategies…) and
# the question set (its file and sha256). Each sample line carries a digest of these, so answers
# made under other settings (spec.json edited with answers_config.json deleted, lines pasted from
# another run) are refused instead of mixed. Frozen: changing this list would refuse every earlier
# run; a new answer-changing setting joins ANSWER_FIELDS (answers_config.json) instead.
IDENTITY_FIELDS = ("task", "data", "data_digest", "model", "shots", "templates", "image_max_side", "decoding", "choice_scoring",
                   "protocol", "strategies", "knowledge", "errata", "seed", "regions", "gpt4vad_prompt", "perturb", "box_format")


def settings_digest(spec: RunSpec) -> str:
    dumped = spec.model_dump(mode="json")
    return hashlib.sha256(json.dumps({f: dumped.get(f) for f in IDENTITY_FIELDS}, sort_keys=True).encode()).hexdigest()[:16]
