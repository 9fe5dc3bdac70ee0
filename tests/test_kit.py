import json

import pytest
import torch

from advsig.codes.bits import hex_to_bits, random_code
from advsig.codes.calibration import Calibration
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.errors import (
    CheckpointError,
    ConfigError,
    ImageTooSmallError,
    KitNotFoundError,
    UnsupportedImageError,
)
from advsig.kit import Kit
from advsig.kits import DEFAULT_KIT
from advsig.models.factory import create_model


def _kit(num_bits=6, seed=0) -> Kit:
    torch.manual_seed(seed)
    inj = create_model("injector-tiny", num_bits=num_bits)
    torch.nn.init.normal_(inj.out.weight, std=0.3)
    det = create_model("detector-tiny", num_bits=num_bits)
    kit = Kit(inj, det, work_size=96)
    kit.calibration = Calibration.fit(
        kit.logits([torch.rand(3, 48, 48) for _ in range(40)])[:, 0].numpy()
    )
    return kit


def test_save_load_gives_identical_sign_and_detect(tmp_path):
    kit = _kit()
    kit.save_pretrained(tmp_path / "k")
    again = Kit.from_pretrained(tmp_path / "k")
    x = torch.rand(2, 3, 64, 80)
    assert torch.equal(kit.sign(x, code="2a"), again.sign(x, code="2a"))
    assert kit.detect(x) == again.detect(x)
    assert json.loads((tmp_path / "k" / "config.json").read_text())["thresholds"]["0.001"]["score"]


def test_networks_run_channels_last_with_the_same_outputs():
    import copy

    kit = _kit()
    det = kit.detector
    assert det.net[1].weight.is_contiguous(memory_format=torch.channels_last)
    plain = copy.deepcopy(det).to(memory_format=torch.contiguous_format)
    x = torch.rand(3, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(det(x), plain(x), rtol=0, atol=1e-4)


def test_sign_keeps_structure_and_full_resolution():
    kit = _kit()
    big = torch.rand(3, 300, 410)  # larger than work_size: residual computed small, upsampled
    out = kit.sign(big, code=5)
    assert out.shape == big.shape
    diff = out - big
    assert 0 < diff.abs().max() <= kit.injector.config.max_delta + 1e-6
    batch = kit.sign([torch.rand(3, 50, 50), torch.rand(3, 70, 40)], code=1)
    assert [tuple(b.shape) for b in batch] == [(3, 50, 50), (3, 70, 40)]
    assert kit.sign(torch.rand(4, 3, 40, 40)).shape == (4, 3, 40, 40)


def test_detect_returns_named_results():
    kit = _kit()
    res = kit.detect(torch.rand(3, 3, 64, 64), fpr=1e-2)
    assert len(res) == 3
    r = res[0]
    assert 0 <= r.p_value <= 1 and r.fpr == 1e-2
    assert r.threshold == pytest.approx(kit.threshold(1e-2))
    assert r.is_signed == (r.score >= r.threshold)


def test_injector_only_kit_signs_but_cannot_detect(tmp_path):
    kit = _kit()
    kit.save_pretrained(tmp_path / "pub", include_detector=False)
    assert not (tmp_path / "pub" / "detector.safetensors").exists()
    pub = Kit.from_pretrained(tmp_path / "pub")
    x = torch.rand(1, 3, 48, 48)
    assert torch.equal(pub.sign(x, code=3), kit.sign(x, code=3))
    with pytest.raises(ConfigError, match="only the injector"):
        pub.detect(x)


def test_broken_kits_raise_named_errors(tmp_path):
    kit = _kit()
    kit.save_pretrained(tmp_path / "k")
    with pytest.raises(KitNotFoundError, match="nope"):
        Kit.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        Kit.from_pretrained(tmp_path / "empty")
    cfg_path = tmp_path / "k" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["num_bits"] = 7
    cfg["injector"]["num_bits"] = 7  # weights were saved for 6 bits
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="injector.safetensors"):
        Kit.from_pretrained(tmp_path / "k")
    cfg_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        Kit.from_pretrained(tmp_path / "k")


