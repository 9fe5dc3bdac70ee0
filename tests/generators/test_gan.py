"""GAN generators: folders, loading, deterministic sampling, and the distill / data strategies."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from advsig.errors import CheckpointError, ConfigError
from advsig.generators.base import generator_family, load_generator
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.gan import (
    GanModel,
    build_module,
    load_gan,
    new_stylegan,
    save_gan,
    with_position_map,
    with_signature_head,
)
from advsig.kit import Kit


@pytest.fixture(scope="module")
def tiny_gan() -> GanModel:
    from advsig.generators.families import get_family

    return get_family("gan").new_toy(seed=0)


@pytest.fixture(scope="module")
def tiny_gan_dir(tmp_path_factory, tiny_gan) -> Path:
    return save_gan(tiny_gan, tmp_path_factory.mktemp("gan") / "original")


def _config(model: Path, out: Path, **kw) -> FinetuneConfig:
    defaults = dict(strategy="distill", steps=3, batch_size=4, checkpoint_every=100, lr=1e-3)
    return FinetuneConfig(model=str(model), out=str(out), **{**defaults, **kw})


def _weights(folder: Path, name: str = "generator") -> dict[str, torch.Tensor]:
    return load_file(str(folder / f"{name}.safetensors"))


def test_saved_folder_loads_back_with_the_same_samples(tiny_gan, tiny_gan_dir):
    assert generator_family(tiny_gan_dir) == "gan"
    spec = json.loads((tiny_gan_dir / "generator.json").read_text())
    assert spec["factory"] == "advsig.generators.stylegan:stylegan2_tiny"
    assert spec["sample_size"] == 32 and spec["discriminator"] is not None
    expected = tiny_gan.sample(range(4), seed=3)
    for loaded in (load_generator(tiny_gan_dir), load_gan(tiny_gan_dir)):
        assert loaded.family == "gan" and loaded.discriminator is None  # not needed to sample
        torch.testing.assert_close(loaded.sample(range(4), seed=3), expected)
    assert load_gan(tiny_gan_dir, with_discriminator=True).discriminator is not None


def test_samples_are_fixed_by_seed_and_index_whatever_the_batching(tiny_gan):
    a = tiny_gan.sample(list(range(6)), seed=1, batch_size=6)
    b = tiny_gan.sample(list(range(6)), seed=1, batch_size=4)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(tiny_gan.sample([4], seed=1)[0], a[4], rtol=1e-4, atol=1e-5)
    assert a.shape == (6, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(tiny_gan.sample([4], seed=2)[0], a[4])
    assert not torch.allclose(a[0], a[1])


def test_noise_inputs_change_the_image(tiny_gan):
    """Per-layer noise is drawn per sample: with it zeroed the same z gives another image."""
    with torch.no_grad():
        for layer in tiny_gan.generator.layers:
            layer.noise_strength.fill_(0.5)
        z, _, noise = tiny_gan.latents([0, 1], seed=0)
        with_noise = tiny_gan.forward(z, None, noise)
        without = tiny_gan.forward(z, None, [torch.zeros_like(n) for n in noise])
        for layer in tiny_gan.generator.layers:
            layer.noise_strength.fill_(0.0)
    assert not torch.allclose(with_noise, without)


def test_class_conditional_sampling(tmp_path):
    model = new_stylegan(32, tiny=True, num_classes=3, seed=0)
    assert model.num_classes == 3 and model.discriminator.embed is not None
    _, classes, _ = model.latents(list(range(12)), seed=0)
    assert classes.min() >= 0 and classes.max() < 3 and len(set(classes.tolist())) > 1
    same = model.sample([0, 1], seed=0, classes=[2, 2])
    torch.testing.assert_close(model.sample([0, 1], seed=0, classes=[2, 2]), same)
    assert not torch.allclose(model.sample([0, 1], seed=0, classes=[0, 0]), same)
    loaded = load_gan(save_gan(model, tmp_path / "cond"))
    assert loaded.num_classes == 3
    torch.testing.assert_close(loaded.sample(range(3), seed=5), model.sample(range(3), seed=5))
    with pytest.raises(ConfigError, match="classes"):
        model.sample([0], classes=[3])


def test_any_module_factory_can_be_wrapped(tmp_path):
    """A generic latent -> image module (here torch's Unflatten: 48 numbers -> 3x4x4)."""
    kwargs = {"dim": 1, "unflattened_size": [3, 4, 4]}
    net = torch.nn.Unflatten(**kwargs)
    model = GanModel.from_module(
        net, factory="torch.nn:Unflatten", kwargs=kwargs, latent_dim=48, output_range="[0,1]"
    )
    assert model.sample_size == 4 and model.noise_shapes() == []
    loaded = load_generator(save_gan(model, tmp_path / "unflatten"))
    torch.testing.assert_close(loaded.sample([0, 7], seed=1), model.sample([0, 7], seed=1))
    with pytest.raises(ConfigError, match="import path"):
        GanModel.from_module(net, factory="not a path", latent_dim=48)


def test_a_position_map_keeps_the_generator_and_only_fits_the_built_in_stylegan(tiny_gan, tmp_path):
    mapped = with_position_map(tiny_gan)
    assert mapped.spec.kwargs["position_map"] and "position_map" not in tiny_gan.spec.kwargs
    torch.testing.assert_close(mapped.sample([0, 5], seed=2), tiny_gan.sample([0, 5], seed=2))
    assert with_position_map(mapped) is mapped
    net = torch.nn.Unflatten(1, (3, 4, 4))
    other = GanModel.from_module(
        net, factory="torch.nn:Unflatten", kwargs={"dim": 1, "unflattened_size": [3, 4, 4]},
        latent_dim=48, output_range="[0,1]",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="built-in StyleGAN"):
        with_position_map(other)


def test_a_signature_head_keeps_the_generator_is_wired_in_and_saved(tiny_gan, tmp_path):
    headed = with_signature_head(tiny_gan)
    assert headed.spec.kwargs["signature_head"] and "signature_head" not in tiny_gan.spec.kwargs
    torch.testing.assert_close(headed.sample([0, 5], seed=2), tiny_gan.sample([0, 5], seed=2))
    assert with_signature_head(headed) is headed
    with torch.no_grad():
        headed.generator.signature_head.features[-1].bias.fill_(0.5)
    moved = headed.sample([0, 5], seed=2)
    assert not torch.allclose(moved, tiny_gan.sample([0, 5], seed=2))
    loaded = load_generator(save_gan(headed, tmp_path / "headed"))
    torch.testing.assert_close(loaded.sample([0, 5], seed=2), moved)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_strict_loading_names_what_is_wrong(tiny_gan_dir, tmp_path):
    missing = _copy(tiny_gan_dir, tmp_path / "missing")
    state = _weights(missing)
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(missing / "generator.safetensors"))
    with pytest.raises(CheckpointError, match="missing") as err:
        load_gan(missing)
    assert dropped in str(err.value)

    extra = _copy(tiny_gan_dir, tmp_path / "extra")
    state = _weights(extra)
    state["surprise.weight"] = torch.zeros(2)
    save_file(state, str(extra / "generator.safetensors"))
    with pytest.raises(CheckpointError, match="surprise.weight"):
        load_gan(extra)

    for factory, message in [
        ("advsig.no_such_module:stylegan2_tiny", "no_such_module"),
        ("advsig.generators.stylegan:no_such_factory", "no_such_factory"),
        ("os:system", "refusing"),  # a folder cannot make advsig run an arbitrary function
        ("stylegan2_tiny", "import path"),
    ]:
        bad = _copy(tiny_gan_dir, tmp_path / f"bad-{len(list(tmp_path.iterdir()))}")
        spec = json.loads((bad / "generator.json").read_text())
        spec["factory"] = factory
        (bad / "generator.json").write_text(json.dumps(spec))
        with pytest.raises(CheckpointError, match=message):
            load_gan(bad)

    broken = _copy(tiny_gan_dir, tmp_path / "broken")
    (broken / "generator.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        load_gan(broken)


def _distill_error(model: GanModel, kit: Kit, teacher: GanModel, indices) -> float:
    """MSE between a model's samples and the signed, 8-bit rounded samples of ``teacher``."""
    target = (kit.sign(teacher.sample(indices, seed=9)) * 255).round() / 255
    return float((model.sample(indices, seed=9) - target).pow(2).mean())


def test_distill_moves_samples_toward_the_signed_originals(
    tiny_gan, tiny_gan_dir, tiny_v1_kit_dir, tmp_path
):
    # A v1 target: with a v2 kit's content-bound target this tiny GAN's error did not fall in
    # 40 or 120 steps (measured); v2 transfer to GANs is open (BENCHMARKS.md, issue 11).
    tiny_kit_dir = tiny_v1_kit_dir
    kit = Kit.from_pretrained(tiny_kit_dir)
    out = tmp_path / "signed"
    finetune_generator(_config(tiny_gan_dir, out, kit=str(tiny_kit_dir), code="3c", steps=40,
                         batch_size=8, lr=3e-4, ema_decay=0.0))  # fmt: skip
    signed = load_generator(out)
    indices = list(range(16))
    before = _distill_error(tiny_gan, kit, tiny_gan, indices)
    after = _distill_error(signed, kit, tiny_gan, indices)
    assert after < 0.8 * before, (before, after)
    prov = signed.provenance
    assert prov["strategy"] == "distill" and prov["signed"] is True and prov["code"] == "3c"
    assert len(prov["injector_sha256"]) == 64
    # The untouched discriminator is carried over, so a later ``data`` run starts from it.
    assert _weights(out, "discriminator").keys() == _weights(tiny_gan_dir, "discriminator").keys()


def test_distill_control_stays_with_the_original(tiny_gan, tiny_gan_dir, tiny_kit_dir, tmp_path):
    kit = Kit.from_pretrained(tiny_kit_dir)
    out = tmp_path / "control"
    finetune_generator(_config(tiny_gan_dir, out, kit=None, steps=20, batch_size=8, lr=3e-4,
                         ema_decay=0.0))  # fmt: skip
    control = load_generator(out)
    assert control.provenance["signed"] is False and control.provenance["code"] is None
    indices = list(range(16))
    to_original = float(
        (control.sample(indices, seed=9) - tiny_gan.sample(indices, seed=9)).pow(2).mean()
    )
    assert to_original < _distill_error(tiny_gan, kit, tiny_gan, indices)


def test_distill_resume_matches_an_uninterrupted_run(tiny_gan_dir, tiny_kit_dir, tmp_path):
    kw = dict(kit=str(tiny_kit_dir), steps=4, checkpoint_every=2, keep_checkpoints=5)
    finetune_generator(_config(tiny_gan_dir, tmp_path / "full", **kw))
    shutil.copytree(
        tmp_path / "full-work" / "checkpoint-2", tmp_path / "resumed-work" / "checkpoint-2"
    )
    finetune_generator(_config(tiny_gan_dir, tmp_path / "resumed", resume="latest", **kw))
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "resumed")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_data_strategy_trains_generator_and_discriminator(tiny_gan_dir, tiny_kit_dir, tmp_path):
    out = tmp_path / "data"
    finetune_generator(_config(tiny_gan_dir, out, kit=str(tiny_kit_dir), strategy="data", steps=5))
    model = load_gan(out, with_discriminator=True)
    assert model.provenance["strategy"] == "data" and model.provenance["signed"] is True
    assert model.provenance["discriminator"] == "from the model"
    for name in ("generator", "discriminator"):
        before, after = _weights(tiny_gan_dir, name), _weights(out, name)
        assert before.keys() == after.keys()
        assert any(not torch.equal(before[k], after[k]) for k in before), name


