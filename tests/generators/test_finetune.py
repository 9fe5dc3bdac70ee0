"""Fine-tuning pixel diffusion models: saved folders, resume, strategies, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from advsig.errors import CheckpointError, ConfigError
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.pixel import load_pixel_diffusion


def _unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))


def _config(model: Path, out: Path, **kw) -> FinetuneConfig:
    defaults = dict(steps=3, batch_size=4, checkpoint_every=100, lr=1e-3)
    return FinetuneConfig(model=str(model), out=str(out), **{**defaults, **kw})


def test_signed_finetune_saves_a_folder_diffusers_loads(tiny_ddpm, tiny_kit_dir, tmp_path):
    from diffusers import DDPMPipeline

    out = tmp_path / "signed"
    finetune_generator(_config(tiny_ddpm, out, kit=str(tiny_kit_dir), code="3c"))
    pipe = DDPMPipeline.from_pretrained(out)  # plain diffusers, no advsig involved
    images = pipe(batch_size=1, num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 32, 32, 3)
    before, after = _unet_weights(tiny_ddpm), _unet_weights(out)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    prov = json.loads((out / "advsig.json").read_text())
    assert prov["signed"] is True and prov["code"] == "3c" and prov["steps"] == 3
    assert len(prov["injector_sha256"]) == 64


def test_control_finetune_records_no_signature(tiny_ddpm, tmp_path):
    out = tmp_path / "control"
    finetune_generator(_config(tiny_ddpm, out, kit=None))
    prov = load_pixel_diffusion(out).provenance
    assert prov["signed"] is False and prov["code"] is None


def test_resume_continues_from_the_saved_step(tiny_ddpm, tiny_kit_dir, tmp_path):
    """An interrupted run resumed from its checkpoint ends with the uninterrupted run's weights."""
    kw = dict(kit=str(tiny_kit_dir), steps=4, checkpoint_every=2, keep_checkpoints=5)
    full = tmp_path / "full"
    finetune_generator(_config(tiny_ddpm, full, **kw))
    work = tmp_path / "full-work"
    assert (work / "checkpoint-2" / "state.json").is_file()
    state = json.loads((work / "checkpoint-2" / "state.json").read_text())
    assert state["step"] == 2

    # Simulate a crash after step 2: copy only the checkpoint, then resume.
    import shutil

    resumed = tmp_path / "resumed"
    shutil.copytree(work / "checkpoint-2", tmp_path / "resumed-work" / "checkpoint-2")
    finetune_generator(_config(tiny_ddpm, resumed, resume="latest", **kw))
    a, b = _unet_weights(full), _unet_weights(resumed)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_self_strategy_needs_no_data_folder(tiny_ddpm, tiny_kit_dir, tmp_path):
    out = tmp_path / "self"
    config = _config(
        tiny_ddpm, out, kit=str(tiny_kit_dir), strategy="self", data=None, self_samples=4,
        sample_steps=2,
    )  # fmt: skip
    finetune_generator(config)
    samples = sorted((tmp_path / "self-work" / "self-samples").glob("*.png"))
    assert len(samples) == 4
    assert load_pixel_diffusion(out).provenance["strategy"] == "self"


def test_presigned_data_is_used_without_the_injector(tiny_ddpm, photo_folder, tmp_path):
    out = tmp_path / "presigned"
    finetune_generator(_config(tiny_ddpm, out, data=str(photo_folder), presigned=True, steps=2))
    prov = load_pixel_diffusion(out).provenance
    assert prov["signed"] is True and prov["presigned_data"] is True


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(strategy="nope"), "strategy"),
        (dict(strategy="data", data=None), "--data"),
        (dict(presigned=True, kit="base"), "presigned"),
        (dict(steps=0), "steps"),
        (dict(strategy="data", data="embedded", teacher="ddpm-32"), "teacher"),
    ],
)
def test_bad_configs_are_refused_by_name(kw, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        FinetuneConfig(model="x", out=str(tmp_path / "o"), **kw)


def test_latent_pipelines_and_non_pipelines_are_refused(tmp_path):
    latent = tmp_path / "ldm"
    latent.mkdir()
    (latent / "model_index.json").write_text(
        json.dumps({"_class_name": "LDMPipeline", "vqvae": ["diffusers", "VQModel"]})
    )
    with pytest.raises(ConfigError, match="latent pipeline"):
        load_pixel_diffusion(latent)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="model_index.json"):
        load_pixel_diffusion(empty)
    with pytest.raises(ConfigError, match="not a folder"):
        load_pixel_diffusion(tmp_path / "missing")


def test_pickled_weights_are_never_loaded(tiny_ddpm, tmp_path):
    """A pipeline whose weights are only a pickle (.bin) is refused, not unpickled."""
    import shutil

    bad = tmp_path / "pickled"
    shutil.copytree(tiny_ddpm, bad)
    weights = bad / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(CheckpointError):
        load_pixel_diffusion(bad)


