"""Images for model requests: loaded and capped in size; for APIs also base64-encoded once per run."""

from __future__ import annotations

import base64
import io
import threading

from PIL import Image, UnidentifiedImageError

JPEG_QUALITY = 95


class ImageDecodeError(Exception):
    """An image file that cannot be read; it costs its samples, not the run."""


def load_rgb(path: str, max_side: int | None) -> Image.Image:
    """The image as RGB, its longest side scaled down to `max_side` (never up)."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise ImageDecodeError(f"cannot decode image {path}: {error}") from None
    width, height = rgb.size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        # BOX averaging is what OpenCV's INTER_AREA (MMAD's resize) does when shrinking.
        rgb = rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BOX)
    return rgb


def encode_jpeg_data_url(path: str, max_side: int | None) -> tuple[str, tuple[int, int]]:
    """A data URL of the image as JPEG, capped as `load_rgb` does."""
    rgb = load_rgb(path, max_side)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), rgb.size


class ImageEncoder:
    """Memoises encodings: an MMAD image is asked about ~5 times, its template far more."""

    def __init__(self) -> None:
        self._urls: dict[tuple[str, int | None], str] = {}
        self._lock = threading.Lock()
        self.encoded = 0

    def data_url(self, path: str, max_side: int | None) -> str:
        key = (path, max_side)
        url = self._urls.get(key)
        if url is None:
            url, _ = encode_jpeg_data_url(path, max_side)
            with self._lock:
                self._urls[key] = url
                self.encoded += 1
        return url