def test_mismatched_bit_counts_are_refused(tmp_path):
    kit = _kit(num_bits=6)
    kit.save_pretrained(tmp_path / "k")
    cfg_path = tmp_path / "k" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    other = create_model("detector-tiny", num_bits=4)
    other.save_pretrained(tmp_path / "k" / "detector.safetensors")
    cfg["detector"]["num_bits"] = 4
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="injector embeds 6 bits, detector reads 4"):
        Kit.from_pretrained(tmp_path / "k")


def test_bad_input_shapes_are_refused():
    kit = _kit()
    with pytest.raises(UnsupportedImageError, match="must be"):
        kit.sign(torch.rand(3, 32))
    with pytest.raises(ImageTooSmallError, match="at least 32"):
        kit.detect(torch.rand(1, 3, 20, 20))


def test_tiled_kit_signs_each_tile_as_the_injector_would(tmp_path):
    kit = _kit()
    kit.tile_size, kit.work_size = 48, 160
    kit.sign_precision = "fp32"  # bfloat16 (auto, where native) agrees to ~1e-3 only
    x = torch.rand(3, 96, 120)  # within work_size: tiles at rows 0, 48 and columns 0, 48, 72
    bits = torch.tensor([[0, 1, 0, 1, 1, 0]], dtype=torch.float32)
    signed = kit.sign(x, code=0b010110)
    tile = x[None, :, 48:96, 72:120]
    expected = (tile + kit.injector.residual(tile, bits)).clamp(0, 1)[0]
    torch.testing.assert_close(signed[:, 48:96, 72:120], expected)
    # Detection averages the detector over the same tiles.
    tiles = torch.stack([x[:, y : y + 48, c : c + 48] for y in (0, 48) for c in (0, 48, 72)])
    torch.testing.assert_close(kit.logits(x)[0], kit.detector(tiles).mean(dim=0))
    kit.save_pretrained(tmp_path / "k")
    assert Kit.from_pretrained(tmp_path / "k").tile_size == 48


def test_scale_search_reads_the_best_rescaling_and_round_trips(tmp_path):
    kit = _kit()
    x = torch.rand(3, 3, 80, 80)
    single = kit.logits(x)[:, 0]
    half = torch.nn.functional.interpolate(x, size=(56, 56), mode="bilinear", antialias=True)
    at_07 = kit.logits(half)[:, 0]  # what the search sees at scale 0.7
    kit.detect_scales = (0.7, 1.0)
    searched = kit.logits(x)
    assert torch.allclose(searched[:, 0], torch.maximum(single, at_07), atol=1e-5)
    # The differentiable score used by white-box attacks searches the same scales.
    assert torch.allclose(kit.score_tensor(x), searched[:, 0], atol=1e-5)
    kit.save_pretrained(tmp_path / "k")
    again = Kit.from_pretrained(tmp_path / "k")
    assert again.detect_scales == (0.7, 1.0)
    assert torch.equal(again.logits(x), searched)
    with pytest.raises(ConfigError, match="detect_scales"):
        Kit(kit.injector, kit.detector, detect_scales=(0.0,))


def test_fit_up_reads_small_images_at_the_working_size_and_round_trips(tmp_path):
    kit = _kit()  # work size 96, one scale
    small, large = torch.rand(2, 3, 60, 72), torch.rand(2, 3, 100, 100)
    up = kit.with_fit_up()
    assert up.calibration is None and kit.with_fit_up(False).calibration is kit.calibration
    fitted = torch.nn.functional.interpolate(small, size=(80, 96), mode="bilinear")
    expected = torch.maximum(kit.logits(small)[:, 0], kit.logits(fitted)[:, 0])
    assert torch.allclose(up.logits(small)[:, 0], expected, atol=1e-5)
    assert torch.equal(up.logits(large), kit.logits(large))  # at the working size: no extra read
    assert up.scale_logits(small).shape[1] == 2  # the fit-up read is the last slot
    up.calibration = kit.calibration
    again, before = _round_trip_and_drop(up, tmp_path, "fit_up")  # key new at stop 41
    assert again.fit_up and torch.equal(again.logits(small), up.logits(small))
    assert not before.fit_up
    with pytest.raises(ConfigError, match="scale_norm"):
        Kit(kit.injector, kit.detector, fit_up=True, scale_norm={96: {1.0: (0.0, 1.0)}})