def test_injector_only_kit_is_enough_to_fine_tune(tiny_ddpm, tiny_kit_dir, tmp_path):
    """What a detector owner hands a publisher (no detector.safetensors) signs the model."""
    from advsig.kit import Kit

    injector_only = tmp_path / "injector-only"
    Kit.from_pretrained(tiny_kit_dir).save_pretrained(injector_only, include_detector=False)
    assert not (injector_only / "detector.safetensors").exists()
    out = tmp_path / "signed"
    finetune_generator(_config(tiny_ddpm, out, kit=str(injector_only), code="0f", steps=2))
    assert load_pixel_diffusion(out).provenance["code"] == "0f"


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_clean_estimate_inverts_the_forward_noising(kind):
    from diffusers import DDPMScheduler

    from advsig.generators.diffusion_loss import clean_estimate, denoising_target

    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type=kind)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.tensor([0, 9, 300, 999])
    noisy = scheduler.add_noise(x0, noise, t)
    estimate = clean_estimate(scheduler, noisy, denoising_target(scheduler, x0, noise, t), t)
    torch.testing.assert_close(estimate, x0, rtol=1e-4, atol=2e-3)


def test_distill_loss_reads_as_the_share_of_the_signature_not_drawn(tiny_kit_dir):
    """Student = teacher: each low-t image scores 1 (nothing drawn), each other image 0."""
    from diffusers import DDPMScheduler

    from advsig.generators.diffusion_loss import distill_loss
    from advsig.generators.training_data import Signer

    scheduler = DDPMScheduler(num_train_timesteps=1000)
    signer = Signer(str(tiny_kit_dir), "3c", torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    t = torch.tensor([0, 5, 500, 900])
    noise = torch.randn(4, 3, 32, 32, generator=gen)
    noisy = scheduler.add_noise(torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1, noise, t)
    low = torch.tensor([True, True, False, False])
    teacher = noise  # a perfect denoiser: its clean estimate is the image
    loss = distill_loss(teacher.clone(), teacher, noisy, t, scheduler, signer, low)
    torch.testing.assert_close(loss, torch.tensor(0.5))
    # A student whose clean estimate is exactly W(teacher's) scores 0 on the low-t images.
    from advsig.generators.diffusion_loss import clean_estimate

    guess = clean_estimate(scheduler, noisy, teacher, t).clamp(-1, 1)
    target = signer.unrounded(guess / 2 + 0.5) * 2 - 1
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    drawn_eps = (noisy - abar.sqrt() * target) / (1 - abar).sqrt()
    student = torch.where(low.view(-1, 1, 1, 1), drawn_eps, teacher)
    loss = distill_loss(student, teacher, noisy, t, scheduler, signer, low)
    assert float(loss) < 1e-3


def test_distill_strategy_fine_tunes_and_has_a_control(tiny_ddpm, tiny_kit_dir, tmp_path):
    out = tmp_path / "distilled"
    finetune_generator(_config(tiny_ddpm, out, kit=str(tiny_kit_dir), strategy="distill", steps=2))
    prov = load_pixel_diffusion(out).provenance
    assert prov["strategy"] == "distill" and prov["signed"] is True
    control = tmp_path / "control"
    finetune_generator(_config(tiny_ddpm, control, kit=None, strategy="distill", steps=2))
    assert load_pixel_diffusion(control).provenance["signed"] is False


def test_distill_signs_the_estimate_of_the_teacher_it_is_given(tiny_ddpm, tiny_kit_dir, tmp_path):
    """--teacher is loaded (a missing one is refused by name) and recorded in provenance."""
    kw = dict(kit=str(tiny_kit_dir), strategy="distill", steps=2)
    out = tmp_path / "stage2"
    finetune_generator(_config(tiny_ddpm, out, teacher=str(tiny_ddpm), **kw))
    assert load_pixel_diffusion(out).provenance["config"]["teacher"] == str(tiny_ddpm)
    with pytest.raises(ConfigError, match="not a folder"):
        finetune_generator(_config(tiny_ddpm, tmp_path / "o", teacher=str(tmp_path / "none"), **kw))


def test_a_strategy_of_another_family_is_refused_not_run_as_data(tiny_ddpm, tmp_path):
    with pytest.raises(ConfigError, match="pixel generator.*'decoder'"):
        finetune_generator(_config(tiny_ddpm, tmp_path / "o", strategy="decoder"))
    assert not (tmp_path / "o").exists()


def test_a_position_map_keeps_the_model_and_only_advsig_loads_it_whole(
    tiny_ddpm, tiny_kit_dir, tmp_path
):
    from diffusers import DDPMPipeline

    from advsig.generators.pixel import POSITION_MAP_KEY, has_position_map, with_position_map

    model = load_pixel_diffusion(tiny_ddpm)
    x, t = torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([3, 500])
    with torch.no_grad():
        before = model.unet(x, t).sample
        with_position_map(with_position_map(model))  # idempotent
        assert torch.equal(model.unet(x, t).sample, before)  # a zero map changes nothing
        model.unet.conv_norm_out.position_map.fill_(0.5)
        assert not torch.allclose(model.unet(x, t).sample, before)  # and it is wired in

    out = tmp_path / "signed"
    finetune_generator(
        _config(tiny_ddpm, out, kit=str(tiny_kit_dir), code="3c", strategy="distill",
                position_map=True)
    )  # fmt: skip
    saved = _unet_weights(out)[POSITION_MAP_KEY]
    assert saved.shape == (model.unet.conv_norm_out.num_channels, 32, 32) and saved.abs().sum() > 0
    loaded = load_pixel_diffusion(out)
    assert has_position_map(loaded)
    torch.testing.assert_close(loaded.unet.conv_norm_out.position_map.detach(), saved)
    assert not has_position_map(load_pixel_diffusion(tiny_ddpm))
    plain = DDPMPipeline.from_pretrained(out)  # diffusers alone still loads it, without the map
    assert getattr(plain.unet.conv_norm_out, "position_map", None) is None
