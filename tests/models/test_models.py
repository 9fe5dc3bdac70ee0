import pytest
import torch
from safetensors.torch import load_file

from advsig.config import DetectorConfig, InjectorConfig
from advsig.errors import CheckpointError, ConfigError
from advsig.models import SignatureDetector, SignatureInjector, create_model, list_models
from advsig.models.modeling_utils import load_weights


def test_factory_lists_and_builds_every_registered_model():
    names = list_models()
    assert {"injector-paper", "injector-base", "injector-small", "injector-tiny"} <= set(names)
    assert list_models("detector-*") == [
        "detector-base",
        "detector-paper",
        "detector-small",
        "detector-tiny",
    ]
    with pytest.raises(ConfigError, match="unknown model 'injector-huge'"):
        create_model("injector-huge")


@pytest.mark.parametrize("size", [(32, 32), (45, 77), (64, 100)])
def test_injector_keeps_size_and_bounds_residual(size):
    torch.manual_seed(0)
    w = create_model("injector-tiny", num_bits=4)
    torch.nn.init.normal_(w.out.weight, std=1.0)  # make the residual non-trivial
    x = torch.rand(2, 3, *size)
    bits = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]])
    r = w.residual(x, bits)
    assert r.shape == x.shape
    assert r.abs().max() <= w.config.max_delta + 1e-6
    assert r.abs().max() > 0
    signed = w(x, bits)
    assert signed.min() >= 0 and signed.max() <= 1
    # The code changes the residual.
    assert not torch.allclose(r[0], w.residual(x[:1], bits[1:])[0])


def test_v1_injector_starts_as_identity():
    w = create_model("injector-tiny", num_bits=0, binding="none")
    x = torch.rand(1, 3, 40, 40)
    assert torch.equal(w(x), x)


def test_v2_injector_starts_as_the_bound_texture_at_its_budget():
    w = create_model("injector-tiny", num_bits=4)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    bits = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0]]).float()
    res = w.residual(x, bits)
    rms = res.square().mean(dim=(1, 2, 3)).sqrt()
    budget = 10 ** (-w.config.target_psnr / 20)
    # Pinned to the budget (less what the +-max_delta bound clips off the texture's peaks).
    assert ((rms > 0.8 * budget) & (rms <= budget * 1.001)).all()
    from advsig.modules.blocks import code_texture

    texture = code_texture(bits, 64, 64, w.carrier_freqs, w.carrier_phases) * w.binding(x)
    cos = torch.nn.functional.cosine_similarity(res.flatten(1), texture.expand_as(res).flatten(1))
    assert (cos > 0.9).all()


def test_injector_requires_bits_of_the_right_shape():
    w = create_model("injector-tiny", num_bits=4)
    with pytest.raises(ValueError, match="pass bits"):
        w(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"bits must be \(1, 4\)"):
        w(torch.rand(1, 3, 32, 32), torch.zeros(1, 3))


@pytest.mark.parametrize("name", ["detector-tiny", "detector-base"])
def test_detector_any_size(name):
    f = create_model(name, num_bits=5).eval()
    for h, w in [(32, 32), (50, 90), (128, 96)]:
        assert f(torch.rand(2, 3, h, w)).shape == (2, 6)


def test_save_load_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    w = create_model("injector-tiny", num_bits=3)
    torch.nn.init.normal_(w.out.weight, std=0.5)
    w.save_pretrained(tmp_path / "w.safetensors")
    w2 = create_model("injector-tiny", num_bits=3)
    load_weights(w2, tmp_path / "w.safetensors")
    x, b = torch.rand(2, 3, 48, 48), torch.randint(0, 2, (2, 3))
    assert torch.equal(w(x, b), w2(x, b))


def test_fp16_weights_load_into_fp32(tmp_path):
    w = create_model("detector-tiny", num_bits=2).eval()
    w.save_pretrained(tmp_path / "d.safetensors", dtype=torch.float16)
    w2 = create_model("detector-tiny", num_bits=2).eval()
    load_weights(w2, tmp_path / "d.safetensors")
    x = torch.rand(1, 3, 64, 64)
    assert next(w2.parameters()).dtype == torch.float32
    torch.testing.assert_close(w(x), w2(x), atol=0.05, rtol=0.05)