def _round_trip_and_drop(kit: Kit, tmp_path, key: str) -> tuple[Kit, Kit]:
    """``kit`` saved and loaded, then loaded again from its config without ``key``, as a kit
    saved before that key existed."""
    kit.save_pretrained(tmp_path / "k")
    again = Kit.from_pretrained(tmp_path / "k")
    config = json.loads((tmp_path / "k" / "config.json").read_text())
    del config[key]
    (tmp_path / "k" / "config.json").write_text(json.dumps(config))
    return again, Kit.from_pretrained(tmp_path / "k")


def test_fit_up_finds_a_downscaled_small_signed_image_on_its_grid():
    """A 256 px crop signed by ``robust-v2``, then shrunk by a platform to 0.75 and
    recompressed: read as it is, the signature is off the kit's tile grid; fitted back up to
    the working size, it reads far above the clean crops under the same chain."""
    from advsig.attacks import create_attack

    kit = Kit.from_pretrained("robust-v2").with_fit_up(False)
    up = kit.with_fit_up()
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), 256).sample(
        3, torch.Generator().manual_seed(11)
    )
    signed = (kit.sign(clean, code=0xC0FFEE) * 255).round() / 255
    upload = create_attack("social", 0.75, 80)
    s_small = torch.stack([upload(x[None])[0] for x in signed])
    c_small = torch.stack([upload(x[None])[0] for x in clean])
    assert s_small.shape[-1] == 192
    plain, fitted = kit.logits(s_small)[:, 0], up.logits(s_small)[:, 0]
    assert (fitted > plain + 2).all(), (plain, fitted)
    assert fitted.min() > up.logits(c_small)[:, 0].max() + 2


def test_mirror_reads_take_the_better_of_the_image_and_its_mirror_and_round_trip(tmp_path):
    kit = _kit()  # work size 96, one scale
    x = torch.rand(3, 3, 60, 72)
    mirror = kit.with_mirror_reads().with_fit_up()
    assert (
        mirror.calibration is None and kit.with_mirror_reads(False).calibration is kit.calibration
    )
    reads = mirror.scale_logits(x)  # scale 1, fit-up, then both mirrored
    assert reads.shape == (3, 4, 7) and mirror.num_read_slots() == 4
    fitted = kit.with_fit_up()
    assert torch.equal(reads[:, :2], fitted.scale_logits(x))
    assert torch.equal(reads[:, 2:], fitted.scale_logits(x.flip(-1)))
    expected = torch.maximum(fitted.logits(x)[:, 0], fitted.logits(x.flip(-1))[:, 0])
    assert torch.allclose(mirror.logits(x)[:, 0], expected, atol=1e-6)
    # The winning read's bits come with its score: a mirrored image reads as its original.
    assert torch.equal(mirror.logits(x.flip(-1)), mirror.logits(x))
    mirror.calibration = kit.calibration
    again, before = _round_trip_and_drop(mirror, tmp_path, "mirror_reads")  # new at stop 42
    assert again.mirror_reads and torch.equal(again.logits(x), mirror.logits(x))
    assert not before.mirror_reads and before.fit_up
    with pytest.raises(ConfigError, match="scale_norm"):
        Kit(kit.injector, kit.detector, mirror_reads=True, scale_norm={96: {1.0: (0.0, 1.0)}})


def test_mirror_reads_find_a_mirrored_signed_image():
    """A mirrored ``robust-v2`` signature reads below clean crops (the read is on the grid
    it was signed on, which mirroring reverses); with mirror reads it reads as signed, with
    its code, and clean crops gain nothing they did not have mirrored."""
    kit = Kit.from_pretrained("robust-v2")
    mirror = kit.with_mirror_reads()
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), 256).sample(
        3, torch.Generator().manual_seed(12)
    )
    signed = (kit.sign(clean, code=0xC0FFEE) * 255).round() / 255
    flipped = signed.flip(-1)
    plain, found = kit.logits(flipped), mirror.logits(flipped)
    assert (plain[:, 0] < kit.logits(clean)[:, 0].max()).all(), plain[:, 0]
    assert torch.allclose(found, kit.logits(signed), atol=1e-4)
    assert found[:, 0].min() > kit.threshold(1e-3, size=(256, 256))
    both = torch.maximum(kit.logits(clean)[:, 0], kit.logits(clean.flip(-1))[:, 0])
    assert torch.allclose(mirror.logits(clean)[:, 0], both, atol=1e-5)


