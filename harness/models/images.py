"""Images for model requests: opened as the request's protocol opens them (`ImagePart.loading`, a
recipe of harness/models/image_loading.py), then sized as it sizes them (`ImagePart.prep`); for
APIs also base64-encoded once per run.

Four preparations (`ImagePart.prep`), each applied to the image its recipe opened:
- cap: the longest side scaled down to `max_side` (Pillow BOX, never enlarged); JPEG q95 for APIs.
- cv2-fit: MMAD's official GPT-4o/Gemini/LLaVA scripts: the image (cv2.imread's BGR), scaled by
  min(fit/w, fit/h) with int() truncation and INTER_AREA (so small images are enlarged), and
  cv2.imencode('.jpg') re-encodes it. Local models get that JPEG decoded, as LLaVA's script did.
- qwen-native: what qwen-vl-utils hands Qwen's processor: each side rounded to a multiple of the
  patch factor (28; 32 for Qwen3-VL) with 4..16384 factor² tokens, bicubic. APIs get it as lossless PNG.
- file: the file's own bytes to an API (RobustMAD's GPT and Gemini scripts read and base64 them),
  labelled image/jpeg for .jpg/.jpeg and image/png otherwise, as they label them; the recipe's RGB
  of the file, unresized, to a local model.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from harness.adsets.images import UnreadableImage
from harness.models.base import ImagePart
from harness.models.image_loading import DEFAULT_LOADING, OPENCV_HINT, load_image

JPEG_QUALITY = 95
QWEN_FACTOR = 28  # patch 14 × spatial merge 2
QWEN_MIN_TOKENS, QWEN_MAX_TOKENS = 4, 16384
QWEN_MAX_RATIO = 200


class ImageDecodeError(Exception):
    """An image file that cannot be read; it costs its samples, not the run."""


def opened(path: str, loading: str) -> Image.Image:
    """The file as 8-bit RGB, opened by recipe `loading`; a file it cannot decode costs its samples."""
    try:
        return load_image(path, loading)
    except UnreadableImage as error:
        raise ImageDecodeError(str(error)) from None


def load_rgb(path: str, max_side: int | None, loading: str = DEFAULT_LOADING) -> Image.Image:
    """The image as recipe `loading` opens it (by default iadbench's own: 16-bit scaled, not
    clipped), its longest side scaled down to `max_side` (never up)."""
    rgb = opened(path, loading)
    width, height = rgb.size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        # BOX averaging is what OpenCV's INTER_AREA (MMAD's resize) does when shrinking.
        rgb = rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BOX)
    return rgb


def cv2_fit_jpeg(path: str, fit: int, loading: str = "cv2-imread") -> bytes:
    """MMAD's official image step: the image as opened (the scripts' cv2.imread), fit into fit×fit
    (int() truncation, INTER_AREA, enlarging small images), encoded by cv2.imencode('.jpg') with
    OpenCV's defaults."""
    try:
        import cv2
    except ImportError:
        raise ImageDecodeError(f"the official MMAD image step needs OpenCV: {OPENCV_HINT}") from None
    # OpenCV works in BGR: cv2-imread's RGB reversed back is exactly what cv2.imread returned
    image = np.ascontiguousarray(np.asarray(opened(path, loading))[:, :, ::-1])
    height, width = image.shape[:2]
    scale = min(fit / width, fit / height)
    resized = cv2.resize(image, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", resized)
    if not ok:
        raise ImageDecodeError(f"OpenCV could not encode {path} as JPEG")
    return encoded.tobytes()


def qwen_smart_size(height: int, width: int, min_pixels: int | None = None, max_pixels: int | None = None, factor: int = QWEN_FACTOR) -> tuple[int, int]:
    """(height, width) as multiples of `factor` whose product lies in [min_pixels, max_pixels]
    (by default 4 and 16384 factor² tokens): qwen-vl-utils' and Qwen's image processor's rule."""
    min_pixels = QWEN_MIN_TOKENS * factor * factor if min_pixels is None else min_pixels
    max_pixels = QWEN_MAX_TOKENS * factor * factor if max_pixels is None else max_pixels
    if max(height, width) / min(height, width) > QWEN_MAX_RATIO:
        raise ImageDecodeError(f"aspect ratio {max(height, width) / min(height, width):.0f} is over Qwen's limit of {QWEN_MAX_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def qwen_native_rgb(path: str, factor: int = QWEN_FACTOR, loading: str = "flatten-white") -> Image.Image:
    """The image as opened (by default as qwen-vl-utils opens a path: RGBA on white, else Pillow's
    RGB, 16-bit clipped), resized as qwen-vl-utils' fetch_image resizes it."""
    rgb = opened(path, loading)
    height, width = qwen_smart_size(rgb.height, rgb.width, factor=factor)
    return rgb.resize((width, height), Image.BICUBIC)


def file_mime(path: str) -> str:
    """RobustMAD's scripts' label: image/jpeg for .jpg/.jpeg, image/png for anything else."""
    return "image/jpeg" if path.lower().endswith((".jpg", ".jpeg")) else "image/png"


def model_image(part: ImagePart) -> Image.Image:
    """The RGB image a local model's processor receives for this part."""
    if part.prep == "cv2-fit":
        with Image.open(io.BytesIO(cv2_fit_jpeg(part.path, part.fit or 512, part.loading))) as decoded:
            return decoded.convert("RGB")
    if part.prep == "qwen-native":
        return qwen_native_rgb(part.path, part.factor or QWEN_FACTOR, part.loading)
    if part.prep == "file":
        return opened(part.path, part.loading)
    return load_rgb(part.path, part.max_side, part.loading)


def extension_mime(path: str, default: str) -> str:
    """MMAD's official MIME rule: by the file's extension, not by the (JPEG) bytes sent."""
    lower = path.lower()
    if lower.endswith(".png"):
        return "image/png"
    if lower.endswith((".jpeg", ".jpg")):
        return "image/jpeg"
    return default


def encoded_bytes(part: ImagePart) -> tuple[bytes, str]:
    """(bytes, default MIME) of the image as an API receives it."""
    if part.prep == "cv2-fit":
        return cv2_fit_jpeg(part.path, part.fit or 512, part.loading), "image/jpeg"
    if part.prep == "file":
        try:
            return Path(part.path).read_bytes(), file_mime(part.path)
        except OSError as error:
            raise ImageDecodeError(f"cannot read image {part.path}: {error.strerror or error}") from None
    buffer = io.BytesIO()
    if part.prep == "qwen-native":
        qwen_native_rgb(part.path, part.factor or QWEN_FACTOR, part.loading).save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    load_rgb(part.path, part.max_side, part.loading).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), "image/jpeg"


def encode_jpeg_data_url(path: str, max_side: int | None) -> tuple[str, tuple[int, int]]:
    """A data URL of the image as JPEG, capped as `load_rgb` does."""
    rgb = load_rgb(path, max_side)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), rgb.size


class ImageEncoder:
    """Memoises encodings: an MMAD image is asked about ~5 times, its template far more."""

    def __init__(self) -> None:
        self._urls: dict[tuple, str] = {}
        self._lock = threading.Lock()
        self.encoded = 0

    def data_url(self, part: ImagePart) -> str:
        key = part.key() + (part.mime,)
        url = self._urls.get(key)
        if url is None:
            data, default_mime = encoded_bytes(part)
            url = f"data:{part.mime or default_mime};base64," + base64.b64encode(data).decode("ascii")
            with self._lock:
                self._urls[key] = url
                self.encoded += 1
        return url