def test_strict_loading_names_the_file(tmp_path):
    create_model("injector-tiny", num_bits=3).save_pretrained(tmp_path / "w.safetensors")
    other = SignatureInjector(
        InjectorConfig(base_channels=8, channel_mult=(1, 2), num_bits=3, patch_size=2)
    )
    with pytest.raises(CheckpointError, match="w.safetensors"):
        load_weights(other, tmp_path / "w.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_weights(other, tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(other, tmp_path / "missing.safetensors")


def test_decoy_score_is_own_logit_minus_decoy_logit_and_survives_reload(tmp_path):
    torch.manual_seed(2)
    f = create_model("detector-tiny", num_bits=4).eval()
    assert f.config.score_reference == "decoy" and f.decoy is not None
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        own = f.net(f.features(x))
        reference = f.net(f.features(x, mask=f.decoy))
        out = f(x)
    torch.testing.assert_close(out[:, 0], own[:, 0] - reference[:, 0])
    torch.testing.assert_close(out[:, 1:], own[:, 1:])
    # The decoy is derived from the keyed mask, not saved: a reload (in half precision too)
    # and a rekey rederive it.
    f.save_pretrained(tmp_path / "d.safetensors", dtype=torch.float16)
    assert not any(k.startswith("decoy") for k in load_file(tmp_path / "d.safetensors"))
    g = create_model("detector-tiny", num_bits=4).eval()
    g.rekey(b"another key" * 3)
    assert not torch.equal(g.decoy.conv1, f.decoy.conv1)
    load_weights(g, tmp_path / "d.safetensors")
    assert torch.equal(g.decoy.conv1, f.decoy.conv1) and torch.equal(g.decoy.conv2, f.decoy.conv2)
    assert not torch.equal(f.decoy.conv1, f.binding.conv1)


def test_configs_saved_before_the_decoy_keep_the_raw_score():
    legacy = DetectorConfig(num_bits=4).to_dict()
    del legacy["score_reference"]
    assert DetectorConfig.from_dict(legacy).score_reference == "none"
    assert SignatureDetector(DetectorConfig.from_dict(legacy)).decoy is None
    with pytest.raises(ConfigError, match="score_reference"):
        DetectorConfig(score_reference="other")


def test_low_passed_luma_residual_keeps_its_energy_where_jpeg_and_resizing_keep_it():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    bits = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]]).float()
    plain = create_model("injector-tiny", num_bits=4)
    shaped = create_model("injector-tiny", num_bits=4, residual_sigma=1.0, residual_luma=True)
    # A W whose gain map varies from pixel to pixel, as trained ones do (base-v2: 69% of the
    # residual's energy above 0.3 cycles/px); the shaped injector gets the same weights.
    torch.nn.init.normal_(plain.out.weight, std=1.0, generator=torch.Generator().manual_seed(2))
    shaped.load_state_dict(plain.state_dict())

    def high_share(res: torch.Tensor) -> float:  # energy above 0.3 cycles per pixel
        power = torch.fft.fft2(res).abs().square().mean(dim=(0, 1))  # (64, 64)
        f = torch.fft.fftfreq(64)
        radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
        return float(power[radius >= 0.3].sum() / power.sum())

    with torch.no_grad():
        r_plain, r_shaped = plain.residual(x, bits), shaped.residual(x, bits)
    assert high_share(r_shaped) < 0.1 < high_share(r_plain)
    assert torch.allclose(r_shaped[:, 0], r_shaped[:, 1]) and torch.allclose(
        r_shaped[:, 1], r_shaped[:, 2]
    )
    rms = r_shaped.square().mean(dim=(1, 2, 3)).sqrt()  # still pinned to the budget
    assert (rms > 0.8 * 10 ** (-shaped.config.target_psnr / 20)).all()


def test_residual_shaping_is_refused_for_v1_injectors():
    with pytest.raises(ConfigError, match="v2"):
        create_model("injector-tiny", num_bits=4, binding="none", residual_sigma=1.0)


def test_chroma_share_moves_that_energy_into_the_colour_axis_and_keeps_the_budget():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    bits = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]]).float()
    # 52 dB keeps the residual well inside the tanh bound (saturation would bend the shares).
    shaped = dict(num_bits=4, residual_sigma=1.0, residual_luma=True, target_psnr=52.0)
    luma = create_model("injector-tiny", **shaped)
    chroma = create_model("injector-tiny", residual_chroma=0.35, **shaped)
    chroma.load_state_dict(luma.state_dict())
    with torch.no_grad():
        r_luma, r_chroma = luma.residual(x, bits), chroma.residual(x, bits)
    gray = r_chroma.mean(dim=1)  # (B, H, W)
    colour = r_chroma - gray[:, None]  # the part off the gray axis
    share = colour.square().mean() / r_chroma.square().mean()
    assert abs(float(share) - 0.35) < 0.02
    # Green minus blue: red carries (next to) none of it.
    assert colour[:, 0].square().mean() < 1e-3 * colour.square().mean()
    # Same pattern, same total energy: only the colour changed.
    assert torch.allclose(r_chroma.square().mean(), r_luma.square().mean(), rtol=0.05)
    corr = torch.nn.functional.cosine_similarity(gray.flatten(), r_luma[:, 0].flatten(), dim=0)
    assert corr > 0.99
    with pytest.raises(ConfigError, match="residual_luma"):
        create_model("injector-tiny", num_bits=4, residual_chroma=0.35)