def test_scale_norm_compares_scales_as_z_scores_and_round_trips(tmp_path):
    kit = _kit()
    kit.detect_scales = (0.7, 1.0)
    x = torch.rand(4, 3, 80, 80)
    reads = kit.scale_logits(x)  # (4, 2, 1 + 6)
    assert reads.shape == (4, 2, 7) and not torch.isnan(reads).any()
    raw = kit.logits(x)
    torch.testing.assert_close(kit.combine_scales(reads, side=80), raw)  # no norm: raw maximum
    # Standardised, a scale whose clean scores run high no longer wins by default.
    kit.scale_norm = {64: {0.7: (float(reads[:, 0, 0].max()) + 1.0, 1.0), 1.0: (0.0, 1.0)}}
    z = kit.logits(x)
    torch.testing.assert_close(z[:, 0], reads[:, 1, 0])  # scale 1 wins every image
    torch.testing.assert_close(z[:, 1:], reads[:, 1, 1:])  # and its bits are the ones read
    kit.save_pretrained(tmp_path / "k")
    again = Kit.from_pretrained(tmp_path / "k")
    assert again.scale_norm == kit.scale_norm
    torch.testing.assert_close(again.logits(x), z)
    # A norm is fitted per image size, and images read the one of the largest size not above.
    kit.fit_scale_norm(kit.scale_logits(torch.rand(30, 3, 80, 80)), [80] * 30)
    assert set(kit.scale_norm) == {80} and set(kit.scale_norm[80]) == {0.7, 1.0}
    with pytest.raises(ConfigError, match="need 20"):
        kit.fit_scale_norm(reads, [80] * 4)


def test_calibrating_a_scale_searching_kit_standardises_its_scales():
    from advsig.training.trainer import calibrate, calibration_images

    kit = _kit()
    kit.detect_scales = (0.8, 1.0)
    torch.manual_seed(1)
    for param in kit.detector.parameters():  # an untrained F scores every image alike
        param.data.add_(0.1 * torch.randn_like(param))
    val = [img for _, img in embedded_images("val")]
    calibrate(kit, val, num=60, seed=0, min_size=48)
    assert kit.scale_norm is None  # off unless asked for
    calibrate(kit, val, num=60, seed=0, min_size=48, scale_norm=True)
    # One entry per calibration size: that size's clean per-scale mean and spread where it
    # detects more signed validation crops than the raw maximum, else empty (reads raw).
    clean = calibration_images(val, num=60, work_size=kit.work_size, seed=0, min_size=48)
    sizes = sorted({img.shape[-1] for img in clean})
    assert sorted(kit.scale_norm) == sizes and len(sizes) > 1
    reads = kit.scale_logits(clean)[:, :, 0]  # (60, 2)
    for size in sizes:
        norm = kit.scale_norm[size]
        assert norm == {} or set(norm) == {0.8, 1.0}
        rows = torch.tensor([img.shape[-1] == size for img in clean])
        for k, scale in enumerate(kit.detect_scales if norm else ()):
            assert norm[scale][0] == pytest.approx(float(reads[rows, k].mean()), abs=1e-4)
            assert norm[scale][1] == pytest.approx(float(reads[rows, k].std()), abs=1e-4)
    # A size that reads raw scores: the same outputs as a kit without any norm.
    kit.scale_norm = {size: {} for size in sizes}
    x = [torch.rand(3, 64, 64) for _ in range(3)]
    raw = kit.logits(x)
    kit.scale_norm = None
    torch.testing.assert_close(kit.logits(x), raw)


