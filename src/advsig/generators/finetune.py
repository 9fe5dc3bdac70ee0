"""Fine-tune a pixel diffusion model so that everything it samples carries the signature.

The paper's recipe (``data``): train the model on W-signed images with its own loss, so it
learns the signature as part of the data distribution. ``self``: the publisher no longer has
the data, so the model's own samples are signed and used instead. ``distill``: at the least noisy
timesteps the model learns to output W applied to the original model's own clean estimate.
Why: a content-bound (v2) signature is a function of fine detail that noise hides, so the
denoising loss on signed data averages it out (docs/signature-v2.md, stop 20); W of the model's
own estimate is a deterministic target the model can learn. A control run (no kit) trains
identically on clean images, to separate the signature's cost from fine-tuning's.

Only the injector is used: the detector stays with its owner. Runs on Accelerate, with EMA
(diffusers ``EMAModel``), safetensors checkpoints and ``resume="latest"``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from advsig.codes.bits import bits_to_hex, hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, fit_within, resolve_training_data
from advsig.data.io import list_images, load_image
from advsig.errors import ConfigError, ImageError
from advsig.generators.base import FAMILY_STRATEGIES, check_strategy
from advsig.generators.pixel import PixelDiffusion, load_pixel_diffusion, save_pixel_diffusion
from advsig.generators.sampling import generate_to_folder
from advsig.models.modeling_utils import load_weights
from advsig.training.checkpoint import (
    finish_checkpoint,
    load_checkpoint,
    resolve_resume,
    write_process_rng,
)

logger = logging.getLogger(__name__)

# Every family's strategies (finetune_generator checks the one asked for against the family).
STRATEGIES = tuple(dict.fromkeys(s for f in FAMILY_STRATEGIES.values() for s in f))


@dataclass
class FinetuneConfig:
    """What ``finetune_pixel`` needs; the CLI only fills this in.

    Attributes:
        model: diffusers pixel pipeline folder, shipped generator name, or Hub id.
        out: folder for the fine-tuned pipeline. Checkpoints, TensorBoard logs and the ``self``
            strategy's samples go to the sibling folder ``{out}-work``, so ``out`` stays a clean
            pipeline folder.
        kit: kit or injector-only kit whose W signs the training images; ``None`` trains the
            control model on clean images.
        strategy: ``data`` (sign the training data), ``self`` (sign the model's own samples) or
            ``distill`` (learn W of the original model's clean estimate at low timesteps, keep
            its prediction elsewhere); latent models also ``decoder`` (``FAMILY_STRATEGIES``).
        detector_weight: for output-matching recipes (latent ``decoder``), also push the
            kit's detector to read the signature and code on the model's output, with this
            weight (needs a full kit: the owner's detector). Why: a convolutional decoder fed
            a small latent has almost no notion of absolute position, so matching W's nearly
            image-independent pattern by pixel loss alone is slow (measured in BENCHMARKS.md);
            the detector's gradient points at what makes an image read as signed.
        data: image folder or ``"embedded"`` (strategy ``data``); random crops at random scales.
        presigned: the ``data`` folder is already signed at the model's resolution: images are
            used whole (no crops, no rescaling, which would move the signature).
        code: hex code to embed (default all zeros).
        self_samples / sample_steps: how many samples ``self`` draws, with how many DDIM steps.
        teacher: ``distill``: the frozen model whose clean estimate W signs (default: the
            starting model). Why: a run can start from an already signed model and widen
            ``low_t_max`` in stages while W still signs the unsigned original's estimate
            (signing a signed estimate again would stack two signatures).
        ema_decay: ceiling of the EMA decay (warmed up from 0); the saved model is the EMA.
        low_t_fraction / low_t_max: share of each batch whose timestep is drawn from the
            ``low_t_max`` least noisy steps instead of all of them. Why: the signature is a
            residual of about 2/255, buried in noise at all but the lowest noise levels, which
            uniform sampling visits 1-2% of the time; a control run uses the same schedule.
    """

    model: str
    out: str
    kit: str | None = None
    strategy: str = "data"
    data: str | None = "embedded"
    presigned: bool = False
    code: str | None = None
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-4
    ema_decay: float = 0.999
    max_grad_norm: float = 1.0
    detector_weight: float = 0.0
    low_t_fraction: float = 0.8
    low_t_max: int = 100
    self_samples: int = 512
    sample_steps: int = 50
    teacher: str | None = None
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    resume: str | None = None
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy in ("data", "distill") and not self.data:
            raise ConfigError(f"strategy {self.strategy!r} needs --data (a folder or 'embedded')")
        if self.teacher is not None and self.strategy != "distill":
            raise ConfigError(f"--teacher is for strategy distill, not {self.strategy!r}")
        if self.presigned and (self.kit is not None or self.strategy != "data"):
            raise ConfigError("--presigned data is already signed: give no --kit, strategy data")
        for name in ("steps", "batch_size", "self_samples", "sample_steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.low_t_fraction <= 1 or self.low_t_max < 1:
            raise ConfigError("low_t_fraction must be in [0, 1] and low_t_max >= 1")
        if self.detector_weight < 0 or (self.detector_weight and self.kit is None):
            raise ConfigError("--detector-weight needs a full kit (--kit) and must be >= 0")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def signed(self) -> bool:
        return self.kit is not None or self.presigned

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Signer:
    """W applied to training batches, then rounded to 8 bits as a saved signed image would be."""

    def __init__(self, kit_name: str, code: str | None, device: torch.device) -> None:
        from advsig.kit import Kit

        self.kit = Kit.from_pretrained(kit_name, device=device)
        self.bits = hex_to_bits(code, self.kit.num_bits)
        self.code_hex = bits_to_hex(self.bits) if self.kit.num_bits else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.unrounded(x) * 255).round() / 255

    def unrounded(self, x: torch.Tensor) -> torch.Tensor:
        return self.kit.sign(x, code=self.code_hex)

    def fingerprint(self) -> str:
        """SHA-256 of W's weights: which injector signed this model."""
        h = hashlib.sha256()
        for key, value in sorted(self.kit.injector.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


class _ImageSet:
    """Whole images at the model's resolution, drawn at random: for self-samples and presigned data."""

    def __init__(self, images: torch.Tensor) -> None:
        if len(images) == 0:
            raise ConfigError("no training images")
        self.images = images

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.images), (batch_size,), generator=generator)
        return self.images[idx]


def _load_whole(folder: Path, size: int) -> torch.Tensor:
    images = []
    for path in list_images(folder):
        try:
            img = load_image(path).image
        except ImageError as exc:
            logger.warning("skipping training image: %s", exc)
            continue
        if img.shape[-2:] != (size, size):
            img = F.interpolate(fit_within(img, size)[None], size=(size, size), mode="bilinear")[0]
        images.append(img)
    if not images:
        raise ConfigError(f"{folder}: no readable images")
    return torch.stack(images)


def training_crops(data: str, size: int, *, seed: int = 0) -> RandomCrops:
    """The images a ``size``-pixel model learns from: random crops at random scales of ``data``.

    Also the real-image reference of ``eval-generator``, so FID compares like with like.
    """
    sources = resolve_training_data(data, val_fraction=0.0, seed=seed)[0]
    return RandomCrops(ImagePool(sources, max_side=8 * size), size)


def checkpoint_model(original: PixelDiffusion, checkpoint: str | Path) -> PixelDiffusion:
    """``original`` with the EMA weights of a fine-tuning checkpoint (``{out}-work/checkpoint-N``)."""
    unet = copy.deepcopy(original.unet)
    load_weights(unet, Path(checkpoint) / "ema.safetensors")
    return PixelDiffusion(unet.eval(), original.scheduler, str(checkpoint), original.provenance)


def _targets(scheduler, x0, noise, t) -> torch.Tensor:
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(x0, noise, t)
    if kind == "sample":
        return x0
    raise ConfigError(f"unsupported prediction_type {kind!r}")


def _clean_estimate(scheduler, noisy, pred, t) -> torch.Tensor:
    """The model's estimate of the clean image from its prediction at timestep ``t``."""
    abar = scheduler.alphas_cumprod.to(noisy.device)[t].view(-1, 1, 1, 1)
    a, s = abar.sqrt(), (1 - abar).sqrt()
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return (noisy - s * pred) / a
    if kind == "v_prediction":
        return a * noisy - s * pred
    if kind == "sample":
        return pred
    raise ConfigError(f"unsupported prediction_type {kind!r}")


# Mean square of a ~48 dB signature in [-1, 1] units: the control's stand-in normaliser.
_CONTROL_ENERGY = 6e-5


def _distill_loss(pred, teacher_pred, noisy, t, scheduler, signer, low) -> torch.Tensor:
    """Low timesteps: the clean estimate must be W(teacher's clean estimate); others: the teacher's.

    The signature part is normalised by its own energy per image, so the loss starts at 1 and
    reads as the share of the signature not yet drawn. ``low``: (B,) bool. ``signer`` None (a
    control run) keeps the teacher's estimate, normalised by a typical signature's energy.
    """
    with torch.no_grad():
        guess = _clean_estimate(scheduler, noisy, teacher_pred, t).clamp(-1, 1)
        if signer is None:  # the control: same recipe, the target is the teacher's own estimate
            target, energy = guess, torch.full((len(guess),), _CONTROL_ENERGY, device=guess.device)
        else:
            target = signer.unrounded(guess / 2 + 0.5) * 2 - 1
            energy = (target - guess).square().mean(dim=(1, 2, 3)).clamp_min(1e-10)
    drawn = _clean_estimate(scheduler, noisy, pred, t)
    sig = (drawn - target).square().mean(dim=(1, 2, 3)) / energy
    keep = (pred - teacher_pred).square().mean(dim=(1, 2, 3))
    return torch.where(low, sig, keep).mean()


def _timesteps(n: int, num_train_t: int, config: FinetuneConfig, gen: torch.Generator):
    """Uniform timesteps, with a share ``low_t_fraction`` drawn from the least noisy steps.

    Returns the timesteps and which of them were drawn from the low range.
    """
    t = torch.randint(0, num_train_t, (n,), generator=gen)
    low = torch.randint(0, min(config.low_t_max, num_train_t), (n,), generator=gen)
    pick_low = torch.rand(n, generator=gen) < config.low_t_fraction
    return torch.where(pick_low, low, t), pick_low


def finetune_pixel(config: FinetuneConfig, *, model: PixelDiffusion | None = None) -> Path:
    """Fine-tune ``config.model`` (or the given ``model``) and write a diffusers pipeline folder.

    Returns ``config.out``. The saved weights are the EMA's; ``out/advsig.json`` records what was
    done (strategy, code, which injector, steps, wall time).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    check_strategy("pixel", config.strategy)
    out = Path(config.out)
    work = out.with_name(out.name + "-work")  # checkpoints, logs, self-samples
    torch.set_flush_denormal(True)
    accelerator = Accelerator(log_with="tensorboard", project_dir=str(work))
    set_seed(config.seed)
    model = model if model is not None else load_pixel_diffusion(config.model)
    size = model.sample_size
    signer = _Signer(config.kit, config.code, accelerator.device) if config.kit else None
    data_gen = torch.Generator().manual_seed(config.seed * 1000 + accelerator.process_index)

    # ---- training images
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

    teacher = None  # distill: the frozen original, whose clean estimate W signs
    if config.strategy == "distill":
        frozen = load_pixel_diffusion(config.teacher).unet if config.teacher else model.unet
        teacher = copy.deepcopy(frozen).eval().requires_grad_(False).to(accelerator.device)
    unet = model.unet.train()
    ema_unet = copy.deepcopy(unet).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=0.0)
    start_step, elapsed = 0, 0.0
    resume_from = resolve_resume(work, config.resume)
    if resume_from is not None:
        state = load_checkpoint(
            resume_from, models={"unet": unet, "ema": ema_unet}, optimizer=optimizer,
            rank=accelerator.process_index, data_generator=data_gen,
        )  # fmt: skip
        start_step, elapsed = state["step"], state.get("elapsed_s", 0.0)
        logger.info("resumed from %s at step %d", resume_from, start_step)
    ema = EMAModel(ema_unet.parameters(), decay=config.ema_decay, use_ema_warmup=True)
    ema.optimization_step = start_step

    unet, optimizer = accelerator.prepare(unet, optimizer)
    ema.to(accelerator.device)
    accelerator.init_trackers(
        "finetune",
        config={
            k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))
        },
    )
    scheduler = model.scheduler
    num_train_t = int(scheduler.config.num_train_timesteps)
    t0 = time.time() - elapsed
    bar = tqdm(
        range(start_step, config.steps), initial=start_step, total=config.steps,
        desc="finetune (signed)" if config.signed else "finetune (control)",
        disable=not accelerator.is_main_process,
    )  # fmt: skip
    for step in bar:
        x = source.sample(config.batch_size, data_gen).to(accelerator.device)  # (B, 3, s, s)
        if signer is not None and teacher is None:  # distill signs the teacher's estimate instead
            x = signer(x)
        x0 = x * 2 - 1
        noise = torch.randn(x0.shape, generator=data_gen).to(x0.device)
        t, low = _timesteps(len(x0), num_train_t, config, data_gen)  # (B,), (B,) bool
        t, low = t.to(x0.device), low.to(x0.device)
        noisy = scheduler.add_noise(x0, noise, t)
        pred = unet(noisy, t).sample
        if teacher is not None:
            with torch.no_grad():
                teacher_pred = teacher(noisy, t).sample
            loss = _distill_loss(
                pred.float(), teacher_pred.float(), noisy, t, scheduler, signer, low
            )
        else:
            loss = F.mse_loss(pred.float(), _targets(scheduler, x0, noise, t).float())
        accelerator.backward(loss)
        if config.max_grad_norm:
            accelerator.clip_grad_norm_(unet.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(accelerator.unwrap_model(unet).parameters())
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            accelerator.log({"loss": loss.item(), "ema_decay": ema.cur_decay_value or 0}, step=done)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if done % config.checkpoint_every == 0 and done < config.steps:
            ema.copy_to(ema_unet.parameters())
            write_process_rng(work, done, accelerator.process_index, data_gen)
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                finish_checkpoint(
                    work, done,
                    models={"unet": accelerator.unwrap_model(unet), "ema": ema_unet},
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
        ema.copy_to(ema_unet.parameters())
        provenance = {
            "advsig": "pixel-finetune",
            "base_model": model.source,
            "strategy": config.strategy,
            "signed": config.signed,
            "code": signer.code_hex if signer else None,
            "injector_sha256": signer.fingerprint() if signer else None,
            "presigned_data": config.presigned,
            "steps": config.steps,
            "wall_time_s": round(wall, 1),
            "config": config.to_dict(),
        }
        save_pixel_diffusion(
            PixelDiffusion(ema_unet, scheduler, model.source), out, provenance=provenance
        )
        logger.info("fine-tuned pipeline written to %s (%.0f s)", out, wall)
    accelerator.wait_for_everyone()
    return out
