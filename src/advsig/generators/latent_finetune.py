"""Fine-tune a latent diffusion model so that everything it samples carries the signature.

Three recipes (``FinetuneConfig.strategy``):

- ``decoder``: only the autoencoder's decoder D is trained, so that D'(z) = W(D(z)) for the
  latents z the model meets (encoded training crops, or the denoiser's own samples when no data
  is given); the frozen original D gives the target, rounded to 8 bits as a saved image would be.
  Every latent the unchanged denoiser produces then decodes to a signed image. Fast (no
  diffusion loss, no sampling during training) and the result is still a plain pipeline folder.
- ``data`` (the paper's recipe): the denoiser is trained on the latents E(W(x)) of signed crops.
  This only works if the signature survives the encoder round trip D(E(W(x))); it is measured
  before training (``encoder_round_trip`` in ``advsig.json``) when the kit holds a detector.
  With a VAE bottleneck the ~2/255 residual is mostly averaged or quantized away, so the
  denoiser cannot learn what its latents do not hold: prefer ``decoder``.
- ``self``: as ``data``, on the model's own signed samples (no data needed).

A control run (``kit=None``) trains identically without the signature. Same conventions as
:func:`advsig.generators.finetune.finetune_pixel`: Accelerate, EMA (the saved weights), safetensors
checkpoints in ``{out}-work``, ``resume="latest"``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from advsig.errors import ConfigError
from advsig.generators.base import FAMILY_STRATEGIES
from advsig.generators.finetune import (
    FinetuneConfig,
    _ImageSet,
    _load_whole,
    _Signer,
    _targets,
    _timesteps,
    training_crops,
)
from advsig.generators.latent import (
    LatentDiffusion,
    decode_latents,
    decoder_parameters,
    encode_latents,
    load_latent_diffusion,
    save_latent_diffusion,
)
from advsig.generators.sampling import generate_to_folder
from advsig.models.modeling_utils import load_weights
from advsig.training.checkpoint import (
    finish_checkpoint,
    load_checkpoint,
    resolve_resume,
    write_process_rng,
)

logger = logging.getLogger(__name__)

# Below this share of round-tripped signed images flagged, ``data`` / ``self`` are called futile.
SURVIVAL_WARNING = 0.9


def _round8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


class _Decode(nn.Module):
    """The VAE seen as its decoder, so Accelerate wraps the call that is trained (DDP-safe)."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return decode_latents(self.vae, latents, clamp=False)


class _LatentSet:
    """Fixed latents drawn at random: the denoiser's own samples, for ``decoder`` without data."""

    def __init__(self, latents: torch.Tensor) -> None:
        self.latents = latents

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        return self.latents[torch.randint(len(self.latents), (batch_size,), generator=generator)]


def _own_latents(model: LatentDiffusion, path: Path, config: FinetuneConfig) -> torch.Tensor:
    """The model's DDIM latents, cached in ``{out}-work`` (safetensors) so a resume reuses them."""
    if path.is_file():
        return load_file(str(path))["latents"]
    latents = model.sample_latents(
        list(range(config.self_samples)), seed=config.seed + 7, steps=config.sample_steps
    )  # (N, c, l, l)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({"latents": latents.contiguous()}, str(tmp))
    tmp.replace(path)
    return latents


@torch.no_grad()
def round_trip_survival(
    kit, vae: nn.Module, images: torch.Tensor, *, code: str | None, signer: Callable
) -> dict:
    """Is the signature still readable after the autoencoder? Flag statistics of W(x) and D(E(W(x))).

    ``images`` float (N, 3, s, s) in [0, 1]; both sets are rounded to 8 bits as saved images would
    be. What the ``data`` / ``self`` recipes can at best teach the denoiser is the second set.
    """
    from advsig.generators.evaluate import flag_statistics

    signed = signer(images)  # (N, 3, s, s)
    device = next(vae.parameters()).device
    trip = torch.cat([
        _round8(decode_latents(vae, encode_latents(vae, signed[k : k + 32].to(device)))).cpu()
        for k in range(0, len(signed), 32)
    ])  # fmt: skip
    clean = torch.cat([
        _round8(decode_latents(vae, encode_latents(vae, images[k : k + 32].to(device)))).cpu()
        for k in range(0, len(images), 32)
    ])  # fmt: skip
    return {
        "signed": flag_statistics(kit, signed.cpu(), code=code),
        "signed_after_autoencoder": flag_statistics(kit, trip, code=code),
        "clean_after_autoencoder": flag_statistics(kit, clean, code=code),
    }


def _detector_loss(signer: _Signer, images: torch.Tensor) -> torch.Tensor:
    """BCE pushing the kit's (frozen) detector to read 'signed' and the code on ``images``."""
    kit = signer.kit
    if kit.detector is None:
        raise ConfigError("--detector-weight needs a full kit with a detector")
    kit.detector.requires_grad_(False)
    logits = kit.detector(images.clamp(0, 1))  # (B, 1 + num_bits)
    loss = F.binary_cross_entropy_with_logits(logits[:, 0], torch.ones_like(logits[:, 0]))
    if kit.num_bits:
        bits = signer.bits.to(logits.device).float().expand(len(images), -1)
        loss = loss + F.binary_cross_entropy_with_logits(logits[:, 1:], bits)
    return loss


