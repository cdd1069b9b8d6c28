"""How each protocol opens an image, checked against the official scripts' own loading calls.

The images are built here in the modes where the libraries disagree: RGBA with random RGB under
partial and zero alpha, LA, a palette image with a transparent index, 16-bit grey (I;16), a CMYK
JPEG, and a JPEG whose EXIF orientation is 6. For every protocol the pixels (or bytes) iadbench
hands the processor or the API equal what the script's own library calls produce, run here as the
scripts run them: Pillow's convert('RGB'), qwen_vl_utils.fetch_image as installed, cv2.imread and
cv2.imencode, open(path, 'rb').read().
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.models.image_loading import RECIPES, load_image
from harness.models.images import encoded_bytes, model_image
from harness.protocols import load_protocol, protocol_names
from harness.tasks.mcq.official import image_part
from harness.tasks.gpt4vad.regions import LOADING as GPT4VAD_LOADING
from harness.tasks.gpt4vad.regions import SIDE, load_square
from harness.tasks.robustmad.kind import protocol_data, family_for
from tests.test_official_qwen_protocol import import_qwen_vl_utils

HARD = ["rgba.png", "la.png", "palette.png", "grey16.png", "rgb48.png", "grey.png", "cmyk.jpg", "exif6.jpg", "rgb.png"]
H, W = 45, 71  # not square, so an applied orientation shows in the shape


@pytest.fixture(scope="module")
def hard(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hard-modes")
    rng = np.random.default_rng(33)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, W // 3:] = 90
    alpha[:, 2 * W // 3:] = 255
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / "rgba.png")
    Image.fromarray(np.dstack([rgb[:, :, 1], alpha]), "LA").save(folder / "la.png")
    palette = Image.fromarray(rng.integers(0, 16, (H, W), dtype=np.uint8), "P")
    palette.putpalette(rng.integers(0, 256, 48, dtype=np.uint8).tolist())
    palette.save(folder / "palette.png", transparency=5)
    Image.fromarray(rng.integers(0, 65536, (H, W)).astype(np.uint16)).save(folder / "grey16.png")
    cv2.imwrite(str(folder / "rgb48.png"), rng.integers(0, 65536, (H, W, 3)).astype(np.uint16))  # 16 bits a channel
    Image.fromarray(rgb[:, :, 2]).save(folder / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(rgb).save(folder / "exif6.jpg", quality=92, exif=exif)
    Image.fromarray(rgb).save(folder / "rgb.png")
    modes = {name: Image.open(folder / name).mode for name in HARD}
    assert modes == {"rgba.png": "RGBA", "la.png": "LA", "palette.png": "P", "grey16.png": "I;16", "rgb48.png": "RGB", "grey.png": "L", "cmyk.jpg": "CMYK", "exif6.jpg": "RGB", "rgb.png": "RGB"}
    return folder


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)


def test_the_hard_modes_tell_the_recipes_apart(hard):
    """The fixture discriminates: each pair of recipes that a protocol could confuse differs on it."""
    def of(name, recipe):
        return np.asarray(load_image(str(hard / name), recipe))

    assert (of("rgba.png", "flatten-white") != of("rgba.png", "pil-convert-rgb")).mean() > 0.5  # 2/3 of the columns are (partly) transparent
    assert (of("rgba.png", "flatten-white")[:, : W // 3] == 255).all()  # zero alpha: white, not the RGB under it
    assert (of("grey16.png", "pil-convert-rgb") == 255).mean() > 0.95 and (of("grey16.png", "iadbench-rgb") < 255).mean() > 0.95
    assert of("exif6.jpg", "cv2-imread").shape == (W, H, 3) and of("exif6.jpg", "cv2-imread-stored").shape == (H, W, 3)
    assert of("exif6.jpg", "pil-convert-rgb").shape == (H, W, 3)


def test_every_protocol_names_its_loading():
    """Each official protocol states its script's recipe in its own file (no default taken silently)."""
    for name in protocol_names():
        protocol = load_protocol(name)
        assert "loading" in protocol.images.model_fields_set, name
        assert protocol.images.loading in RECIPES
    families = protocol_data()["families"]
    for name, family in families.items():
        assert family.get("image_loading", "iadbench-rgb") in RECIPES
        assert name == "default" or "image_loading" in family, name