def test_per_size_calibration_sets_each_images_threshold():
    import numpy as np

    from advsig.codes.calibration import StratifiedCalibration

    kit = _kit()
    rng = np.random.default_rng(0)
    # Small images: heavy clean tail (high threshold); larger ones: a light one.
    kit.calibration = StratifiedCalibration.fit(
        {"32px": rng.normal(5.0, 1.0, 400), "64px": rng.normal(-5.0, 1.0, 400)}
    )
    worst = kit.threshold(1e-2)
    assert kit.threshold(1e-2, size=(40, 48)) == pytest.approx(worst)  # 40 px -> the 32 stratum
    assert kit.threshold(1e-2, size=(80, 64)) < worst - 5  # 64 px and more -> the 64 stratum
    assert kit.threshold(1e-2, size=(20, 20)) == pytest.approx(worst)  # below all: the smallest
    small, large = torch.rand(3, 40, 40), torch.rand(3, 72, 72)
    res = kit.detect([small, large], fpr=1e-2)
    assert res[0].threshold == pytest.approx(kit.threshold(1e-2, size=(40, 40)))
    assert res[1].threshold == pytest.approx(kit.threshold(1e-2, size=(72, 72)))


def test_v1_kits_load_unbound_and_unknown_formats_fail_by_name(tmp_path, caplog):
    kit = Kit.from_pretrained("base")  # shipped before signature v2 (format 1)
    assert not kit.bound and kit.injector.binding is None and kit.detector.binding is None
    assert "signature v1 kit" in caplog.text
    kit.save_pretrained(tmp_path / "resaved", include_detector=False)
    again = Kit.from_pretrained(tmp_path / "resaved")  # now format 2, still v1 signature
    x = torch.rand(1, 3, 64, 64)
    assert not again.bound and torch.equal(again.sign(x, code=5), kit.sign(x, code=5))
    cfg_path = tmp_path / "resaved" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["advsig_kit"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="format 99.*retrain"):
        Kit.from_pretrained(tmp_path / "resaved")


def test_injector_and_detector_keyed_differently_are_refused():
    injector = create_model("injector-tiny", num_bits=4)
    detector = create_model("detector-tiny", num_bits=4)
    injector.rekey(b"a" * 32)
    detector.rekey(b"b" * 32)
    with pytest.raises(ConfigError, match="keyed differently"):
        Kit(injector, detector)
    detector.rekey(b"a" * 32)
    assert Kit(injector, detector).bound


def test_mask_contrast_floor_must_match_and_older_kits_load_without_one():
    injector = create_model("injector-tiny", num_bits=4, binding_floor=0.012)
    detector = create_model("detector-tiny", num_bits=4)
    with pytest.raises(ConfigError, match="contrast floor"):
        Kit(injector, detector)
    Kit(injector, create_model("detector-tiny", num_bits=4, binding_floor=0.012))
    old = Kit.from_pretrained("base-v2-light")  # saved before the floor existed
    assert old.injector.binding.floor == 0 and old.detector.binding.floor == 0


def test_a_dense_mask_must_be_on_both_sides_and_survives_saving(tmp_path):
    injector = create_model("injector-tiny", num_bits=4, binding_dense=True)
    with pytest.raises(ConfigError, match="mask's grid"):
        Kit(injector, create_model("detector-tiny", num_bits=4))
    kit = Kit(injector, create_model("detector-tiny", num_bits=4, binding_dense=True))
    kit.save_pretrained(tmp_path / "dense")
    again = Kit.from_pretrained(tmp_path / "dense")
    assert again.injector.binding.dense and again.detector.binding.dense
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(again.sign(x, code=3), kit.sign(x, code=3))
    assert not Kit.from_pretrained("robust-v2").injector.binding.dense  # saved before it


