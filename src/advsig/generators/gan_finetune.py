"""Fine-tune a GAN so that everything it generates carries the signature.

``distill``: the signed generator G' starts as a copy of G and learns, for the same latent z
(and class and noise inputs), to output W(G(z)) rounded to 8 bits, with a pixel MSE. No data
and no discriminator are needed, and G' stays paired with G: the same z gives the same picture,
signed. A control run (no kit) distills G(z) itself for the same steps.

``data`` (the paper's recipe): ordinary adversarial fine-tuning (non-saturating loss, lazy R1
on real images) of G against a discriminator on W-signed real crops, so the signature becomes
part of the data distribution G imitates. The discriminator is the one the folder names
(``discriminator.safetensors``), else the built-in one trained from scratch. Without a kit it is
plain GAN training: the control, an attacker's clean fine-tune, and the demo GAN's pre-training.

Both run on Accelerate with an EMA of G' (the saved generator; ``ema_decay=0`` saves the raw
weights), safetensors checkpoints in ``{out}-work`` and ``resume="latest"``, as
:func:`advsig.generators.finetune.finetune_pixel`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advsig.errors import ConfigError
from advsig.generators.base import FAMILY_STRATEGIES
from advsig.generators.finetune import (
    FinetuneConfig,
    _ImageSet,
    _load_whole,
    _Signer,
    training_crops,
)
from advsig.generators.gan import (
    DISCRIMINATOR_NAME,
    GanModel,
    build_module,
    load_gan,
)
from advsig.models.modeling_utils import load_weights
from advsig.training.checkpoint import (
    finish_checkpoint,
    load_checkpoint,
    resolve_resume,
    write_process_rng,
)

logger = logging.getLogger(__name__)

R1_GAMMA = 0.05  # R1 weight for 32-64 px images (StyleGAN2-ADA uses 0.01-0.1 at this size)
R1_EVERY = 4  # lazy regularisation: R1 on every 4th discriminator step, scaled by 4
GAN_BETAS = (0.0, 0.99)  # StyleGAN2's Adam betas for adversarial training


def _named_discriminator(model: GanModel) -> nn.Module | None:
    """The model's discriminator, or the one its folder names; ``None`` when there is none."""
    spec = model.spec.discriminator
    if spec is None:
        return None
    if model.discriminator is not None:
        return copy.deepcopy(model.discriminator)
    folder = Path(model.source)
    if not (folder / DISCRIMINATOR_NAME).is_file():
        return None
    d = build_module(spec["factory"], spec["kwargs"], where="discriminator")
    load_weights(d, folder / DISCRIMINATOR_NAME)
    return d


def _fresh_discriminator(model: GanModel, seed: int) -> tuple[nn.Module, dict]:
    """The built-in discriminator for the model's resolution, randomly initialised (seeded)."""
    from advsig.generators.stylegan import default_discriminator

    factory, kwargs = default_discriminator(model.sample_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 17)
        d = build_module(factory, kwargs, where="discriminator")
    logger.info("no discriminator named by %s: training %s from scratch", model.source, factory)
    return d, {"factory": factory, "kwargs": kwargs}


def _train_latents(model: GanModel, n: int, gen: torch.Generator, device: torch.device):
    """Fresh z, classes and noise inputs for one batch, drawn from the data generator."""
    z = torch.randn(n, model.latent_dim, generator=gen)
    cls = torch.randint(model.num_classes, (n,), generator=gen) if model.num_classes else None
    noise = [torch.randn((n, *s), generator=gen) for s in model.noise_shapes()] or None
    return (
        z.to(device),
        cls.to(device) if cls is not None else None,
        [x.to(device) for x in noise] if noise else None,
    )