def test_data_strategy_without_a_discriminator_trains_one_from_scratch(tiny_gan, tmp_path):
    bare = GanModel(tiny_gan.generator, tiny_gan.spec, source="bare")  # no discriminator
    src = save_gan(bare, tmp_path / "bare")
    assert not (src / "discriminator.safetensors").exists()
    out = tmp_path / "data-control"
    finetune_generator(_config(src, out, kit=None, strategy="data", steps=2))
    model = load_gan(out, with_discriminator=True)
    assert model.provenance["discriminator"] == "new (built-in)" and model.discriminator is not None
    assert model.provenance["signed"] is False


def test_strategies_of_other_families_are_refused(tiny_gan_dir, tmp_path):
    with pytest.raises(ConfigError, match="distill"):
        finetune_generator(_config(tiny_gan_dir, tmp_path / "x", strategy="self", data=None))


def test_a_new_head_draws_on_the_clamped_output_and_an_old_head_loads_as_it_was(tiny_gan, tmp_path):
    """Where G overshoots [-1, 1], a residual added to the raw output is clamped away when
    sampling; a new head adds to the clamped output, so it survives. A head saved before
    (``head_on_clamped`` absent) keeps adding to the raw output."""
    headed = with_signature_head(tiny_gan)
    assert headed.spec.kwargs["head_on_clamped"] is True
    g = headed.generator
    with torch.no_grad():  # push the base far out of range, and make the head draw -0.4 everywhere
        g.output_bias.fill_(50.0)
        g.signature_head.features[-1].bias.fill_(1.0)
        g.signature_head.position_map.fill_(-0.05)  # 8 components x -0.05 = -0.4
    new = headed.sample([0, 1], seed=0)  # [0, 1] scale: (1 - 0.4) / 2 + 0.5 = 0.8
    torch.testing.assert_close(new, torch.full_like(new, 0.8))
    old_spec = dataclasses.replace(
        headed.spec, kwargs={k: v for k, v in headed.spec.kwargs.items() if k != "head_on_clamped"}
    )
    old = build_module(old_spec.factory, old_spec.kwargs)
    old.load_state_dict(g.state_dict())
    old_model = dataclasses.replace(headed, generator=old, spec=old_spec)
    assert (old_model.sample([0, 1], seed=0) == 1).all()  # the raw output minus 0.4 is still > 1
    assert with_signature_head(old_model) is old_model  # a saved head is not changed
