"""Image degradations as a run axis (`--perturb KIND:SEVERITY`, repeatable): does an answer survive
a bad camera day?

Six photometric kinds at five severities each, after ImageNet-C (Hendrycks & Dietterich, 2019),
whose parameters are defined for 224-px images; sizes (blur radii, motion lengths) are scaled by
the image's shorter side / 224 so a severity means the same on a 256-px and a 1024-px image:

| kind | severity 1..5 |
| --- | --- |
| gaussian_noise | sigma 0.08, 0.12, 0.18, 0.26, 0.38 (of the 0..1 range), added per pixel and channel |
| defocus_blur | disk kernel of radius 3, 4, 6, 8, 10 px (at 224 px) |
| motion_blur | a line kernel 5, 9, 13, 17, 21 px long (at 224 px), at a seeded angle in [-45°, 45°] |
| jpeg | JPEG quality 25, 18, 15, 10, 7 |
| brightness | +0.1 .. +0.5 on HSV value |
| contrast | pixels pulled to the mean, keeping 0.4, 0.3, 0.2, 0.1, 0.05 of their deviation |

Geometry-changing kinds (rotation, crops, zoom) are left out: masks and grid answers would have to
move with them. A degradation is deterministic: its random draws are seeded by the image's bytes,
the kind, the severity and the run seed, so the same image gives the same bytes on every machine.
Each degraded image is written once into the cache (`<cache>/perturbed/`) and reused by every
question and run that asks for it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from harness.errors import ConfigError

SEVERITIES = 5
REFERENCE_SIDE = 224
PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "defocus_blur": (3, 4, 6, 8, 10),
    "motion_blur": (5, 9, 13, 17, 21),
    "jpeg": (25, 18, 15, 10, 7),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
}
KINDS = tuple(PARAMETERS)
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def parse_perturbation(text: str) -> tuple[str, int]:
    kind, _, severity = text.partition(":")
    if kind not in PARAMETERS or not severity.isdigit() or not 1 <= int(severity) <= SEVERITIES:
        raise ConfigError(f"--perturb {text!r}: use KIND:SEVERITY with KIND one of {', '.join(KINDS)} and SEVERITY 1..{SEVERITIES}, or a benchmark's own degradation (iadbench list perturbations: robustmad-low with --task robustmad)")
    return kind, int(severity)


def canonical_perturbations(values: list[str]) -> list[str]:
    """Validated, in the order given (degradations are applied in that order)."""
    return [f"{kind}:{severity}" for kind, severity in map(parse_perturbation, values)]


def _kernel_disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    kernel = (x * x + y * y <= radius * radius).astype(np.float32)
    return kernel / kernel.sum()


def _kernel_line(length: float, angle_deg: float) -> np.ndarray:
    n = max(3, int(round(length)) | 1)
    kernel = np.zeros((n, n), np.float32)
    centre, angle = n // 2, np.deg2rad(angle_deg)
    for t in np.linspace(-centre, centre, 4 * n):
        kernel[int(round(centre - t * np.sin(angle))), int(round(centre + t * np.cos(angle)))] = 1.0
    return kernel / kernel.sum()


def _convolve(rgb: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each channel convolved with `kernel` (odd size), edges mirrored, by FFT: a 10-px disk has 441
    taps, and scipy.signal costs seconds to import."""
    pad = kernel.shape[0] // 2
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    shape = padded.shape[:2]
    spectrum = np.fft.rfft2(padded, s=shape, axes=(0, 1)) * np.fft.rfft2(kernel, s=shape)[..., None]
    full = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))  # circular; the wrapped border is cropped away
    return full[2 * pad :, 2 * pad :][: rgb.shape[0], : rgb.shape[1]].astype(np.float32)


def degrade(rgb: np.ndarray, kind: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """One degradation of an RGB uint8 array; returns uint8 of the same shape."""
    value = PARAMETERS[kind][severity - 1]
    scale = min(rgb.shape[:2]) / REFERENCE_SIDE
    x = rgb.astype(np.float32) / 255.0
    if kind == "gaussian_noise":
        x = x + rng.normal(0.0, value, x.shape).astype(np.float32)
    elif kind == "defocus_blur":
        x = _convolve(x, _kernel_disk(value * scale))
    elif kind == "motion_blur":
        x = _convolve(x, _kernel_line(value * scale, float(rng.uniform(-45, 45))))
    elif kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(value))
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    elif kind == "brightness":
        # HSV value V = max(R, G, B) raised by `value`: scaling a pixel by (V + value) / V keeps its
        # hue and saturation (a black pixel, hue undefined, turns grey)
        v = x.max(axis=-1, keepdims=True)
        raised = np.minimum(v + value, 1.0)
        x = np.where(v > 0, x * raised / np.where(v > 0, v, 1), raised)
    elif kind == "contrast":
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = (x - mean) * value + mean
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def perturbed_path(source: Path, perturbations: list[str], seed: int, cache: Path) -> Path:
    """The degraded copy of `source` (PNG, lossless), written once into `cache` and reused."""
    data = source.read_bytes()
    digest = hashlib.sha256(data + "|".join(perturbations).encode() + f"|{seed}".encode()).hexdigest()[:24]
    target = cache / "perturbed" / f"{digest}.png"
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(target), threading.Lock())
    with lock:  # questions on one image arrive together: one thread degrades it, the others wait
        if not target.is_file():
            _write_degraded(data, perturbations, seed, digest, target)
    return target


def _write_degraded(data: bytes, perturbations: list[str], seed: int, digest: str, target: Path) -> None:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    for index, text in enumerate(perturbations):
        kind, severity = parse_perturbation(text)
        rng = np.random.default_rng(np.random.SeedSequence([seed, index, int(digest[:8], 16), severity, KINDS.index(kind)]))
        rgb = degrade(rgb, kind, severity, rng)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".png")
    os.close(handle)
    Image.fromarray(rgb).save(temporary, format="PNG")
    os.replace(temporary, target)  # atomic: another process degrading the same image writes the same bytes