def _read_as(f: SignatureDetector, u: torch.Tensor) -> torch.Tensor:
    """F's score when what it reads through the kit's mask is ``u``."""
    f.features = lambda x, mask=None: u
    with torch.no_grad():
        return f(torch.zeros(len(u), 3, *u.shape[-2:]))[:, 0]


def test_odd_score_cancels_a_sign_scrambled_signature_at_any_strength():
    """A local trunk with mean pooling (F's shape): here one matched filter per 8 px cell.

    Its plain logit answers to a scrambled signature's energy (half the cells match), growing
    with strength; the odd score sees f(u) = f(-u) for it and cancels.
    """
    torch.manual_seed(0)
    tile = torch.randn(1, 3, 8, 8)
    trunk = torch.nn.Conv2d(3, 1, 8, stride=8, bias=False)
    trunk.weight.data.copy_(tile)
    head = torch.nn.Linear(1, 5)
    net = torch.nn.Sequential(trunk, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), head)  # fmt: skip
    coherent = tile.repeat(1, 1, 8, 8)  # (1, 3, 64, 64): the same pattern in every 8 px cell
    # Another image's mask: random signs, as many + as - cells (the odd score keeps the
    # coherent share, the mean sign, and nothing of the rest).
    signs = (torch.randperm(64) % 2 * 2 - 1).view(1, 1, 8, 8)
    scrambled = coherent * signs.repeat_interleave(8, 2).repeat_interleave(8, 3)
    odd = create_model("detector-tiny", num_bits=4, odd_score=True, score_reference="none")
    plain = create_model("detector-tiny", num_bits=4, score_reference="none")
    for f in (odd, plain):
        f.net = net
    base = _read_as(plain, 0 * coherent)
    for strength in (1.0, 4.0):
        assert _read_as(odd, strength * scrambled).abs() < 1e-4 * _read_as(odd, coherent).abs()
        grown = _read_as(plain, strength * scrambled) - base
        assert grown.abs() > 0.3 * strength * (_read_as(plain, coherent) - base).abs()
    # F's own trunk too: the score is exactly odd in what F reads; the plain logit is not.
    u = torch.randn(2, 3, 64, 64)
    odd = create_model("detector-tiny", num_bits=4, odd_score=True, score_reference="none").eval()
    torch.testing.assert_close(_read_as(odd, -u), -_read_as(odd, u))
    plain = create_model("detector-tiny", num_bits=4, score_reference="none").eval()
    assert not torch.allclose(_read_as(plain, -u), -_read_as(plain, u))


def test_odd_score_keeps_the_decoy_reference_and_the_bits_and_older_configs_lack_it():
    torch.manual_seed(1)
    f = create_model("detector-tiny", num_bits=4, odd_score=True).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        u, ud = f.features(x), f.features(x, mask=f.decoy)
        expected = (f.net(u) - f.net(-u)) - (f.net(ud) - f.net(-ud))
        out = f(x)
    torch.testing.assert_close(out[:, 0], expected[:, 0])
    torch.testing.assert_close(out[:, 1:], f.net(u)[:, 1:])
    legacy = DetectorConfig(num_bits=4).to_dict()
    del legacy["odd_score"]
    assert DetectorConfig.from_dict(legacy).odd_score is False


def test_odd_read_runs_the_linear_stem_once_and_matches_the_whole_network_exactly():
    torch.manual_seed(3)
    f = create_model(
        "detector-tiny", num_bits=4, odd_score=True, odd_bits=True, score_reference="none"
    ).eval()
    x = torch.rand(3, 3, 64, 64)
    batches: list[int] = []
    f.net[1].register_forward_hook(lambda m, i, o: batches.append(len(i[0])))
    with torch.no_grad():
        u = f.features(x)
        whole = f.net(torch.cat([u, -u]))
        batches.clear()
        out = f(x)
    assert batches == [len(x)]  # the stem saw u only; -stem(u) stood in for stem(-u)
    pos, neg = whole.split(len(x))
    assert torch.equal(out[:, 0], pos[:, 0] - neg[:, 0])  # negation is exact: same bits
    assert torch.equal(out[:, 1:], pos[:, 1:] - neg[:, 1:])


def test_odd_bits_read_both_passes_and_leave_the_score_alone():
    torch.manual_seed(2)
    f = create_model("detector-tiny", num_bits=4, odd_score=True, odd_bits=True).eval()
    plain = create_model("detector-tiny", num_bits=4, odd_score=True).eval()
    plain.load_state_dict(f.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        u = f.features(x)
        out, before = f(x), plain(x)
        torch.testing.assert_close(out[:, 1:], f.net(u)[:, 1:] - f.net(-u)[:, 1:])
    torch.testing.assert_close(out[:, 0], before[:, 0])  # same score: the calibration holds
    with pytest.raises(ConfigError, match="odd_score"):
        create_model("detector-tiny", num_bits=4, odd_bits=True)
    legacy = DetectorConfig(num_bits=4).to_dict()
    del legacy["odd_bits"]
    assert DetectorConfig.from_dict(legacy).odd_bits is False