def latent_checkpoint_model(original: LatentDiffusion, checkpoint: str | Path) -> LatentDiffusion:
    """``original`` with the EMA weights of a fine-tuning checkpoint (``{out}-work/checkpoint-N``).

    The checkpoint's ``state.json`` says which part was trained (VAE for ``decoder``, else UNet).
    """
    import json

    state = json.loads((Path(checkpoint) / "state.json").read_text(encoding="utf-8"))
    part = "vae" if state["config"]["strategy"] == "decoder" else "unet"
    module = copy.deepcopy(getattr(original, part))
    load_weights(module, Path(checkpoint) / "ema.safetensors")
    return _replace(original, **{part: module.eval()}, source=str(checkpoint))


def _replace(model: LatentDiffusion, **changes) -> LatentDiffusion:
    import dataclasses

    return dataclasses.replace(model, **changes)


def finetune_latent(config: FinetuneConfig, *, model: LatentDiffusion | None = None) -> Path:
    """Fine-tune ``config.model`` (or the given ``model``) and write a diffusers pipeline folder.

    Returns ``config.out``. The saved weights are the EMA's; ``out/advsig.json`` records what was
    done (strategy, trained part, code, which injector, steps, wall time and, for ``data`` /
    ``self`` with a full kit, whether the signature survives the autoencoder).

    Example:
        >>> finetune_latent(FinetuneConfig(model="ldm-32", out="runs/ldm-signed", kit="small",
        ...                                strategy="decoder", steps=400, lr=1e-3))
        PosixPath('runs/ldm-signed')
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    if config.strategy not in FAMILY_STRATEGIES["latent"]:
        raise ConfigError(
            f"a latent diffusion model is signed with --strategy "
            f"{' | '.join(FAMILY_STRATEGIES['latent'])}, not {config.strategy!r}"
        )
    out = Path(config.out)
    work = out.with_name(out.name + "-work")  # checkpoints, logs, self-samples
    torch.set_flush_denormal(True)
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(work))
    set_seed(config.seed)
    model = model if model is not None else load_latent_diffusion(config.model)
    device = accelerator.device
    for part in (model.vae, model.unet, model.text_encoder):
        if part is not None:
            part.to(device)
    size = model.sample_size
    signer = _Signer(config.kit, config.code, device) if config.kit else None
    data_gen = torch.Generator().manual_seed(config.seed * 1000 + accelerator.process_index)
    frozen_vae = copy.deepcopy(model.vae).eval().requires_grad_(False)  # the original E and D
    extra: dict = {}

    # ---- what is trained, on what
    if config.strategy == "decoder":
        if config.data:
            crops = training_crops(config.data, size, seed=config.seed)

            def latents(n: int) -> torch.Tensor:
                with torch.no_grad():
                    return encode_latents(frozen_vae, crops.sample(n, data_gen).to(device))

        else:
            own = _LatentSet(_own_latents(model, work / "self-latents.safetensors", config))

            def latents(n: int) -> torch.Tensor:
                return own.sample(n, data_gen).to(device)

        trained = model.vae.train().requires_grad_(False)
        params = decoder_parameters(trained)
        for p in params:
            p.requires_grad_(True)
        module: nn.Module = _Decode(trained)

        def compute_loss(net: nn.Module) -> torch.Tensor:
            z = latents(config.batch_size)  # (B, c, l, l)
            with torch.no_grad():
                raw = decode_latents(frozen_vae, z, clamp=False)  # (B, 3, s, s) = D(z)
                shown = raw.clamp(0, 1)
                signed = signer(shown) if signer is not None else _round8(shown)
                # W's residual on top of the raw output: out-of-range pixels are not pulled in,
                # so the loss starts at the residual's energy and fidelity to D is the rest.
                target = raw + (signed - shown)
            decoded = net(z).float()  # (B, 3, s, s)
            loss = F.mse_loss(decoded, target.float())
            if config.detector_weight:
                loss = loss + config.detector_weight * _detector_loss(signer, decoded)
            return loss

    else:
        if config.strategy == "self":
            folder = work / "self-samples"
            if accelerator.is_main_process:
                generate_to_folder(
                    model, folder, config.self_samples, steps=config.sample_steps,
                    seed=config.seed + 7, progress=True,
                )  # fmt: skip
            accelerator.wait_for_everyone()
            source = _ImageSet(_load_whole(folder, size))
        elif config.presigned:
            source = _ImageSet(_load_whole(Path(config.data), size))
        else:
            source = training_crops(config.data, size, seed=config.seed)
        if signer is not None and accelerator.is_main_process:
            extra["encoder_round_trip"] = _survival(signer, frozen_vae, source, config)
        trained = model.unet.train()
        params = list(trained.parameters())
        module = trained
        scheduler = model.scheduler
        num_train_t = int(scheduler.config.num_train_timesteps)
        cond = model.prompt_embeddings(config.batch_size)  # (B, L, D) or None
        if model.text_encoder is not None:
            model.text_encoder.requires_grad_(False)

        def compute_loss(net: nn.Module) -> torch.Tensor:
            x = source.sample(config.batch_size, data_gen).to(device)  # (B, 3, s, s)
            if signer is not None:
                x = signer(x)
            with torch.no_grad():
                z0 = encode_latents(frozen_vae, x).float()  # (B, c, l, l)
            noise = torch.randn(z0.shape, generator=data_gen).to(device)
            t = _timesteps(len(z0), num_train_t, config, data_gen)[0].to(device)  # (B,)
            noisy = scheduler.add_noise(z0, noise, t)
            if cond is None:
                pred = net(noisy, t).sample
            else:
                pred = net(noisy, t, encoder_hidden_states=cond[: len(z0)]).sample
            return F.mse_loss(pred.float(), _targets(scheduler, z0, noise, t).float())

    # ---- the loop (EMA, checkpoints, resume), shared by every strategy
    part = "vae" if config.strategy == "decoder" else "unet"
    ema_model = copy.deepcopy(trained).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    start_step, elapsed = 0, 0.0
    resume_from = resolve_resume(work, config.resume)
    if resume_from is not None:
        state = load_checkpoint(
            resume_from, models={part: trained, "ema": ema_model}, optimizer=optimizer,
            rank=accelerator.process_index, data_generator=data_gen,
        )  # fmt: skip
        start_step, elapsed = state["step"], state.get("elapsed_s", 0.0)
        extra = {**state.get("extra", {}), **extra}
        logger.info("resumed from %s at step %d", resume_from, start_step)
    # EMAModel copies only parameters that require grad; frozen ones stay the original's.
    ema = EMAModel(trained.parameters(), decay=config.ema_decay, use_ema_warmup=True)
    ema.optimization_step = start_step
    module, optimizer = accelerator.prepare(module, optimizer)
    ema.to(device)
    accelerator.init_trackers(
        "finetune",
        config={
            k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))
        },
    )
    t0 = time.time() - elapsed
    bar = tqdm(
        range(start_step, config.steps), initial=start_step, total=config.steps,
        desc=f"finetune {config.strategy} ({'signed' if config.signed else 'control'})",
        disable=not accelerator.is_main_process,
    )  # fmt: skip
    for step in bar:
        loss = compute_loss(module)
        accelerator.backward(loss)
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(trained.parameters())
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            accelerator.log({"loss": loss.item(), "ema_decay": ema.cur_decay_value or 0}, step=done)
            bar.set_postfix(loss=f"{loss.item():.3g}")
        if done % config.checkpoint_every == 0 and done < config.steps:
            ema.copy_to(ema_model.parameters())
            write_process_rng(work, done, accelerator.process_index, data_gen)
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                finish_checkpoint(
                    work, done, models={part: trained, "ema": ema_model},
                    optimizer=optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer,
                    state={"elapsed_s": time.time() - t0, "config": config.to_dict(),
                           "extra": extra},
                    keep=config.keep_checkpoints,
                )  # fmt: skip
            accelerator.wait_for_everyone()
    bar.close()
    wall = time.time() - t0
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if accelerator.is_main_process:
        ema.copy_to(ema_model.parameters())
        provenance = {
            "advsig": "latent-finetune",
            "base_model": model.source,
            "strategy": config.strategy,
            "trained": "vae.decoder" if part == "vae" else "unet",
            "signed": config.signed,
            "code": signer.code_hex if signer else None,
            "injector_sha256": signer.fingerprint() if signer else None,
            "presigned_data": config.presigned,
            "steps": config.steps,
            "wall_time_s": round(wall, 1),
            **extra,
            "config": config.to_dict(),
        }
        result = _replace(model, **{part: ema_model})
        if part == "vae":  # the frozen original was used for targets; save the fine-tuned one
            result.vae.requires_grad_(False)
        save_latent_diffusion(result, out, provenance=provenance)
        logger.info("fine-tuned pipeline written to %s (%.0f s)", out, wall)
    accelerator.wait_for_everyone()
    return out


def _survival(signer: _Signer, vae: nn.Module, source, config: FinetuneConfig) -> dict:
    """Round-trip survival on 64 training images, or why it was not measured."""
    kit = signer.kit
    if kit.detector is None or kit.calibration is None:
        return {"measured": False, "why": "injector-only kit: no detector to read the signature"}
    images = source.sample(64, torch.Generator().manual_seed(config.seed + 99))
    stats = round_trip_survival(kit, vae, images, code=signer.code_hex, signer=signer)
    rate = stats["signed_after_autoencoder"]["flag_rate_1e-3"]
    stats["measured"] = True
    stats["survives"] = rate >= SURVIVAL_WARNING
    if not stats["survives"]:
        logger.warning(
            "the signature does not survive the autoencoder: %.0f%% of D(E(W(x))) flagged "
            "(W(x): %.0f%%). Its ~2/255 residual is removed by the VAE bottleneck, so the "
            "denoiser cannot learn it from latents; strategy 'decoder' signs this model",
            100 * rate, 100 * stats["signed"]["flag_rate_1e-3"],
        )  # fmt: skip
    return stats
