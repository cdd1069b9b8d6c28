"""MMAD's Qwen2.5-VL protocol on a tiny random Qwen2.5-VL carrying Qwen2-VL's real chat template:
iadbench's input_ids, pixel_values and image_grid_thw equal those of an independent rendering of the
official pipeline (messages built from the facts of qwen2_5_vl_query.py, qwen-vl-utils'
process_vision_info, the processor with the official min/max pixels)."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.cli import main
from harness.models.base import ModelOptions
from harness.models.hf import HFModel
from harness.models.images import qwen_smart_size
from harness.protocols import load_protocol
from harness.tasks.mcq.official import official_request
from harness.testing.tiny_vlms import build_tiny_vlm

INSTRUCTION = (
    "\nYou are an industrial inspector who checks products by images. You should judge whether there is a defect in the query image "
    "and answer the questions about it.\nAnswer with the option's letter from the given choices directly.\n"
)
MIN_PIXELS, MAX_PIXELS = 64 * 28 * 28, 1280 * 28 * 28


def import_qwen_vl_utils():
    """qwen-vl-utils imports torchvision at the top for its video path; torchvision cannot be
    installed on a CPU-only machine (its only wheel is CUDA-linked). Its image path never touches
    torchvision, so it is imported under a stand-in module that is removed again at once (a
    lingering fake would mislead transformers' own torchvision check)."""
    if "qwen_vl_utils" in sys.modules:
        return sys.modules["qwen_vl_utils"]
    fake = types.ModuleType("torchvision")
    fake.__version__ = "0.0.0"
    fake.io = types.ModuleType("torchvision.io")
    fake.transforms = types.ModuleType("torchvision.transforms")
    fake.transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")
    names = {"torchvision": fake, "torchvision.io": fake.io, "torchvision.transforms": fake.transforms}
    sys.modules.update(names)
    try:
        import qwen_vl_utils
    finally:
        for name in names:
            sys.modules.pop(name, None)
    return qwen_vl_utils


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    return build_tiny_vlm("qwen2_5_vl", tmp_path_factory.mktemp("qwen25") / "model")


def textured(path: Path, width: int, height: int, seed: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 4 if mode == "RGBA" else 3
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)


# (query size, template size): smaller than min_pixels, in range, larger than max_pixels; each is
# also rendered with 0 templates (0-shot)
CASES = [((900, 900), (320, 240)), ((1500, 1000), (28, 900)), ((60, 40), (200, 150)), ((333, 517), (1500, 1000))]


@pytest.fixture(scope="module")
def qwen_tree(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("qwen-mmad") / "MMAD"
    conversation = [
        {"Question": "Is there any defect in the object?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "A", "type": "Anomaly Detection"},
        {"Question": "What type of defect?", "Options": {"A": "Crack", "B": "Broken", "C": "Stain"}, "Answer": "B", "type": "Defect Classification"},
    ]
    mmad = {}
    for index, (query, template) in enumerate(CASES):
        key = f"DS-MVTec/bottle/image/broken/{index:03d}.png"
        textured(root / key, *query, seed=index, mode="RGBA" if index == 3 else "RGB")
        templates = [f"MVTec-AD/bottle/train/good/{index:03d}.png"]
        textured(root / templates[0], *template, seed=100 + index)
        mmad[key] = {"conversation": conversation, "mask_path": "", "similar_templates": [], "random_templates": templates}
    (root / "mmad.json").write_text(json.dumps(mmad))
    return root, mmad


def official_rendering(processor, root: Path, key: str, record: dict, question_index: int):
    """qwen2_5_vl_query.py's get_query + generate_answer, rebuilt from its facts (no question number)."""
    qa = record["conversation"][question_index]
    options = "".join(f"{k}. {v}\n" for k, v in qa["Options"].items())
    incontext = []
    if record["random_templates"]:
        incontext.append({"type": "text", "text": "Following is/are 1 image of normal sample, which can be used as a template to compare the image being queried."})
        incontext += [{"type": "image", "image": str(root / path)} for path in record["random_templates"][:1]]
    content = (
        [{"type": "text", "text": INSTRUCTION}, {"type": "text", "text": "Answer with the option's letter from the given choices directly! "}]
        + incontext
        + [{"type": "text", "text": "Following is the query image: "}, {"type": "image", "image": str(root / key)}, {"type": "text", "text": "Following is the question list: "}]
        + [{"type": "text", "text": f"{qa['Question']} \n{options}", "options": qa["Options"]}]
    )
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, add_vision_id=True)
    image_inputs, video_inputs = import_qwen_vl_utils().process_vision_info(messages)
    inputs = processor(text=[text], images=image_inputs, videos=video_inputs, padding=True, return_tensors="pt", min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    return text, inputs


# The reference pipeline calls the processor as MMAD's script does, min_pixels/max_pixels included:
# transformers' deprecation notice for that call is the script's, not ours (iadbench passes `size`).
@pytest.mark.filterwarnings("ignore:Passing `min_pixels` and `max_pixels` to a processor call is deprecated:FutureWarning")
def test_inputs_equal_the_official_pipeline(tiny_qwen, qwen_tree):
    root, mmad = qwen_tree
    protocol = load_protocol("qwen2.5-vl")
    from harness.data.mmad import load_mmad

    question_set = load_mmad(root / "mmad.json", root=root)
    model = HFModel(f"hf/{tiny_qwen}", seed=0, options=ModelOptions(device="cpu"))
    from harness.models.hf_processors import load_processor

    reference_processor, _ = load_processor(str(tiny_qwen))  # a second instance: nothing shared with ours
    by_image: dict[str, list] = {}
    for q in question_set.questions:
        by_image.setdefault(q.image_id, []).append(q)
    checked = 0
    for key, record in mmad.items():
        image = question_set.images[key]
        for question in by_image[key]:
            for shots in (1, 0):
                templates = list(image.random_templates[:shots])
                request = official_request(question, by_image[key], image, root, protocol=protocol, templates=templates, knowledge=None, seed=0)
                ours = model.render_request(request)
                text, reference = official_rendering(reference_processor, root, key, record | {"random_templates": templates}, question.index)
                assert ours["text"] == text
                assert torch.equal(ours["inputs"]["input_ids"], reference["input_ids"])
                assert torch.equal(ours["inputs"]["image_grid_thw"], reference["image_grid_thw"])
                assert torch.equal(ours["inputs"]["pixel_values"], reference["pixel_values"])
                checked += 1
    assert checked == 2 * 2 * len(CASES)
    # the facts behind the issue: 900×900 → 1,024 visual tokens, 1500×1000 → 1,247 (iadbench's old 512 cap: 324 and 216)
    first = model.render_request(official_request(by_image[list(mmad)[0]][0], by_image[list(mmad)[0]], question_set.images[list(mmad)[0]], root,
                                                  protocol=protocol, templates=[], knowledge=None, seed=0))
    assert first["inputs"]["image_grid_thw"][0].prod().item() // 4 == 1024
    assert "Picture 1: <|vision_start|>" in first["text"] and first["text"].startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")


def test_qwen_rounding_rule_equals_qwen_vl_utils():
    utils = import_qwen_vl_utils()
    for height, width in [(900, 900), (1000, 1500), (40, 60), (517, 333), (28, 28), (10, 1900), (4000, 3000)]:
        assert qwen_smart_size(height, width) == tuple(utils.smart_resize(height, width, factor=28))
        assert qwen_smart_size(height, width, MIN_PIXELS, MAX_PIXELS) == tuple(utils.smart_resize(height, width, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS))


@pytest.mark.slow  # 6 s: a whole CLI run of the tiny model (its inputs are compared in the fast tier)
def test_cli_run_and_dump_with_the_tiny_model(tmp_path, tiny_qwen, qwen_tree, monkeypatch, capsys):
    root, _ = qwen_tree
    model = f"hf/{tiny_qwen}"
    monkeypatch.setenv("IADBENCH_CACHE", str(tmp_path / "cache"))
    dump = tmp_path / "dump"
    assert main(["eval", "--model", model, "--suite", "mmad-official", "--protocol", "qwen2.5-vl", "--data", f"mmad:{root / 'mmad.json'}", "--dry-run", "--dump-requests", str(dump), "--device", "cpu"]) == 0
    first = sorted(dump.iterdir())[0]
    meta = json.loads((first / "request.json").read_text())
    assert meta["image_grid_thw"] == [[1, 18, 22], [1, 64, 64]]  # template 320×240 → 308×252; query 900×900 → 896×896
    assert (first / "prompt.txt").read_text().count("Picture ") == len(meta["image_grid_thw"])
    assert Image.open(first / "image-0.png").size[0] % 28 == 0
    code = main(["eval", "--model", model, "--suite", "mmad-official", "--protocol", "qwen2.5-vl", "--data", f"mmad:{root / 'mmad.json'}", "--device", "cpu",
                 "--runs-dir", str(tmp_path / "runs"), "--run-id", "q", "--quiet", "--limit", "4"])
    assert code == 0
    lines = [json.loads(line) for line in (tmp_path / "runs" / "q" / "samples.jsonl").read_text().splitlines()]
    # a random model rarely writes a letter: the official parser then takes the closest option text
    for sample in lines:
        assert sample["protocol"] == "qwen2.5-vl"
        assert sample["official_answer"] is not None
        if sample["official_reason"] and "closest option" in sample["official_reason"]:
            assert sample["official_answer"] in sample["options"]
