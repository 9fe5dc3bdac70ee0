"""Watermark methods behind one protocol: advsig kits and invisible-watermark baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advsig.bench.methods import (
    AdvsigMethod,
    InvisibleWatermarkMethod,
    create_method,
    list_methods,
    quantize,
)
from advsig.bench.runner import _center_crop
from advsig.codes.bits import bits_to_hex
from advsig.data.datasets import embedded_image
from advsig.data.io import to_uint8
from advsig.errors import ConfigError
from advsig.kit import Kit


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 256x256 crop of a test-split photo, 8-bit values."""
    return quantize(_center_crop(embedded_image("astronaut"), 256))


def _message(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed)).float()


def test_advsig_method_is_the_kit(tiny_kit_dir):
    method = create_method(f"advsig:{tiny_kit_dir}")
    assert isinstance(method, AdvsigMethod) and method.name == f"advsig:{tiny_kit_dir}"
    kit = Kit.from_pretrained(tiny_kit_dir)
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 80)]
    msgs = [_message(8, 1), _message(8, 2)]
    signed = method.embed(images, messages=msgs)
    for img, s, m in zip(images, signed, msgs):
        assert s.shape == img.shape
        assert torch.equal(s, quantize(s))  # rounded to 8 bits, as a saved file
        assert torch.allclose(s, quantize(kit.sign(img, code=bits_to_hex(m))))
    assert not torch.equal(signed[0], method.embed(images[:1], messages=[1 - msgs[0]])[0])
    det = method.detect(signed)
    logits = kit.logits(signed)
    np.testing.assert_allclose(det.scores, logits[:, 0].numpy(), rtol=1e-6)
    assert torch.equal(det.bits, (logits[:, 1:] > 0).float())
    assert method.threshold(1e-3) == kit.threshold(1e-3)


def test_dwtdct_decodes_its_message_on_a_real_photo(photo):
    method = create_method("dwtDct")
    msg = _message(32, 0)
    (marked,) = method.embed([photo], messages=[msg])
    assert marked.shape == photo.shape and torch.equal(marked, quantize(marked))
    det = method.detect([marked, photo], messages=[msg, msg])
    # The package's own rounding costs dwtDct a bit now and then, even unattacked.
    assert det.scores[0] >= 30 and det.scores[0] == (det.bits[0] == msg).sum()
    t = method.threshold(1e-3)
    assert det.scores[1] <= t < det.scores[0]  # the clean photo is not flagged
    assert 20 < t < 32  # P(Binomial(32, 1/2) > t) <= 1e-3 needs most bits right


def test_same_embedding_as_the_package_wrapper(photo):
    """Calling the embedder classes directly (no 256x256 guard) changes nothing else."""
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    msg = _message(32, 3)
    bgr = np.ascontiguousarray(to_uint8(photo)[:, :, ::-1])
    for name in ("dwtDct", "dwtDctSvd"):
        enc = WatermarkEncoder()
        enc.set_watermark("bits", [int(b) for b in msg])
        expected = enc.encode(bgr, name)[:, :, ::-1]
        (ours,) = InvisibleWatermarkMethod(name).embed([photo], messages=[msg])
        assert np.array_equal(to_uint8(ours), expected), name
        decoded = WatermarkDecoder("bits", 32).decode(
            np.ascontiguousarray(expected[:, :, ::-1]), name
        )
        assert torch.equal(
            InvisibleWatermarkMethod(name).decode([ours])[0], torch.tensor(decoded).float()
        )


def test_small_images_are_accepted():
    """Crops below 256x256 (which the package's wrappers refuse) embed and decode."""
    method = create_method("dwtDctSvd")
    img = quantize(_center_crop(embedded_image("coffee"), 128))
    (marked,) = method.embed([img], messages=[_message(32, 4)])
    assert method.detect([marked], messages=[_message(32, 4)]).scores[0] >= 28


def test_rivagan_round_trip(photo):
    method = create_method("rivaGan")
    msg = _message(32, 5)
    (marked,) = method.embed([photo], messages=[msg])
    det = method.detect([marked], messages=[msg])
    assert det.scores[0] >= 28  # rivaGan is approximate even unattacked; chance is 16
    from advsig.bench.metrics import psnr

    assert 35 < psnr(marked, photo) < 50


def test_names_and_refusals():
    assert list_methods() == ["advsig", "dwtDct", "dwtDctSvd", "rivaGan"]
    with pytest.raises(ConfigError, match="unknown method 'lsb'"):
        create_method("lsb")
    with pytest.raises(ConfigError, match="only advsig"):
        create_method("dwtDct:base")
    with pytest.raises(ConfigError, match="32 bits"):
        create_method("dwtDct").embed([torch.rand(3, 64, 64)], messages=[torch.zeros(8)])
    with pytest.raises(ConfigError, match="known message"):
        create_method("dwtDct").detect([torch.rand(3, 64, 64)])