def test_stem_eps_is_a_detector_option_that_survives_saving(tmp_path):
    """A larger epsilon in F's first GroupNorm keeps a flat image's faint read faint; it can be
    set on a trained kit (calibration dropped, as the scores change) and is saved with it."""
    kit = Kit.from_pretrained("base-v2-light")
    assert kit.detector.config.stem_eps is None  # kits saved before the option load unchanged
    changed = kit.with_detector_options(stem_eps=0.1)
    norm = next(m for m in changed.detector.net if isinstance(m, torch.nn.GroupNorm))
    assert norm.eps == 0.1 and changed.calibration is None
    flat = torch.full((1, 3, 64, 64), 0.5) + 1e-4 * torch.randn(1, 3, 64, 64)
    assert not torch.equal(kit.logits(flat), changed.logits(flat))
    changed.save_pretrained(tmp_path / "k")
    reloaded = Kit.from_pretrained(tmp_path / "k")
    assert next(m for m in reloaded.detector.net if isinstance(m, torch.nn.GroupNorm)).eps == 0.1
    with pytest.raises(ConfigError, match="retraining"):
        kit.with_detector_options(odd_score=True)
    with pytest.raises(ConfigError, match="stem_eps"):
        create_model("detector-tiny", num_bits=4, stem_eps=0.0)
    with pytest.raises(ConfigError, match="first GroupNorm"):
        create_model("detector-tiny", num_bits=4, stem_eps=0.1, norm="batch")


def test_shipped_odd_kit_flags_its_signature_and_not_a_moved_one():
    """``base-v2-odd`` (the most forgery-resistant shipped kit, stop 30) at its own FPR 1e-3
    threshold, on 256 px crops of photos it never trained on: signed crops flagged, their clean
    originals not, and another crop's exact residual added to a clean crop not either."""
    kit = Kit.from_pretrained("base-v2-odd")
    assert kit.bound and kit.detector.config.odd_score
    assert kit.detector.config.score_reference == "none"
    assert set(kit.training["calibration"]["processed"]) >= {"jpeg75", "noise0.02"}
    photos = [img for _, img in embedded_images("test")]
    clean = torch.stack(
        list(
            RandomCrops(ImagePool(photos, max_side=512), 256).sample(
                4, torch.Generator().manual_seed(5)
            )
        )
    )
    signed = (kit.sign(clean, code=0xC0FFEE) * 255).round() / 255
    moved = ((clean + (signed - clean).roll(1, 0)) * 255).round().clamp(0, 255) / 255
    results = kit.detect(list(torch.cat([signed, clean, moved])), fpr=1e-3)
    flags = [r.is_signed for r in results]
    assert flags[:4] == [True] * 4, [r.score for r in results[:4]]
    assert not any(flags[4:]), [r.score for r in results[4:]]


def test_shipped_robust_v2_kit_keeps_flat_images_clean_and_reads_its_code_after_jpeg50():
    """``robust-v2`` (stop 38) at its own FPR 1e-3 threshold. A v2 score reads a flat image as
    exactly 0, so every calibrated size must sit above 0 (its first calibration, on photos
    alone, put 256 px at -0.84 and flagged 38 of 100 flat images). Signed crops of photos it never
    saw survive JPEG 50 with their code; the same crops unsigned, compressed alike, do not fire."""
    from advsig.attacks import JPEG
    from advsig.attacks.forgery import round8
    from advsig.codes.bits import hex_to_bits

    kit = Kit.from_pretrained("robust-v2")
    assert kit.training["validation"]["by_source"][-1] == "synthetic"
    sizes = [96, 128, 192, 256, 512]
    assert min(kit.threshold(1e-3, size=(s, s)) for s in sizes) > 0
    flat = [torch.full((3, s, s), 0.4) for s in sizes] + [
        torch.linspace(0, 1, 256).expand(3, 256, 256)
    ]
    assert not any(r.is_signed for r in kit.detect(flat, fpr=1e-3))
    photos = [img for _, img in embedded_images("test")]
    gen = torch.Generator().manual_seed(7)
    clean = RandomCrops(ImagePool(photos, max_side=512), 256).sample(4, gen)
    code = "a5c3f00d"
    jpeg = JPEG(50)
    signed = jpeg(round8(kit.sign(clean, code=code)), generator=gen)
    plain = jpeg(round8(clean), generator=gen)
    results = kit.detect(list(torch.cat([signed, plain])), fpr=1e-3)
    assert [r.is_signed for r in results] == [True] * 4 + [False] * 4, [r.score for r in results]
    want = hex_to_bits(code, kit.num_bits)
    bits = (kit.logits(list(signed))[:, 1:] > 0).float()
    assert (bits == want).float().mean() >= 0.85


