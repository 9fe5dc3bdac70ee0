"""The pixel diffusion family's fine-tuning recipe (run by :func:`finetune_generator`).

The paper's recipe (``data``): train the model on W-signed images with its own loss, so it
learns the signature as part of the data distribution. ``self``: the publisher no longer has
the data, so the model's own samples are signed and used instead. ``distill``: at the least noisy
timesteps the model learns to output W applied to the original model's own clean estimate.
Why: a content-bound (v2) signature is a function of fine detail that noise hides, so the
denoising loss on signed data averages it out (docs/signature-v2.md, stop 20); W of the model's
own estimate is a deterministic target the model can learn. A control run (no kit) trains
identically on clean images, to separate the signature's cost from fine-tuning's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open

from advsig.generators.diffusion_loss import denoising_target, distill_loss, sample_timesteps
from advsig.generators.pixel import (
    POSITION_MAP_KEY,
    PixelDiffusion,
    load_pixel_diffusion,
    save_pixel_diffusion,
    with_position_map,
)
from advsig.generators.position_map import param_groups
from advsig.generators.training_data import image_source
from advsig.models.modeling_utils import load_weights


def checkpoint_model(original: PixelDiffusion, checkpoint: str | Path) -> PixelDiffusion:
    """``original`` with the EMA weights of a fine-tuning checkpoint (``{out}-work/checkpoint-N``)."""
    weights = Path(checkpoint) / "ema.safetensors"
    model = PixelDiffusion(copy.deepcopy(original.unet), original.scheduler, str(checkpoint),
                           original.provenance)  # fmt: skip
    with safe_open(weights, framework="pt") as f:
        if POSITION_MAP_KEY in f.keys():  # trained with --position-map
            with_position_map(model)
    load_weights(model.unet, weights)
    model.unet.eval()
    return model


class PixelRecipe:
    """Trains the UNet; the saved pipeline carries its EMA."""

    ema_module = "unet"

    def __init__(self, model: PixelDiffusion, config, engine, signer, work: Path) -> None:
        if config.position_map:  # zero map: the teacher below still computes the original
            model = with_position_map(model)
        self.model, self.config, self.signer = model, config, signer
        self.source = image_source(model, config, engine, work)
        self.teacher = None  # distill: the frozen original, whose clean estimate W signs
        if config.strategy == "distill":
            frozen = load_pixel_diffusion(config.teacher).unet if config.teacher else model.unet
            self.teacher = copy.deepcopy(frozen).eval().requires_grad_(False).to(engine.device)
        unet = model.unet.train()
        self.modules = {"unet": unet}
        groups = param_groups(unet, config.lr)  # a position map learns faster
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=0.0)
        self.extra: dict = {}

    def prepare(self, engine) -> None:
        self.net, self.optimizer = engine.accelerator.prepare(self.modules["unet"], self.optimizer)

    def step(self, engine, step: int, *, log: bool) -> dict[str, float]:
        config, gen, scheduler = self.config, engine.data_gen, self.model.scheduler
        x = self.source.sample(config.batch_size, gen).to(engine.device)  # (B, 3, s, s)
        if self.signer is not None and self.teacher is None:  # distill signs the estimate instead
            x = self.signer(x)
        x0 = x * 2 - 1
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        t, low = sample_timesteps(  # (B,), (B,) bool
            len(x0), int(scheduler.config.num_train_timesteps),
            low_fraction=config.low_t_fraction, low_max=config.low_t_max, gen=gen,
        )  # fmt: skip
        t, low = t.to(x0.device), low.to(x0.device)
        noisy = scheduler.add_noise(x0, noise, t)
        pred = self.net(noisy, t).sample
        if self.teacher is not None:
            with torch.no_grad():
                teacher_pred = self.teacher(noisy, t).sample
            loss = distill_loss(
                pred.float(), teacher_pred.float(), noisy, t, scheduler, self.signer, low
            )
        else:
            loss = F.mse_loss(pred.float(), denoising_target(scheduler, x0, noise, t).float())
        engine.update(loss, self.optimizer, self.net.parameters())
        return {"loss": loss.item()} if log else {}

    def save(self, ema: torch.nn.Module, out: Path, provenance: dict) -> None:
        result = PixelDiffusion(ema, self.model.scheduler, self.model.source)
        save_pixel_diffusion(result, out, provenance=provenance)
