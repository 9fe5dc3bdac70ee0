"""Fine-tune a latent diffusion model so that everything it samples carries the signature.

Four recipes (``FinetuneConfig.strategy``):

- ``decoder``: only the autoencoder's decoder D is trained, so that D'(z) = W(D(z)) for the
  latents z the model meets (encoded training crops, or the denoiser's own samples when no data
  is given); the frozen original D gives the target, rounded to 8 bits as a saved image would be.
  Every latent the unchanged denoiser produces then decodes to a signed image. Fast (no
  diffusion loss, no sampling during training) and the result is still a plain pipeline folder.
  With ``position_map`` the decoder stays frozen and a
  :class:`~advsig.generators.position_map.SignatureHead` on it learns instead: what signs with
  the injector alone (BENCHMARKS.md, stop 35); such a model loads whole only through advsig.
- ``data`` (the paper's recipe): the denoiser is trained on the latents E(W(x)) of signed crops.
  This only works if the signature survives the encoder round trip D(E(W(x))); it is measured
  before training (``encoder_round_trip`` in ``advsig.json``) when the kit holds a detector.
  With a VAE bottleneck the ~2/255 residual is mostly averaged or quantized away, so the
  denoiser cannot learn what its latents do not hold: prefer ``decoder``.
- ``self``: as ``data``, on the model's own signed samples (no data needed).
- ``autoencoder``: the decoder is trained on crops through the frozen encoder, D'(E(x)) = x (or
  W(x) with a kit): the autoencoder's own objective. Without a kit it is the attacker who knows
  that a ``decoder``-signed model carries its signature in the decoder and retrains it on clean
  images (``advsig eval-generator --attack finetune --attack-strategy autoencoder``); the
  ``decoder`` control cannot play that part, since it distils the model's own decoder.

A control run (``kit=None``) trains identically without the signature. The loop (EMA, the
saved weights; checkpoints in ``{out}-work``; ``resume="latest"``) is the shared one of
:func:`advsig.generators.finetune.finetune_generator`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from advsig.errors import ConfigError
from advsig.generators.diffusion_loss import denoising_target, sample_timesteps
from advsig.generators.latent import (
    LatentDiffusion,
    decode_latents,
    decoder_parameters,
    encode_latents,
    head_shape,
    save_latent_diffusion,
    saved_head,
    with_signature_head,
)
from advsig.generators.position_map import param_groups
from advsig.generators.training_data import Signer, image_source, round8, training_crops
from advsig.models.modeling_utils import load_weights

logger = logging.getLogger(__name__)

# Below this share of round-tripped signed images flagged, ``data`` / ``self`` are called futile.
SURVIVAL_WARNING = 0.9


class _Decode(nn.Module):
    """The VAE seen as its decoder, so Accelerate wraps the call that is trained (DDP-safe)."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return decode_latents(self.vae, latents, clamp=False)


def _own_latents(model: LatentDiffusion, path: Path, config) -> torch.Tensor:
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
    """Is the signature still readable after the autoencoder? :class:`FlagStatistics` of W(x),
    D(E(W(x))) and D(E(x)).

    ``images`` float (N, 3, s, s) in [0, 1]; both sets are rounded to 8 bits as saved images would
    be. What the ``data`` / ``self`` recipes can at best teach the denoiser is the second set.
    """
    from advsig.generators.evaluate import flag_statistics

    signed = signer(images)  # (N, 3, s, s)
    device = next(vae.parameters()).device
    trip = torch.cat([
        round8(decode_latents(vae, encode_latents(vae, signed[k : k + 32].to(device)))).cpu()
        for k in range(0, len(signed), 32)
    ])  # fmt: skip
    clean = torch.cat([
        round8(decode_latents(vae, encode_latents(vae, images[k : k + 32].to(device)))).cpu()
        for k in range(0, len(images), 32)
    ])  # fmt: skip
    return {
        "signed": flag_statistics(kit, signed.cpu(), code=code),
        "signed_after_autoencoder": flag_statistics(kit, trip, code=code),
        "clean_after_autoencoder": flag_statistics(kit, clean, code=code),
    }  # each a FlagStatistics