# -- MMAD's official scripts -------------------------------------------------------------------

QWEN_MMAD = ["qwen2.5-vl", "qwen2.5-vl-numbered", "qwen2-vl"]
CV2_MMAD = ["gpt-4o", "gpt-4o-mini", "gpt-4o-two-call", "gemini", "llava"]


@pytest.mark.parametrize("protocol_name", QWEN_MMAD)
def test_mmad_qwen_pixels_are_qwen_vl_utils_own(hard, protocol_name):
    """qwen2_5_vl_query.py hands process_vision_info the path: fetch_image opens and resizes it."""
    utils = import_qwen_vl_utils()
    protocol = load_protocol(protocol_name)
    for name in HARD:
        path = str(hard / name)
        ours = model_image(image_part(Path(path), "query", protocol))
        (official,), _ = utils.process_vision_info([{"role": "user", "content": [{"type": "image", "image": path}]}])
        assert np.array_equal(pixels(ours), pixels(official)), name


def script_jpeg(path: str, fit: int = 512) -> bytes:
    """gpt4o.py:75-85 encode_image_to_base64 on cv2.imread(path) (:286, :300), as the script runs it."""
    image = cv2.imread(path)
    height, width = image.shape[:2]
    scale = min(fit / width, fit / height)
    resized = cv2.resize(image, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
    return base64.b64decode(base64.b64encode(cv2.imencode(".jpg", resized)[1]).decode("utf-8"))


@pytest.mark.parametrize("protocol_name", CV2_MMAD)
def test_mmad_opencv_scripts_bytes_and_pixels(hard, protocol_name):
    protocol = load_protocol(protocol_name)
    for name in HARD:
        path = str(hard / name)
        part = image_part(Path(path), "query", protocol)
        expected = script_jpeg(path, protocol.images.size)
        assert encoded_bytes(part)[0] == expected, name  # what the API receives, byte for byte
        # llava_query.py:230 load_image_from_base64: Image.open(BytesIO(b64decode(...))) of the same JPEG
        assert np.array_equal(pixels(model_image(part)), pixels(Image.open(io.BytesIO(expected)))), name
    assert Image.open(io.BytesIO(encoded_bytes(image_part(hard / "exif6.jpg", "query", protocol))[0])).size == (int(H * 512 / W), 512)  # turned upright (71 high, 45 wide), then fit


# -- RobustMAD's scripts ---------------------------------------------------------------------------

@pytest.mark.parametrize("model,patch", [("hf/Qwen/Qwen2.5-VL-3B-Instruct", 14), ("hf/Qwen/Qwen3-VL-4B-Instruct", 16)])
def test_robustmad_qwen_pixels_are_the_scripts_own(hard, model, patch):
    """mcq_qwen*_vl*.py: load_image = Image.open(path).convert('RGB'); then process_vision_info
    (image_patch_size=16 for Qwen3-VL) on that RGB image: transparency is dropped, never whitened."""
    utils = import_qwen_vl_utils()
    family = family_for(model)
    for name in HARD:
        path = str(hard / name)
        ours = model_image(family.image(path, "query"))
        image = Image.open(path).convert("RGB")
        messages = [{"role": "user", "content": [{"type": "image", "image": image}]}]
        (official,), _ = utils.process_vision_info(messages, image_patch_size=16) if patch == 16 else utils.process_vision_info(messages)
        assert np.array_equal(pixels(ours), pixels(official)), name


@pytest.mark.parametrize("model", ["gpt-5-nano", "gemini-3-flash-preview"])
def test_robustmad_api_scripts_send_the_files_own_bytes(hard, model):
    """mcq_gpt5nano.py:77-78, mcq_gemini3flash.py:82-83: open(path, 'rb').read(), whatever its mode."""
    family = family_for(f"openai/{model}")
    for name in HARD:
        path = hard / name
        with open(path, "rb") as image_file:
            assert encoded_bytes(family.image(str(path), "query"))[0] == image_file.read(), name


# -- GPT-4V-AD -------------------------------------------------------------------------------------

def test_gpt4vad_opening_against_region_division_py(hard):
    """region_division.py:60-62: cv2.imread then BGR2RGB. iadbench's recipe gives the same pixels
    for 8-bit RGB, RGBA, LA and palette files, within one level for 16-bit and CMYK, and keeps the
    stored orientation (the masks are drawn on it) where OpenCV turns an EXIF-tagged image."""
    for name in HARD:
        path = str(hard / name)
        official = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        ours = np.asarray(load_image(path, GPT4VAD_LOADING))
        if name == "exif6.jpg":
            assert official.shape == (W, H, 3) and ours.shape == (H, W, 3)
            stored = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION), cv2.COLOR_BGR2RGB)
            assert np.array_equal(ours, stored)
        elif name in ("grey16.png", "rgb48.png", "cmyk.jpg"):
            assert np.abs(ours.astype(int) - official).max() <= 1, name
        else:
            assert np.array_equal(ours, official), name
        square = load_square(path)  # what the overlay is drawn on: this opening, resized
        assert square.shape == (SIDE, SIDE, 3)
        assert np.array_equal(square, np.asarray(Image.fromarray(ours).resize((SIDE, SIDE), Image.BILINEAR)))