def test_no_shipped_v2_kit_flags_a_flat_image():
    """A v2 score reads a flat image as exactly 0, so every shipped v2 kit's FPR 1e-3
    threshold must lie above 0 at every size it judges (stop 38)."""
    from advsig.kit import shipped_kits

    flat = [torch.full((3, s, s), 0.6) for s in (32, 64, 96, 128, 192, 256)]
    for name in shipped_kits():
        kit = Kit.from_pretrained(name)
        if not kit.bound:
            continue
        scores = kit.logits(flat)[:, 0]
        assert torch.equal(scores, torch.zeros_like(scores)), (name, scores)
        assert not any(r.is_signed for r in kit.detect(flat, fpr=1e-3)), name


def test_default_kit_reads_its_bits_from_both_passes_of_its_score():
    """``odd_bits`` on the shipped default: bits from ``b(u) - b(-u)``, the score untouched, so
    the calibration is kept; on crops of photos it never saw it reads more of the code (64
    crops here: 0.935 vs 0.924; 1-2 points on every 64-crop draw tried, stop 31)."""
    kit = Kit.from_pretrained(DEFAULT_KIT)
    assert kit.detector.config.odd_bits
    one_pass = kit.with_detector_options(odd_bits=False)
    assert one_pass.calibration is kit.calibration
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), 256).sample(
        64, torch.Generator().manual_seed(0)
    )
    gen = torch.Generator().manual_seed(0)
    codes = [random_code(kit.num_bits, gen) for _ in range(4)]  # 16 crops each
    signed = torch.cat([kit.sign(b, code=c) for b, c in zip(clean.split(16), codes)])
    signed = (signed * 255).round() / 255
    both, one = kit.logits(signed), one_pass.logits(signed)
    torch.testing.assert_close(both[:, 0], one[:, 0])
    truth = torch.cat([hex_to_bits(c, kit.num_bits)[None].expand(16, -1) for c in codes])
    accuracy = {
        name: float(((logits[:, 1:] > 0).float() == truth).float().mean())
        for name, logits in (("both", both), ("one", one))
    }
    assert accuracy["both"] > accuracy["one"], accuracy


def _head_dtypes(kit: Kit, run) -> set[torch.dtype]:
    """The dtypes W's first convolution and F's outputs came out in during ``run``."""
    seen: set[torch.dtype] = set()
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
        for m in (kit.injector.head, kit.detector)
    ]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_precision_runs_the_networks_in_bfloat16_only_where_asked():
    kit = _kit()
    x = torch.rand(2, 3, 64, 80)
    kit.sign_precision, kit.detect_precision = "fp32", "fp32"
    assert _head_dtypes(kit, lambda: (kit.sign(x), kit.logits(x))) == {torch.float32}
    signed32, logits32 = kit.sign(x, code="2a"), kit.logits(x)
    kit.sign_precision = "bf16"
    assert _head_dtypes(kit, lambda: kit.sign(x)) == {torch.bfloat16}
    signed16 = kit.sign(x, code="2a")
    assert signed16.dtype == torch.float32
    assert (signed16 - signed32).abs().max() < 2e-3  # a fraction of an 8-bit level
    kit.detect_precision = "bf16"
    assert _head_dtypes(kit, lambda: kit.logits(x)) == {torch.bfloat16}
    logits16 = kit.logits(x)
    assert logits16.dtype == torch.float32
    torch.testing.assert_close(logits16, logits32, atol=0.1, rtol=0.05)
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        kit.sign_precision = "fp16"


def test_auto_precision_is_float32_where_bfloat16_is_not_native():
    from advsig.precision import native_bf16, resolve_precision

    assert resolve_precision("auto", "meta") == "fp32"
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")
    kit = Kit.from_pretrained(DEFAULT_KIT)
    assert (kit.sign_precision, kit.detect_precision) == ("auto", "fp32")
    # A bad argument is the caller's error, not a malformed kit file.
    with pytest.raises(ConfigError, match="precision must be one of"):
        Kit.from_pretrained(DEFAULT_KIT, detect_precision="fp16")
