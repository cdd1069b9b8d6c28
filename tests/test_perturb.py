"""Image degradations: deterministic bytes, each kind and severity doing what it says, the run axis
(spec, run id, the images a server receives), the severity sweep and its report in a real browser."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.asking.perturb import KINDS, PARAMETERS, perturbed_path


def _photo(path, size=96, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    rgb = np.stack([x * 2, y * 2, (x + y)], -1) % 256
    rgb = (rgb * 0.6 + rng.integers(0, 60, rgb.shape)).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_same_bytes_twice_anywhere_and_each_kind_changes_the_image(tmp_path):
    source = _photo(tmp_path / "a.png")
    original = np.asarray(Image.open(source)).astype(float)
    for kind in KINDS:
        first = perturbed_path(source, [f"{kind}:3"], 0, tmp_path / "cache1")
        second = perturbed_path(source, [f"{kind}:3"], 0, tmp_path / "cache2")  # another cache: made again
        assert first.read_bytes() == second.read_bytes(), kind
        assert perturbed_path(source, [f"{kind}:3"], 0, tmp_path / "cache1") == first  # made once, reused
        changed = np.abs(np.asarray(Image.open(first)).astype(float) - original).mean()
        assert changed > 1.0, kind
    # the run seed changes the random draws (noise), not the kind's strength
    noise0 = np.asarray(Image.open(perturbed_path(source, ["gaussian_noise:3"], 0, tmp_path / "c")))
    noise1 = np.asarray(Image.open(perturbed_path(source, ["gaussian_noise:3"], 1, tmp_path / "c")))
    assert not np.array_equal(noise0, noise1)


@pytest.mark.parametrize("kind", ["gaussian_noise", "defocus_blur", "contrast", "jpeg"])
def test_a_higher_severity_degrades_more(tmp_path, kind):
    source = _photo(tmp_path / "a.png")
    original = np.asarray(Image.open(source)).astype(float)
    change = [np.abs(np.asarray(Image.open(perturbed_path(source, [f"{kind}:{s}"], 0, tmp_path))).astype(float) - original).mean() for s in (1, 3, 5)]
    assert change[0] < change[1] < change[2], change


def test_parameters_are_the_documented_ones():
    assert PARAMETERS["gaussian_noise"] == (0.08, 0.12, 0.18, 0.26, 0.38)  # ImageNet-C
    assert PARAMETERS["jpeg"] == (25, 18, 15, 10, 7) and PARAMETERS["contrast"] == (0.4, 0.3, 0.2, 0.1, 0.05)
    # contrast keeps the stated share of each pixel's deviation from the image mean
    flat = np.zeros((8, 8, 3), np.uint8)
    flat[:, :4] = 200
    from harness.asking.perturb import degrade

    out = degrade(flat, "contrast", 1, np.random.default_rng(0)).astype(float)
    assert out[0, 0, 0] == pytest.approx(100 + 0.4 * 100, abs=1) and out[0, 7, 0] == pytest.approx(100 - 0.4 * 100, abs=1)


def test_the_run_axis_reaches_the_model(tmp_path, synthetic_set, server):
    """--perturb is in spec.json and the run id, and the server receives the degraded query."""
    running = server()
    common = ["eval", "--model", "openai/m", "--base-url", running.base_url, "--limit", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet", "--no-cache"]
    assert main([*common, "--run-id", "clean"]) == 0
    assert main([*common, "--run-id", "noisy", "--perturb", "gaussian_noise:5"]) == 0
    clean, noisy = running.app.state.bodies[:2], running.app.state.bodies[2:4]

    def query(body):
        url = [p for p in body["messages"][-1]["content"] if p.get("type") == "image_url"][-1]["image_url"]["url"]
        return np.asarray(Image.open(io.BytesIO(__import__("base64").b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(float)

    assert np.abs(query(clean[0]) - query(noisy[0])).mean() > 10  # sigma 0.38 of 255
    spec = json.loads((tmp_path / "runs/noisy/spec.json").read_text())
    assert spec["perturb"] == ["gaussian_noise:5"] and spec["perturb_templates"] is False
    assert main(["eval", "--model", "oracle", "--perturb", "jpeg:9", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert main(["eval", "--task", "gpt4vad", "--model", "oracle", "--perturb", "jpeg:1", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert main(["eval", "--resume", str(tmp_path / "runs/noisy"), "--perturb", "jpeg:1"]) == 2
    assert main(["eval", "--model", "oracle", "--perturb", "jpeg:2", "--limit", "3", "--runs-dir", str(tmp_path / "ids"), "--quiet"]) == 0
    assert next((tmp_path / "ids").iterdir()).name.split("_")[-2].endswith("+jpeg2")