def _detector_loss(signer: Signer, images: torch.Tensor) -> torch.Tensor:
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


DECODER_STRATEGIES = ("decoder", "autoencoder")  # the recipes that train the VAE's decoder


def latent_checkpoint_model(original: LatentDiffusion, checkpoint: str | Path) -> LatentDiffusion:
    """``original`` with the EMA weights of a fine-tuning checkpoint (``{out}-work/checkpoint-N``).

    The checkpoint's ``state.json`` says which part was trained (VAE for ``decoder``, else UNet).
    """
    state = json.loads((Path(checkpoint) / "state.json").read_text(encoding="utf-8"))
    part = "vae" if state["config"]["strategy"] in DECODER_STRATEGIES else "unet"
    module = copy.deepcopy(getattr(original, part))
    weights = Path(checkpoint) / "ema.safetensors"
    if part == "vae":
        shape = head_shape(saved_head(weights))
        if shape is not None:  # trained with --position-map
            with_signature_head(module, **shape)
    load_weights(module, weights)
    return dataclasses.replace(original, **{part: module.eval()}, source=str(checkpoint))


class LatentRecipe:
    """Trains the decoder (``decoder``) or the UNet (``data``, ``self``); saves their EMA."""

    def __init__(self, model: LatentDiffusion, config, engine, signer, work: Path) -> None:
        self.model, self.config, self.signer = model, config, signer
        device = engine.device
        for part in (model.vae, model.unet, model.text_encoder):
            if part is not None:
                part.to(device)
        self.frozen_vae = copy.deepcopy(model.vae).eval().requires_grad_(False)  # original E, D
        self.part = "vae" if config.strategy in DECODER_STRATEGIES else "unet"
        if config.position_map and self.part != "vae":
            raise ConfigError(
                "--position-map for latent diffusion is a head on the VAE's decoder: use it with "
                f"strategy {' or '.join(DECODER_STRATEGIES)}, not {config.strategy!r}"
            )
        self.ema_module = self.part
        trains = "vae.decoder.signature_head" if config.position_map else "vae.decoder"
        self.extra: dict = {"trained": trains if self.part == "vae" else "unet"}
        if self.part == "vae":
            if config.strategy == "autoencoder" or config.data:
                self.crops = training_crops(config.data, model.sample_size, seed=config.seed)
                self.own = None
            else:
                self.own = _own_latents(model, work / "self-latents.safetensors", config)
            trained = model.vae.train().requires_grad_(False)
            if config.position_map:  # the head alone learns; the decoder stays as it was
                with_signature_head(trained, model.sample_size)
                params = list(trained.decoder.signature_head.parameters())
            else:
                params = decoder_parameters(trained)
            for p in params:
                p.requires_grad_(True)
            self.forward: nn.Module = _Decode(trained)
            groups = param_groups(trained, config.lr)  # the head's map learns faster
        else:
            self.source = image_source(model, config, engine, work)
            if signer is not None and engine.is_main_process:
                self.extra["encoder_round_trip"] = _survival(
                    signer, self.frozen_vae, self.source, config
                )
            trained = model.unet.train()
            params = list(trained.parameters())
            groups = [{"params": params}]
            self.forward = trained
            self.cond = model.prompt_embeddings(config.batch_size)  # (B, L, D) or None
            if model.text_encoder is not None:
                model.text_encoder.requires_grad_(False)
        self.params = params
        self.modules = {self.part: trained}
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
        self.optimizer = torch.optim.AdamW(
            [g for g in groups if g["params"]], lr=config.lr, weight_decay=0.0
        )

    def prepare(self, engine) -> None:
        self.net, self.optimizer = engine.accelerator.prepare(self.forward, self.optimizer)

    def _latents(self, n: int, engine) -> torch.Tensor:
        if self.own is not None:  # the denoiser's own latents
            idx = torch.randint(len(self.own), (n,), generator=engine.data_gen)
            return self.own[idx].to(engine.device)
        with torch.no_grad():
            crops = self.crops.sample(n, engine.data_gen).to(engine.device)
            return encode_latents(self.frozen_vae, crops)

    def _decoder_loss(self, engine) -> torch.Tensor:
        config, signer = self.config, self.signer
        if config.strategy == "autoencoder":  # reconstruct the crops themselves (or W of them)
            with torch.no_grad():
                crops = self.crops.sample(config.batch_size, engine.data_gen).to(engine.device)
                z = encode_latents(self.frozen_vae, crops)  # (B, c, l, l)
                target = signer(crops) if signer is not None else crops
        else:
            z = self._latents(config.batch_size, engine)  # (B, c, l, l)
            with torch.no_grad():
                raw = decode_latents(self.frozen_vae, z, clamp=False)  # (B, 3, s, s) = D(z)
                shown = raw.clamp(0, 1)
                signed = signer(shown) if signer is not None else round8(shown)
                # W's residual on top of the raw output: out-of-range pixels are not pulled
                # in, so the loss starts at the residual's energy and fidelity to D is the rest.
                target = raw + (signed - shown)
        decoded = self.net(z).float()  # (B, 3, s, s)
        loss = F.mse_loss(decoded, target.float())
        if config.detector_weight:
            loss = loss + config.detector_weight * _detector_loss(signer, decoded)
        return loss

    def _denoiser_loss(self, engine) -> torch.Tensor:
        config, gen, device = self.config, engine.data_gen, engine.device
        scheduler = self.model.scheduler
        x = self.source.sample(config.batch_size, gen).to(device)  # (B, 3, s, s)
        if self.signer is not None:
            x = self.signer(x)
        with torch.no_grad():
            z0 = encode_latents(self.frozen_vae, x).float()  # (B, c, l, l)
        noise = torch.randn(z0.shape, generator=gen).to(device)
        t = sample_timesteps(
            len(z0), int(scheduler.config.num_train_timesteps),
            low_fraction=config.low_t_fraction, low_max=config.low_t_max, gen=gen,
        )[0].to(device)  # fmt: skip
        noisy = scheduler.add_noise(z0, noise, t)
        if self.cond is None:
            pred = self.net(noisy, t).sample
        else:
            pred = self.net(noisy, t, encoder_hidden_states=self.cond[: len(z0)]).sample
        return F.mse_loss(pred.float(), denoising_target(scheduler, z0, noise, t).float())

    def step(self, engine, step: int, *, log: bool) -> dict[str, float]:
        if self.part == "vae":
            loss = self._decoder_loss(engine)
        else:
            loss = self._denoiser_loss(engine)
        engine.update(loss, self.optimizer, self.params)
        return {"loss": loss.item()} if log else {}

    def save(self, ema: nn.Module, out: Path, provenance: dict) -> None:
        result = dataclasses.replace(self.model, **{self.part: ema})
        if self.part == "vae":  # the frozen original gave the targets; save the fine-tuned one
            result.vae.requires_grad_(False)
        save_latent_diffusion(result, out, provenance=provenance)


def _survival(signer: Signer, vae: nn.Module, source, config) -> dict:
    """Round-trip survival on 64 training images, or why it was not measured."""
    kit = signer.kit
    if kit.detector is None or kit.calibration is None:
        return {"measured": False, "why": "injector-only kit: no detector to read the signature"}
    images = source.sample(64, torch.Generator().manual_seed(config.seed + 99))
    sets = round_trip_survival(kit, vae, images, code=signer.code_hex, signer=signer)
    rate = sets["signed_after_autoencoder"].flag_rate_1e3
    stats: dict = {name: s.to_json_dict() for name, s in sets.items()}  # for advsig.json
    stats["measured"] = True
    stats["survives"] = rate >= SURVIVAL_WARNING
    if not stats["survives"]:
        logger.warning(
            "the signature does not survive the autoencoder: %.0f%% of D(E(W(x))) flagged "
            "(W(x): %.0f%%). Its ~2/255 residual is removed by the VAE bottleneck, so the "
            "denoiser cannot learn it from latents; strategy 'decoder' signs this model",
            100 * rate, 100 * sets["signed"].flag_rate_1e3,
        )  # fmt: skip
    return stats