def test_the_docs_tables_name_each_protocols_recipe():
    """docs/official-protocols.md and docs/robustmad.md: each protocol's row names the recipe its file names."""
    import re

    root = Path(__file__).resolve().parents[1]

    def documented(page: str) -> dict[str, str]:
        named = {}
        for line in (root / "docs" / page).read_text(encoding="utf-8").splitlines():
            first = line.split(" | ")[0]
            recipe = re.search(r"\(`([a-z0-9-]+)`\)$", first)
            if line.startswith("| `") and recipe:
                named |= {name: recipe.group(1) for name in re.findall(r"`([^`]+)`", first[: recipe.start()])}
        return named

    assert documented("official-protocols.md") == {name: load_protocol(name).images.loading for name in protocol_names()}
    families = protocol_data()["families"]
    rows = documented("robustmad.md")
    assert {name: rows[name] for name in families} == {name: family.get("image_loading", "iadbench-rgb") for name, family in families.items()}


def test_an_opencv_protocol_without_opencv_is_refused_before_the_run(monkeypatch):
    """Every image would fail one by one: resolving the protocol (before any run folder) refuses it,
    naming the extra to install; a protocol that needs no OpenCV is not affected."""
    from harness.errors import ConfigError
    from harness.protocols import resolve_protocol

    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    with pytest.raises(ConfigError, match=r"cv2-imread.*opencv-python-headless"):
        resolve_protocol("auto", "openai/gpt-4o", [], [])
    assert resolve_protocol("auto", "hf/Qwen/Qwen2.5-VL-7B-Instruct", [], []).images.loading == "flatten-white"


def test_the_cache_digest_changes_only_where_the_pixels_did(hard):
    """A protocol whose opening did not change hashes its images as before recipes were named (its
    cached answers still serve); RobustMAD's Qwen requests, whose RGBA pixels changed, hash anew."""
    from harness.models.base import ChatMessage, GenerateRequest, ImagePart
    from harness.storage.files import file_sha256
    from harness.tasks.mcq.task import RequestDigester

    path = str(hard / "rgba.png")
    image = file_sha256(Path(path))
    unchanged = {  # each preparation with the opening it always had, and the entry hashed before
        ImagePart(path=path): {"image": image, "max_side": None},
        ImagePart(path=path, prep="qwen-native", loading="flatten-white"): {"image": image, "max_side": None, "prep": "qwen-native", "fit": None, "mime": None, "detail": None},
        ImagePart(path=path, prep="cv2-fit", fit=512, loading="cv2-imread"): {"image": image, "max_side": None, "prep": "cv2-fit", "fit": 512, "mime": None, "detail": None},
    }
    for part, entry in unchanged.items():
        assert RequestDigester()._image_entry(part) == entry, part.prep

    def digest(part: ImagePart) -> str:
        return RequestDigester().digest("m", GenerateRequest(messages=[ChatMessage(role="user", content=[part])], sample_id="s"))

    robust_qwen = family_for("hf/Qwen/Qwen2.5-VL-3B-Instruct").image(path, "query")
    assert robust_qwen.loading == "pil-convert-rgb"
    assert digest(robust_qwen) != digest(robust_qwen.model_copy(update={"loading": "flatten-white"}))
