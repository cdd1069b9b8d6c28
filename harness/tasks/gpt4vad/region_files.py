"""Reading the region divisions GPT-4V-AD's public code saves (`{image}_{method}_masks.pth`, i.e.
torch.save(dict(masks=[bool H×W arrays]))), so a run can use the paper's exact regions.

A .pth file is a pickle, and a pickle can run code when loaded. Nothing here ever unpickles with
the standard loader: tensors go through torch.load(weights_only=True), and numpy arrays through an
unpickler that builds only numpy arrays, dtypes and plain containers and refuses every other name.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from harness.errors import ConfigError

METHODS = ("superpixel", "sam", "grid")
# The only callables a file of numpy masks needs: array reconstruction and dtypes (data, not code).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell an array's raw bytes (str → bytes only)
}


class _NeedsTorch(Exception):
    """The file holds tensors: torch.load(weights_only=True), torch's own safe loader, reads it."""


class _MasksUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED or (module in ("numpy.dtypes",) and name.endswith("DType")):
            return super().find_class(module, name)
        if module == "torch" or module.startswith("torch."):
            raise _NeedsTorch
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a region file holds only arrays")

    def persistent_load(self, pid):
        raise _NeedsTorch


def read_official_masks(path: Path) -> list[np.ndarray]:
    """The masks of an official division file, in their saved (numbering) order."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{path}: not a torch.save file ({error})") from None
    with archive:
        pickled = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pickled is None:
            raise ConfigError(f"{path}: no data.pkl inside; not a torch.save file")
        payload = archive.read(pickled)
    try:
        data = _MasksUnpickler(io.BytesIO(payload)).load()
    except _NeedsTorch:
        data = _load_tensors(path)
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None
    masks = data.get("masks") if isinstance(data, dict) else None
    if not isinstance(masks, (list, tuple)):
        raise ConfigError(f"{path}: expected dict(masks=[...]) as GPT-4V-AD's region_division.py saves it")
    return [np.asarray(m.numpy() if hasattr(m, "numpy") else m, bool) for m in masks]


def _load_tensors(path: Path):
    try:
        import torch
    except ImportError:
        raise ConfigError(f"{path}: holds torch tensors; install torch to read it") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several kinds for a refused file
        raise ConfigError(f"{path}: refused by torch.load(weights_only=True): {str(error).splitlines()[0]}") from None


def official_file(folder: Path, relative_image: str, method: str | None) -> Path:
    """`{image stem}_{method}_masks.pth` beside the image's relative path under `folder`."""
    stem = Path(relative_image).with_suffix("")
    methods = [method] if method else list(METHODS)
    found = [folder / f"{stem}_{m}_masks.pth" for m in methods if (folder / f"{stem}_{m}_masks.pth").is_file()]
    if not found:
        raise ConfigError(f"--regions official: no {folder / stem}_{{{'|'.join(methods)}}}_masks.pth for {relative_image}")
    if len(found) > 1:
        raise ConfigError(f"--regions official: several divisions for {relative_image} ({', '.join(p.name for p in found)}); name one with official:DIR:METHOD")
    return found[0]
