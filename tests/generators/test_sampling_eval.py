"""Sampling (deterministic, resumable) and ``eval-generator`` (detection + quality)."""

from __future__ import annotations

import json

import pytest
import torch

from advsig.generators.evaluate import (
    RANDOM_CNN,
    distribution_distances,
    evaluate_generators,
    feature_space,
    real_images,
)
from advsig.generators.pixel import new_pixel_diffusion, sample_images
from advsig.generators.report import write_eval_report
from advsig.generators.sampling import generate_to_folder


@pytest.fixture
def tiny_model(tiny_pixel_model):
    return tiny_pixel_model


def test_sample_i_does_not_depend_on_batching(tiny_model):
    a = sample_images(tiny_model, range(5), steps=3, seed=1, batch_size=5)
    b = sample_images(tiny_model, [3, 4], steps=3, seed=1, batch_size=1)
    assert a.shape == (5, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    torch.testing.assert_close(a[3:], b, rtol=1e-4, atol=1e-5)
    c = sample_images(tiny_model, [3], steps=3, seed=2)
    assert not torch.allclose(a[3:4], c)


def test_generate_resumes_and_keeps_existing_files(tiny_model, tmp_path):
    first = generate_to_folder(tiny_model, tmp_path, 2, steps=2, progress=False)
    stamps = [p.stat().st_mtime_ns for p in first]
    paths = generate_to_folder(tiny_model, tmp_path, 4, steps=2, progress=False)
    assert [p.name for p in paths] == [f"sample-{i:06d}.png" for i in range(4)]
    assert [p.stat().st_mtime_ns for p in paths[:2]] == stamps
    assert not list(tmp_path.glob(".*tmp*"))


def test_random_cnn_distances_separate_distributions():
    space = feature_space(None)
    assert space.name == RANDOM_CNN
    photos = real_images("embedded", 32, 60, seed=0)
    more_photos = real_images("embedded", 32, 60, seed=1)
    noise = torch.rand(60, 3, 32, 32)
    same = distribution_distances(space, photos, more_photos)
    different = distribution_distances(space, photos, noise)
    assert different["fid"] > 3 * same["fid"]
    assert different["kid"] > same["kid"]


def test_missing_inception_weights_are_refused_by_name(tmp_path):
    from advsig.errors import ConfigError

    with pytest.raises(ConfigError, match="Inception weights"):
        feature_space(tmp_path / "pt_inception.pth")


def test_evaluate_generators_reports_every_model(tiny_model, tiny_unet_config, tiny_kit, tmp_path):
    other = new_pixel_diffusion(32, seed=1, **tiny_unet_config)
    results = evaluate_generators(
        tiny_kit, {"signed": tiny_model, "reference": other}, out=tmp_path, code="a5",
        num_images=6, steps=2, progress=False,
    )  # fmt: skip
    det = results.detection
    assert set(det) == {"signed", "reference"}
    for d in det.values():
        assert d.num_samples == 6
        assert 0 <= d.flag_rate_1e3 <= d.flag_rate_1e2 <= 1
    assert 0 <= det["signed"].bit_accuracy <= 1 and det["signed"].code == "a5"
    assert det["reference"].bit_agreement_with_signed_code is not None
    assert det["signed"].bit_agreement_with_signed_code is None
    saved = json.loads((tmp_path / "results.json").read_text())["detection"]
    assert saved["signed"]["flag_rate_1e-3"] == det["signed"].flag_rate_1e3
    assert "bit_agreement_with_signed_code" in saved["reference"]
    q = results.quality
    assert q["feature_space"] == RANDOM_CNN
    assert set(q["vs_real"]) == {"signed", "reference"} and set(q["vs_reference"]) == {"signed"}
    assert json.loads((tmp_path / "results.json").read_text())["code"] == "a5"
    report = write_eval_report(results.to_json_dict(), tmp_path).read_text()
    assert "random-CNN" in report and "grid-signed.png" in report
    assert (tmp_path / "grid-reference.png").is_file()


def test_shipped_64px_ddpm_samples_images_not_noise():
    """``ddpm-64`` (benchmarks/train_demo_ddpm.py --size 64) draws 64x64 pictures: far smoother
    than what the same network draws untrained."""
    from advsig.generators.pixel import load_pixel_diffusion

    def roughness(model) -> float:
        x = sample_images(model, range(4), steps=10, seed=0)  # (4, 3, 64, 64)
        assert x.shape == (4, 3, 64, 64)
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean().item()

    trained = load_pixel_diffusion("ddpm-64")
    assert trained.sample_size == 64
    assert roughness(trained) < 0.5 * roughness(new_pixel_diffusion(64, seed=0))


def test_inception_weights_load_from_safetensors_and_pickles_are_refused(tmp_path, monkeypatch):
    """A .pth (a pickle) is refused by name; a safetensors file gives 2048-d features."""
    from safetensors.torch import save_file
    from torchmetrics.image.fid import NoTrainInceptionV3

    from advsig.errors import ConfigError
    from advsig.generators.evaluate import InceptionFeatures

    pickle = tmp_path / "pt_inception.pth"
    torch.save({"w": torch.zeros(1)}, pickle)
    with pytest.raises(ConfigError, match="safetensors"):
        feature_space(pickle)
    # A randomly initialised network's weights stand in for the real file (no download): the
    # loader is skipped only while building the donor.
    with monkeypatch.context() as m:
        m.setattr(NoTrainInceptionV3.__mro__[1], "load_state_dict", lambda self, *a, **k: None)
        m.setattr(
            "torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
            lambda *a, **k: {},
        )
        donor = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    weights = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(weights))
    features = InceptionFeatures(weights)(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, 2048)
