"""How a protocol opens an image file: the named loading recipes, one place for all of them.

Every script iadbench reproduces opens its images its own way, and the ways differ exactly on the
files AD datasets rarely hold but users bring: transparency, 16-bit cameras, palettes, CMYK JPEGs,
EXIF orientation tags. Which way a protocol opens an image is protocol data (a recipe name in
harness/protocols/*.toml, harness/tasks/robustmad/robustmad.toml, the GPT-4V-AD task), and every image a
model or an API receives is opened here, by that name, before any resizing or encoding.

| recipe | the official step | alpha (RGBA, LA, P+transparency) | 16-bit | EXIF orientation |
| --- | --- | --- | --- | --- |
| iadbench-rgb | iadbench's own (harness.adsets.images.open_rgb) | dropped, RGB under it kept | scaled 1/257 | not applied |
| pil-convert-rgb | `Image.open(path).convert('RGB')` | dropped, RGB under it kept | clipped at 255 | not applied |
| flatten-white | qwen-vl-utils' `fetch_image` → `to_rgb` | RGBA pasted on white; LA, P: dropped | clipped at 255 | not applied |
| cv2-imread | `cv2.imread(path)` (BGR; RGB here) | dropped, RGB under it kept | shifted >>8 | applied |
| cv2-imread-stored | `cv2.imread(path, IMREAD_COLOR \\| IMREAD_IGNORE_ORIENTATION)` | as cv2-imread | as cv2-imread | not applied |
| file-bytes | `open(path, 'rb').read()`, base64 to an API | the API's decoder decides | the API's | the API's |

`file-bytes` sends no pixels of iadbench's making; where pixels are needed all the same (a local
model under an API script's protocol, a dumped request) they are Pillow's RGB of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image

from harness.adsets.images import UnreadableImage, open_converted, open_rgb
from harness.errors import ConfigError

LoadingName = Literal["iadbench-rgb", "pil-convert-rgb", "flatten-white", "cv2-imread", "cv2-imread-stored", "file-bytes"]
DEFAULT_LOADING: LoadingName = "iadbench-rgb"
OPENCV_HINT = "pip install -e '.[official]' (opencv-python-headless)"


def _pillow(path: str, convert: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """`convert` applied to the file as Pillow opens it (the one opener: harness/adsets/images.py)."""
    return open_converted(path, convert)


def _convert_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def _flatten_white(image: Image.Image) -> Image.Image:
    # qwen_vl_utils/vision_process.py to_rgb (0.0.14, as installed): only mode RGBA is composed on
    # white; every other mode, LA and transparent palettes included, goes through convert('RGB').
    if image.mode == "RGBA":
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image, mask=image.split()[3])
        return white
    return image.convert("RGB")


def read_bgr(path: str, *, orientation: bool = True) -> np.ndarray:
    """OpenCV's own read, as the scripts call it: 8-bit BGR, alpha dropped, 16-bit shifted to 8,
    the EXIF orientation applied unless `orientation` is False."""
    try:
        import cv2
    except ImportError:
        raise UnreadableImage(f"cannot decode image {path}: this protocol opens images with OpenCV; {OPENCV_HINT}") from None
    flags = cv2.IMREAD_COLOR if orientation else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imread(path, flags) if Path(path).is_file() else None
    if image is None:
        raise UnreadableImage(f"cannot decode image {path} with OpenCV")
    return image


def _cv2(orientation: bool) -> Callable[[str], Image.Image]:
    return lambda path: Image.fromarray(np.ascontiguousarray(read_bgr(path, orientation=orientation)[:, :, ::-1]))


@dataclass(frozen=True)
class LoadingRecipe:
    name: LoadingName
    step: str  # the official call, as the script writes it
    decode: Callable[[str], Image.Image]  # the file as 8-bit RGB, opened this way
    needs_opencv: bool = False


RECIPES: dict[str, LoadingRecipe] = {
    recipe.name: recipe
    for recipe in (
        LoadingRecipe("iadbench-rgb", "harness.adsets.images.open_rgb (iadbench's own: 16-bit scaled, not clipped)", open_rgb),
        LoadingRecipe("pil-convert-rgb", "Image.open(path).convert('RGB')", lambda path: _pillow(path, _convert_rgb)),
        LoadingRecipe("flatten-white", "qwen_vl_utils.fetch_image: Image.open(path), RGBA pasted on white, else convert('RGB')", lambda path: _pillow(path, _flatten_white)),
        LoadingRecipe("cv2-imread", "cv2.imread(path) (BGR, EXIF orientation applied)", _cv2(True), needs_opencv=True),
        LoadingRecipe("cv2-imread-stored", "cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)", _cv2(False), needs_opencv=True),
        LoadingRecipe("file-bytes", "open(path, 'rb').read(), base64 (pixels where needed: Image.open(path).convert('RGB'))", lambda path: _pillow(path, _convert_rgb)),
    )
}
assert set(RECIPES) == set(get_args(LoadingName))


def recipe(name: str) -> LoadingRecipe:
    found = RECIPES.get(name)
    if found is None:
        raise ConfigError(f"unknown image loading recipe {name!r}; known: {', '.join(RECIPES)}")
    return found


def load_image(path: str, name: str = DEFAULT_LOADING) -> Image.Image:
    """The image at `path` as 8-bit RGB, opened as recipe `name` opens it (UnreadableImage if it cannot be)."""
    return recipe(name).decode(path)


def require_loading(name: str) -> None:
    """Refuse a run before it starts when its recipe's library is missing (every image would fail)."""
    if recipe(name).needs_opencv:
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise ConfigError(f"image loading {name!r} reads images with OpenCV as the official script did; {OPENCV_HINT}") from None