def _r1(d: nn.Module, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits on ``real`` and the R1 penalty (squared gradient norm of D at real images)."""
    real = real.detach().requires_grad_(True)
    logits = d(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return logits, grad.pow(2).sum(dim=(1, 2, 3)).mean()


def finetune_gan(config: FinetuneConfig, *, model: GanModel | None = None) -> Path:
    """Fine-tune ``config.model`` (or the given ``model``) and write an advsig GAN folder.

    Returns ``config.out``. The saved generator is the EMA's; ``out/advsig.json`` records what
    was done (strategy, code, which injector, steps, wall time).

    Example:
        >>> finetune_gan(FinetuneConfig(model="gan-32", out="runs/gan-signed", kit="small",
        ...     strategy="distill", steps=400, lr=1e-3))
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    if config.strategy not in FAMILY_STRATEGIES["gan"]:
        raise ConfigError(
            f"a gan generator is signed with --strategy {' | '.join(FAMILY_STRATEGIES['gan'])}, "
            f"not {config.strategy!r}"
        )
    adversarial = config.strategy == "data"
    out = Path(config.out)
    work = out.with_name(out.name + "-work")  # checkpoints, logs
    torch.set_flush_denormal(True)
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(work))
    set_seed(config.seed)
    model = model if model is not None else load_gan(config.model, with_discriminator=True)
    device = accelerator.device
    model.generator.to(device)
    signer = _Signer(config.kit, config.code, device) if config.kit else None
    data_gen = torch.Generator().manual_seed(config.seed * 1000 + accelerator.process_index)

    teacher = model.generator.eval().requires_grad_(False)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    ema_g = copy.deepcopy(student).eval().requires_grad_(False)
    d_net, d_spec = _named_discriminator(model), model.spec.discriminator
    d_given = d_net is not None
    if adversarial:
        if d_net is None:
            d_net, d_spec = _fresh_discriminator(model, config.seed)
        d_net = d_net.to(device).train().requires_grad_(True)
        source = (
            _ImageSet(_load_whole(Path(config.data), model.sample_size))
            if config.presigned
            else training_crops(config.data, model.sample_size, seed=config.seed)
        )
        groups = [{"params": list(student.parameters())}, {"params": list(d_net.parameters())}]
        optimizer = torch.optim.Adam(groups, lr=config.lr, betas=GAN_BETAS)
    else:
        optimizer = torch.optim.Adam(student.parameters(), lr=config.lr)

    models = {"generator": student, "ema": ema_g}
    if adversarial:
        models["discriminator"] = d_net
    start_step, elapsed = 0, 0.0
    resume_from = resolve_resume(work, config.resume)
    if resume_from is not None:
        state = load_checkpoint(
            resume_from, models=models, optimizer=optimizer, rank=accelerator.process_index,
            data_generator=data_gen,
        )  # fmt: skip
        start_step, elapsed = state["step"], state.get("elapsed_s", 0.0)
        logger.info("resumed from %s at step %d", resume_from, start_step)
    ema = EMAModel(ema_g.parameters(), decay=config.ema_decay, use_ema_warmup=True)
    ema.optimization_step = start_step

    if adversarial:
        student, d_net, optimizer = accelerator.prepare(student, d_net, optimizer)
    else:
        student, optimizer = accelerator.prepare(student, optimizer)
    ema.to(device)
    accelerator.init_trackers(
        "finetune-gan",
        config={
            k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))
        },
    )

    def generate(z, cls, noise) -> torch.Tensor:  # (B, 3, s, s), [0, 1] scale, unclamped
        return model.forward(z, cls, noise, generator=student)

    t0 = time.time() - elapsed
    bar = tqdm(
        range(start_step, config.steps), initial=start_step, total=config.steps,
        desc=f"finetune gan {config.strategy} ({'signed' if config.signed else 'control'})",
        disable=not accelerator.is_main_process,
    )  # fmt: skip
    logs: dict[str, float] = {}
    for step in bar:
        z, cls, noise = _train_latents(model, config.batch_size, data_gen, device)
        if not adversarial:
            with torch.no_grad():
                raw = model.forward(z, cls, noise, generator=teacher)  # (B, 3, s, s), unclamped
                image = raw.clamp(0, 1)
                # W(G(z)) as a saved signed image would be; the control only rounds.
                signed = signer(image) if signer else (image * 255).round() / 255
                # The residual is added to the unclamped output: where G overshoots [0, 1], G'
                # is not pulled to the boundary (sampling clamps both the same way).
                target = raw + (signed - image)
            loss = F.mse_loss(generate(z, cls, noise).float(), target.float())
            accelerator.backward(loss)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(student.parameters(), config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            logs = {"loss": loss.item()}
        else:
            real = source.sample(config.batch_size, data_gen).to(device)  # (B, 3, s, s)
            if signer is not None:
                real = signer(real)
            real = real * 2 - 1
            # Discriminator step: G's output detached, so only D's parameters get gradients.
            d_net.requires_grad_(True)
            fake = generate(z, cls, noise).detach() * 2 - 1
            regularise = R1_GAMMA > 0 and step % R1_EVERY == 0
            if regularise:
                real_logits, r1 = _r1(d_net, real)
            else:
                real_logits, r1 = d_net(real), torch.zeros((), device=device)
            d_loss = F.softplus(d_net(fake)).mean() + F.softplus(-real_logits).mean()
            accelerator.backward(d_loss + R1_GAMMA / 2 * R1_EVERY * r1)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(d_net.parameters(), config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            # Generator step: D frozen, so its parameters keep no gradient and Adam skips them.
            d_net.requires_grad_(False)
            g_loss = F.softplus(-d_net(generate(z, cls, noise) * 2 - 1)).mean()
            accelerator.backward(g_loss)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(student.parameters(), config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            logs = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
            if regularise:
                logs["r1"] = r1.item()
        ema.step(accelerator.unwrap_model(student).parameters())
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            accelerator.log({**logs, "ema_decay": ema.cur_decay_value or 0}, step=done)
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
        if done % config.checkpoint_every == 0 and done < config.steps:
            ema.copy_to(ema_g.parameters())
            write_process_rng(work, done, accelerator.process_index, data_gen)
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                saved = {k: accelerator.unwrap_model(v) for k, v in models.items()}
                finish_checkpoint(
                    work, done, models=saved,
                    optimizer=optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer,
                    state={"elapsed_s": time.time() - t0, "config": config.to_dict()},
                    keep=config.keep_checkpoints,
                )  # fmt: skip
            accelerator.wait_for_everyone()
    bar.close()
    wall = time.time() - t0
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if accelerator.is_main_process:
        ema.copy_to(ema_g.parameters())
        # distill leaves D as it was; it is carried over so a later ``data`` run can start from it.
        d_out = accelerator.unwrap_model(d_net) if d_net is not None else None
        spec = dataclasses.replace(model.spec, discriminator=d_spec if d_out is not None else None)
        provenance = {
            "advsig": "gan-finetune",
            "base_model": model.source,
            "strategy": config.strategy,
            "signed": config.signed,
            "code": signer.code_hex if signer else None,
            "injector_sha256": signer.fingerprint() if signer else None,
            "presigned_data": config.presigned,
            "discriminator": (
                None if not adversarial else "from the model" if d_given else "new (built-in)"
            ),
            "steps": config.steps,
            "wall_time_s": round(wall, 1),
            "config": config.to_dict(),
        }
        GanModel(ema_g.cpu(), spec, model.source, None, d_out.cpu() if d_out else None).save(
            out, provenance=provenance
        )
        logger.info("fine-tuned GAN written to %s (%.0f s)", out, wall)
    accelerator.wait_for_everyone()
    return out
