"""``train_signature(config)``: joint training of W and F, then calibration into a kit.

Loss (paper, with per-bit BCE for the code):
    L = ||W(x) - x||^2 + lambda * [BCE(F(A(Q(W(x)))), 1) + BCE(F(A(x)), 0) + BCE_bits]
where Q is straight-through 8-bit rounding and A one random augmentation replayed on both batches.
Runs on Accelerate: ``accelerate launch -m advsig train ...`` spreads it over GPUs or nodes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advsig.attacks.base import Attack
from advsig.attacks.forgery import round8, scale_to_psnr
from advsig.bench.runner import resolve_attacks
from advsig.codes.calibration import Calibration, StratifiedCalibration, stratum_size
from advsig.config import INJECTOR_OVERRIDES, TrainConfig
from advsig.data.datasets import (
    EMBEDDED_SPLITS,
    ImagePool,
    RandomCrops,
    fitted_size,
    resolve_training_data,
)
from advsig.data.synthetic import synthetic_images
from advsig.errors import CheckpointError, ConfigError
from advsig.kit import STANDARD_FPRS, Kit
from advsig.models.factory import build_model, model_config
from advsig.modules.binding import highpass
from advsig.signature_key import KEY_FILE_NAME, key_fingerprint, load_or_create_key, read_key
from advsig.training.augment import PairedAugment, quantize_ste
from advsig.training.checkpoint import resolve_resume
from advsig.training.engine import Engine, LoopConfig
from advsig.training.score_cache import ScoreCache, images_digest, kit_fingerprint

logger = logging.getLogger(__name__)

CALIBRATION_SIZES = (32, 48, 64, 96, 128, 192, 256)
SYNTHETIC_TRAIN_IMAGES = 200  # procedural flat images behind TrainConfig.synthetic_fraction
SYNTHETIC_CAL_SEED = 104_729  # calibration's flat images never repeat training's
MIN_STRATUM = 50  # clean scores per image size before sizes get their own calibration


def _lambda(config: TrainConfig, step: int) -> float:
    ramp = min(1.0, step / max(1, config.lambda_warmup))
    return config.lambda_min + (config.lambda_max - config.lambda_min) * ramp


def _augment_probability(config: TrainConfig, step: int) -> float:
    if step < config.augment_start:
        return 0.0
    ramp = min(1.0, (step - config.augment_start + 1) / max(1, config.augment_ramp))
    return config.augment_max * ramp


def train_signature(config: TrainConfig) -> Kit:
    """Train W and F as ``config`` says, calibrate on held-out images, write the kit to ``config.out``.

    Example:
        >>> kit = train_signature(TrainConfig(data="embedded", out="kits/mine", steps=3000))
    """
    # Resolved before training, so a mistyped label fails now rather than after the last step.
    processed = (
        resolve_attacks(config.calibration_processed) if config.calibration_processed else None
    )
    out = Path(config.out)
    ckpt_root = out / "checkpoints"
    engine = Engine(
        LoopConfig(
            steps=config.steps, work=ckpt_root, project_dir=out, resume=config.resume,
            seed=config.seed, checkpoint_every=config.checkpoint_every,
            keep_checkpoints=config.keep_checkpoints, log_every=config.log_every,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            tracker="train", description="train W+F", hparams=config.to_dict(),
        )
    )  # fmt: skip
    accelerator = engine.accelerator
    inj_cfg = model_config(config.injector, num_bits=config.num_bits, binding=config.binding)
    det_cfg = model_config(config.detector, num_bits=config.num_bits, binding=config.binding)
    seed_kit = Kit.from_pretrained(config.init_kit) if config.init_kit is not None else None
    if seed_kit is not None:
        inj_cfg, det_cfg = _init_configs(config, seed_kit, inj_cfg, det_cfg)
    for name in INJECTOR_OVERRIDES:
        if getattr(config, name) is not None:
            inj_cfg = dataclasses.replace(inj_cfg, **{name: getattr(config, name)})
    for name in ("binding_floor", "binding_dense"):  # the mask: W and F must agree
        if getattr(config, name) is not None:
            inj_cfg = dataclasses.replace(inj_cfg, **{name: getattr(config, name)})
            det_cfg = dataclasses.replace(det_cfg, **{name: getattr(config, name)})
    if config.odd_score is not None:  # odd bits read the odd score's -u pass: off with it
        det_cfg = dataclasses.replace(
            det_cfg, odd_score=config.odd_score, odd_bits=det_cfg.odd_bits and config.odd_score
        )
    if config.stem_eps is not None:
        det_cfg = dataclasses.replace(det_cfg, stem_eps=config.stem_eps)
    # F trains on its raw logit; the decoy reference is applied only once training is done.
    # Why: trained on the difference, F learns to tell the kit's mask from the decoy's on
    # clean images (both are functions of the image), which defeats the reference.
    score_reference = config.score_reference or det_cfg.score_reference
    det_cfg = dataclasses.replace(det_cfg, score_reference="none")
    key = None
    # Fine-tuning a v2 kit without a key file keeps that kit's key: its keyed buffers (mask,
    # carriers) are copied with the weights, and no new key is drawn.
    inherit_key = (
        seed_kit is not None and seed_kit.bound
        and config.key_file is None and config.binding == "content"
    )  # fmt: skip
    if config.binding == "content" and not inherit_key:
        key_file = Path(config.key_file) if config.key_file else out / KEY_FILE_NAME
        if accelerator.is_main_process:
            load_or_create_key(key_file)
        accelerator.wait_for_everyone()
        key = read_key(key_file)
    injector, detector = build_model(inj_cfg, key=key), build_model(det_cfg, key=key)
    if seed_kit is not None and resolve_resume(ckpt_root, config.resume) is None:
        _load_init_weights(seed_kit, config.init_kit, injector, detector, with_key=inherit_key)
    train_src, val_src = resolve_training_data(
        config.data, val_fraction=config.val_fraction, seed=config.seed
    )
    recipe = _SignatureRecipe(config, injector, detector, train_src, engine)
    result = engine.run(recipe)
    wall = result.wall_time_s
    inj, det = injector.eval(), detector.eval()  # the trained modules (Accelerate wraps in place)
    kit = Kit(
        inj, det, work_size=config.work_size, tile_size=config.crop_size,
        detect_scales=config.detect_scales,
        key_fingerprint=(
            seed_kit.key_fingerprint
            if inherit_key
            else key_fingerprint(key) if key is not None else None
        ),
        upscale_within_work=config.binding == "content",
    )  # fmt: skip
    if kit.bound and score_reference != "none":
        kit = kit.with_score_reference(score_reference)
    if accelerator.is_main_process:
        summary = calibrate(
            kit, val_src, num=config.num_calibration, seed=config.seed,
            min_size=config.calibration_min_size, processed=processed,
            by_source=config.calibration_by_photo, synthetic=config.calibration_synthetic,
            names=list(EMBEDDED_SPLITS["val"]) if config.data == "embedded" else None,
        )  # fmt: skip
        kit.training = {
            "preset": config.preset,
            "data": config.data,
            "steps": config.steps,
            "seed": config.seed,
            "wall_time_s": round(wall, 1),
            "config": config.to_dict(),
            "validation": summary,
        }
        kit.save_pretrained(out)
        logger.info("kit written to %s", out)
    accelerator.wait_for_everyone()
    return kit


class _SignatureRecipe:
    """W and F trained jointly (the :class:`~advsig.training.engine.Recipe` of ``train_signature``)."""

    ema_module = None
    progress_keys = ("psnr_db", "detect_acc", "bit_acc")

    def __init__(self, config: TrainConfig, injector, detector, train_src, engine: Engine) -> None:
        self.config = config
        self.modules = {"injector": injector, "detector": detector}
        self.optimizer = torch.optim.Adam(
            list(injector.parameters()) + list(detector.parameters()), lr=config.lr
        )
        self.extra: dict = {}
        weights = None
        if config.synthetic_fraction:  # flat content the photos lack (advsig.data.synthetic)
            flat = synthetic_images(SYNTHETIC_TRAIN_IMAGES, 2 * config.work_size, seed=config.seed)
            n, f = len(train_src), config.synthetic_fraction
            weights = [(1 - f) / n] * n + [f / len(flat)] * len(flat)
            train_src = list(train_src) + flat
        self.crops = RandomCrops(
            ImagePool(train_src, max_side=2 * config.work_size),
            config.crop_size + config.shift,
            weights=weights,
        )
        rank = engine.accelerator.process_index
        torch.manual_seed(config.seed * 1000 + rank)  # augmentation randomness
        self.augment = PairedAugment(config.augment, blur_max=config.augment_blur_max)

    def prepare(self, engine: Engine) -> None:
        self.injector, self.detector, self.optimizer = engine.accelerator.prepare(
            self.modules["injector"], self.modules["detector"], self.optimizer
        )
        self.modules["injector"].train()
        self.modules["detector"].train()

    def step(self, engine: Engine, step: int, *, log: bool) -> dict[str, float]:
        config, gen = self.config, engine.data_gen
        injector, detector = self.injector, self.detector
        x = self.crops.sample(config.batch_size, gen).to(engine.device)  # (B, 3, c, c)
        n = config.num_bits
        bits = torch.randint(0, 2, (config.batch_size, n), generator=gen).float()
        bits = bits.to(engine.device)  # (B, n)
        lam = _lambda(config, step)
        with engine.accelerator.accumulate(injector, detector):
            signed = injector(x, bits if n else None)  # (B, 3, c, c)
            fidelity = F.mse_loss(signed, x)
            seen = quantize_ste(signed) if config.quantize else signed
            positives = [seen, *_removal_positives(x, signed, config, gen)]
            negatives = _forgery_negatives(x, signed, config, gen)
            views = [*positives, *negatives]  # each (B, 3, c, c)
            *views, clean = _shifted_window([*views, x], config, gen)  # (B, 3, crop, crop)
            num_views = len(views)
            flat = _flat_negatives(clean, config, gen, signed=views[0])  # (B or 0, 3, crop, crop)
            soft = _upscaled_negatives(clean, config, gen)  # (B or 0, 3, crop, crop)
            flat = torch.cat([flat, soft])
            views = torch.cat(views)  # (V*B, 3, crop, crop): signed, removals, then forgeries
            if float(torch.rand((), generator=gen)) < _augment_probability(config, step):
                views, clean = self.augment(views, clean.repeat(num_views, 1, 1, 1))
                clean = clean[: len(x)]
                if config.augment_flat and len(flat):
                    flat = self.augment(flat, flat)[0]  # its own draw, not the views'
            logits = detector(torch.cat([views, clean, flat]))  # ((V+1)B + flat, 1 + n)
            cut = len(logits) - len(flat)
            flat_logits, logits = logits[cut:, 0], logits[:cut]
            b = len(x)
            p = len(positives) * b  # rows labelled signed
            target = torch.full((len(logits),), config.negative_label, device=logits.device)
            target[:p] = 1
            trust = _positive_trust(self.modules["injector"], x, config)  # (B,)
            det_loss = F.binary_cross_entropy_with_logits(
                torch.cat([logits[:b, 0], logits[-b:, 0]]),
                torch.cat([target[:b], target[-b:]]),
                weight=torch.cat([trust, torch.ones_like(trust)]),
            )
            if p > b:
                det_loss = det_loss + config.removal_weight * F.binary_cross_entropy_with_logits(
                    logits[b:p, 0], target[b:p], weight=trust.repeat(p // b - 1)
                )
            if negatives:
                forged = logits[p:-b, 0]  # (N*B,) forgeries, labelled clean
                det_loss = det_loss + config.transplant_weight * F.binary_cross_entropy_with_logits(
                    forged, target[p:-b]
                )
            if len(flat):
                clean_label = torch.full_like(flat_logits, config.negative_label)
                bce = F.binary_cross_entropy_with_logits(flat_logits, clean_label, reduction="none")
                cut = len(flat) - len(soft)  # flat negatives first, then the upscaled ones
                for part, weight in (
                    (bce[:cut], config.flat_weight),
                    (bce[cut:], config.upscaled_weight),
                ):
                    if len(part):
                        det_loss = det_loss + weight * part.mean()
            bit_loss = (
                F.binary_cross_entropy_with_logits(logits[:b, 1:], bits) if n else det_loss * 0
            )
            bit_weight = config.bit_weight if step >= config.bit_weight_start else 1.0
            loss = fidelity + lam * (det_loss + bit_weight * bit_loss)
            engine.update(loss, self.optimizer)
        if not log:
            return {}
        with torch.no_grad():
            acc = ((logits[:, 0] > 0).float() == (target > 0.5)).float().mean().item()
            bit_acc = ((logits[:b, 1:] > 0).float() == bits).float().mean().item() if n else 1.0
            return {
                "loss": loss.item(),
                "fidelity_mse": fidelity.item(),
                "psnr_db": -10 * math.log10(max(fidelity.item(), 1e-12)),
                "detect_bce": det_loss.item(),
                "bits_bce": bit_loss.item(),
                "detect_acc": acc,
                "forgery_rejected": (logits[p:-b, 0] <= 0).float().mean().item()
                if negatives
                else 1.0,
                "removal_detected": (logits[b:p, 0] > 0).float().mean().item() if p > b else 1.0,
                "bit_acc": bit_acc,
                "lambda": lam,
            }


def _forgery_negatives(
    x: torch.Tensor, signed: torch.Tensor, config: TrainConfig, gen: torch.Generator
) -> list:
    """Forged images labelled clean: (B, 3, c, c) each, empty without binding or weight.

    ``moved``: crop i carries crop i-1's residual (the transplant attack). ``averaged``: every
    crop carries the batch's mean residual, rescaled to one residual's RMS (the averaging
    attack, which on a fixed-pattern signature recovers the pattern). ``ghost`` (with
    ``config.ghost_negatives``): every crop carries the mean high-pass of the signed batch at
    36-46 dB (the averaging attack without originals: content ghost plus its signature).
    ``lifted`` (with ``config.lifted_negatives``): crop i carries crop i-1's high-pass and, in
    a second view, its exact residual, each at 38-48 dB (one-image transplants at the
    strengths an attacker picks, not the signature's own). ``strong_average`` (with
    ``config.lifted_averages``): crop i carries the mean residual of the batch's other crops at
    38-48 dB (the oracle averaging attack at an attacker's strength).
    """
    if config.binding == "none" or config.transplant_weight == 0 or len(x) < 2:
        return []
    res = signed - x  # (B, 3, c, c)
    moved = x + res.roll(1, dims=0)
    mean = res.mean(dim=0, keepdim=True)  # (1, 3, c, c)
    with torch.no_grad():  # a rescaling, not something to learn through (and res starts at 0)
        scale = res.square().mean().add(1e-12).sqrt() / mean.square().mean().add(1e-12).sqrt()
    averaged = x + mean * scale
    views = [moved.clamp(0, 1), averaged.clamp(0, 1)]
    if config.ghost_negatives:
        ghost = highpass(signed, 1.0).mean(dim=0, keepdim=True)  # (1, 3, c, c)
        views.append(
            (x + scale_to_psnr(ghost, _uniform(36.0, 46.0, gen), constant_scale=True)).clamp(0, 1)
        )
    if config.lifted_negatives:
        for estimate in (highpass(signed, 1.0), res):
            lifted = scale_to_psnr(
                estimate.roll(1, dims=0),
                _uniform(38.0, 48.0, gen),
                constant_scale=True,
                per_image=True,
            )
            views.append((x + lifted).clamp(0, 1))
    if config.lifted_averages:
        strong = scale_to_psnr(
            _others_mean(res), _uniform(38.0, 48.0, gen), constant_scale=True, per_image=True
        )
        views.append((x + strong).clamp(0, 1))
    return [quantize_ste(v) for v in views] if config.quantize else views


def _flat_negatives(
    clean: torch.Tensor, config: TrainConfig, gen: torch.Generator, *, signed=None
) -> torch.Tensor:
    """Flat clean crops labelled clean: (B, 3, c, c), or (0, 3, c, c) when ``flat_weight`` is 0.

    A third are the clean crops downscaled 8-32x and smoothly upscaled (colours and slow
    shading kept, texture gone), a third the crops with their contrast cut to 3-23% (fog,
    haze, a dim wall: texture kept, faint), a third smooth linear colour gradients; all get faint
    Gaussian noise (sigma 0-0.004, a camera's) and 8-bit rounding, as real flat regions do.
    With ``config.flat_forgeries`` (and ``signed``, the batch's signed crops in the same window),
    every other one also carries the high-pass of another signed crop at 38-48 dB: a one-image
    transplant onto a flat region, through which W gets the gradient; otherwise none does.
    """
    b, _, h, w = clean.shape
    if config.flat_weight == 0:
        return clean[:0]
    with torch.no_grad():
        factor = _uniform(8.0, 32.0, gen)
        small = (max(2, round(h / factor)), max(2, round(w / factor)))
        smooth = F.interpolate(clean, size=small, mode="area")
        smooth = F.interpolate(smooth, size=(h, w), mode="bicubic", align_corners=False)
        start = torch.rand(b, 3, 1, 1, generator=gen).to(clean.device)  # (B, 3, 1, 1)
        slope = (torch.rand(b, 3, 2, generator=gen).to(clean.device) - 0.5) * 0.4
        ys = torch.linspace(0, 1, h, device=clean.device).view(1, 1, h, 1)
        xs = torch.linspace(0, 1, w, device=clean.device).view(1, 1, 1, w)
        ramp = start + slope[..., 0:1].unsqueeze(-1) * ys + slope[..., 1:2].unsqueeze(-1) * xs
        mean = clean.mean(dim=(2, 3), keepdim=True)
        faint = mean + (clean - mean) * (0.03 + 0.2 * torch.rand(b, 1, 1, 1, generator=gen)).to(
            clean.device
        )
        kind = torch.arange(b, device=clean.device).view(b, 1, 1, 1) % 3
        flat = torch.where(kind == 0, smooth, torch.where(kind == 1, faint, ramp))
        sigma = 0.004 * torch.rand(b, 1, 1, 1, generator=gen).to(clean.device)
        noise = torch.randn(flat.shape, generator=gen).to(clean.device) * sigma
        flat = ((flat + noise).clamp(0, 1) * 255).round() / 255
    if not config.flat_forgeries or signed is None or b < 2:
        return flat
    lifted = scale_to_psnr(
        highpass(signed, 1.0).roll(1, dims=0), _uniform(38.0, 48.0, gen),
        constant_scale=True, per_image=True,
    )  # fmt: skip
    every_other = (torch.arange(b, device=clean.device) % 2 == 1).view(b, 1, 1, 1)
    forged = (flat + lifted * every_other).clamp(0, 1)
    return quantize_ste(forged) if config.quantize else forged


def _upscaled_negatives(clean: torch.Tensor, config: TrainConfig, gen: torch.Generator):
    """Soft, magnified clean crops labelled clean: (B, 3, c, c), or (0, 3, c, c) when
    ``upscaled_weight`` is 0.

    Each crop is shrunk 1.5-2.5x (as a small photo is), rounded to 8 bits (as it was saved),
    and magnified back bilinearly. Why: the thresholds of 96 and 128 px images sat far above
    the signed scores (``base-v2-odd10``: 13.9 and 10.0 against -0.15 at 256 px), and nothing
    in training showed F a soft clean image; these negatives lowered them by 7-8 logits
    (stop 29). Most of that gap was the decoy reference's noise, which the odd kits no longer
    use: without it, ``base-v2-odd11`` (these negatives) against ``base-v2-odd10`` (none) is
    4.07 against 5.50 at 96 px and 0.73 against 0.72 validation TPR (stop 30).
    """
    b, _, h, w = clean.shape
    if config.upscaled_weight == 0:
        return clean[:0]
    with torch.no_grad():
        factor = _uniform(1.5, 2.5, gen)
        small = F.interpolate(clean, size=(round(h / factor), round(w / factor)), mode="area")
        return F.interpolate(round8(small), size=(h, w), mode="bilinear", align_corners=False)


def _positive_trust(injector, x: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Per-crop weight of the signed label: the keyed mask's mean trust with
    ``config.trusted_positives``, else ones. (B,)"""
    binding = getattr(injector, "binding", None)
    if not config.trusted_positives or binding is None:
        return torch.ones(len(x), device=x.device)
    with torch.no_grad():
        return binding.weight(binding.contrast(x)).mean(dim=(1, 2, 3))


def _removal_positives(
    x: torch.Tensor, signed: torch.Tensor, config: TrainConfig, gen: torch.Generator
) -> list:
    """Signed crops minus the mean residual of the batch's other crops (35-45 dB), labelled signed.

    Empty unless ``config.removal_weight`` > 0. Leave-one-out, as the attacker's estimate comes
    from images other than the one attacked.
    """
    if config.removal_weight == 0 or len(x) < 2:
        return []
    others = _others_mean(signed - x)  # (B, 3, c, c)
    removed = (
        signed - scale_to_psnr(others, _uniform(35.0, 45.0, gen), constant_scale=True)
    ).clamp(0, 1)
    return [quantize_ste(removed) if config.quantize else removed]


def _others_mean(res: torch.Tensor) -> torch.Tensor:
    """For each crop, the mean of the *other* crops' residuals (leave-one-out): (B, 3, c, c)."""
    return (res.sum(dim=0, keepdim=True) - res) / (len(res) - 1)


def _uniform(lo: float, hi: float, gen: torch.Generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _shifted_window(batches: list, config: TrainConfig, gen: torch.Generator) -> list:
    """The same random ``crop_size`` window of every batch (no-op when ``shift`` is 0), at
    offsets that are multiples of ``shift_step``."""
    if config.shift == 0:
        return batches
    k = config.shift // config.shift_step
    dy, dx = (config.shift_step * int(v) for v in torch.randint(0, k + 1, (2,), generator=gen))
    c = config.crop_size
    return [b[..., dy : dy + c, dx : dx + c] for b in batches]


def _init_configs(config: TrainConfig, kit: Kit, inj_cfg, det_cfg):
    """The architectures of ``config.init_kit``, whose weights training starts from.

    A v1 kit can seed a v2 kit: the weights carry over, the binding is this run's.
    """
    if kit.detector is None:
        raise ConfigError(f"{config.init_kit}: an injector-only kit cannot seed training")
    if kit.num_bits != config.num_bits:
        raise ConfigError(
            f"{config.init_kit} has {kit.num_bits}-bit codes but training asks for {config.num_bits}"
        )
    # The mask's contrast floor stays the seed kit's unless the run sets one (binding_floor).
    keep = ("binding", "binding_cell", "binding_channels")
    inj = dataclasses.replace(kit.injector.config, **{k: getattr(inj_cfg, k) for k in keep})
    det = dataclasses.replace(
        kit.detector.config, **{k: getattr(det_cfg, k) for k in (*keep, "highpass_sigma")}
    )
    return inj, det


def _load_init_weights(
    kit: Kit, name: str, injector: nn.Module, detector: nn.Module, *, with_key: bool = False
) -> None:
    """Copy ``kit``'s learned parameters, and with ``with_key`` its keyed buffers too.

    Without ``with_key`` the keyed buffers (carriers, mask) stay this run's. ``name`` is the
    kit's name in messages.
    """
    for src, dst in ((kit.injector, injector), (kit.detector, detector)):
        params = dict(src.named_parameters())
        missing = sorted(set(dict(dst.named_parameters())) - set(params))
        if missing:
            raise CheckpointError(f"{name}: weights lack {missing[:5]} for this architecture")
        if with_key:
            params = src.state_dict()
        dst.load_state_dict(params, strict=False)
    logger.info(
        "W and F start from the weights of %s%s", name, " and keep its key" if with_key else ""
    )


def calibration_images(
    val_sources: list, *, num: int, work_size: int, seed: int, min_size: int = 0
) -> list[torch.Tensor]:
    """``num`` clean validation images: random crops of several sizes at random scales.

    Sizes below ``min_size`` (the kit's tile size) are left out: the thresholds speak for
    images at least one tile large, and smaller ones are documented as uncalibrated.
    """
    pool = ImagePool(val_sources, max_side=2 * work_size)
    gen = torch.Generator().manual_seed(seed + 12345)
    sizes = [s for s in CALIBRATION_SIZES if min_size <= s <= work_size] or [work_size]
    images: list[torch.Tensor] = []
    per_size = math.ceil(num / len(sizes))
    for size in sizes:
        images += list(RandomCrops(pool, size).sample(per_size, gen))
    return images[:num]


def source_names(sources: list) -> list[str]:
    """A unique, readable name per calibration source: a file's stem, else ``photoN``."""
    names: list[str] = []
    for i, src in enumerate(sources):
        base = Path(src).stem if isinstance(src, (str, Path)) else f"photo{i}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def whole_image_strata(
    kit: Kit, whole: dict[str, list[torch.Tensor]], sizes: list[int]
) -> tuple[dict[str, list[torch.Tensor]], int]:
    """Group images scored whole by (size stratum, source): ``"32px:ddpm-samples"``.

    Each image goes to the largest calibration size not above its shorter working side, the
    stratum detection will read for it. Returns the groups and how many images were left out
    for being smaller than every calibrated size.
    """
    groups: dict[str, list[torch.Tensor]] = {}
    too_small = 0
    for label, images in whole.items():
        for img in images:
            side = min(fitted_size(img.shape[-2], img.shape[-1], kit.work_size))
            fits = [s for s in sizes if s <= side]
            if not fits:
                too_small += 1
                continue
            groups.setdefault(f"{max(fits)}px:{label}", []).append(img)
    return groups, too_small


@torch.inference_mode()
def _keep_norm_where_it_separates(
    kit: Kit,
    clean: list[torch.Tensor],
    reads: torch.Tensor,
    sides: list[int],
    *,
    seed: int,
    per_size: int = 100,
) -> None:
    """Per calibration size, keep the scale norm only where it detects more signed crops at
    FPR 1e-3 than the raw maximum does, both thresholds fitted on these clean reads; elsewhere
    the size reads raw (an empty norm). Why: measured on the robust kit, standardising helped
    at 256 and 512 px and hurt at 128-191 px (BENCHMARKS.md, stop 34); this decides on the
    validation crops, not on the photos a benchmark judges.
    """
    gen = torch.Generator().manual_seed(seed + 777)
    sides_t = torch.as_tensor(sides)
    chosen: dict[int, dict[float, tuple[float, float]]] = {}
    for side, norm in kit.scale_norm.items():
        if not norm:  # too few reads of some scale at this size: it reads raw
            chosen[side] = {}
            continue
        idx = torch.nonzero(sides_t == side).flatten().tolist()
        signed = []
        for i in idx[:per_size]:
            bits = torch.randint(0, 2, (kit.num_bits,), generator=gen).tolist()
            code = int("".join(str(b) for b in bits) or "0", 2)
            signed.append(round8(kit.sign(clean[i], code=code)))
        signed_reads = kit.scale_logits(signed)
        rates = {}
        for label, candidate in (("raw", {}), ("norm", norm)):
            kit.scale_norm = {side: candidate}
            thr = Calibration.fit(
                kit.combine_scales(reads[idx], side=side)[:, 0].numpy()
            ).threshold(1e-3)[0]
            rates[label] = float(
                (kit.combine_scales(signed_reads, side=side)[:, 0] >= thr).float().mean()
            )
        chosen[side] = norm if rates["norm"] > rates["raw"] else {}
        logger.info("scale norm at %d px: signed detected raw %.3f, standardised %.3f -> %s",
                    side, rates["raw"], rates["norm"], "standardised" if chosen[side] else "raw")  # fmt: skip
    kit.scale_norm = chosen


def calibrate(
    kit: Kit,
    val_sources: list,
    *,
    num: int,
    seed: int,
    min_size: int | None = None,
    whole: dict[str, list[torch.Tensor]] | None = None,
    processed: list[Attack] | None = None,
    scale_norm: bool = False,
    by_source: bool = False,
    names: list[str] | None = None,
    synthetic: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Set the kit's calibration from clean validation images; measure signed ones too.

    ``scale_norm`` (kits with several ``detect_scales``): also fit each scale's clean mean and
    spread per size, so the search compares scales as z-scores (:meth:`Kit.combine_scales`),
    kept at each size only where it detects more signed validation crops than the raw maximum.
    Off by default: on the robust kit a norm at every size raised own-threshold detection at
    256 and 512 px but lowered it where the working side is 128-191 px (e.g. 3:2 photos),
    BENCHMARKS.md, stop 34.

    ``whole``: more clean images by source name, scored as they are (e.g. unsigned samples of
    public generators, whose score tails measured fatter than photo crops' on ``small-v2``).
    ``processed``: attacks (``advsig.attacks``) applied to every clean crop, each processing
    a source of its own (e.g. ``jpeg75``): the kit will judge JPEG-compressed, resized and
    re-exposed clean photos, whose score tails are not the unprocessed crops' (one clean crop
    of 64 crossed ``base-v2-odd7``'s threshold after noise 0.02 and another after brightness
    1.3). Each source gets its own stratum per size and decisions take the worst case, so the
    stated false-positive rate holds for every source measured, not only for their mix.
    ``by_source``: every validation source (photo) gets ``num / len(val_sources)`` crops and a
    stratum of its own per size (and per processing), named by ``names`` (default: file stems).
    Why: clean tails differ by photo; on ``runs/robust-v2`` two grey, smooth photos, one in the
    val split and one in the test split, peaked 0.8 logits above the rest (stop 37), so a
    threshold fitted on the val mix did not hold on the test photos. The worst photo decides.
    ``synthetic``: also crop that many procedural flat images (:mod:`advsig.data.synthetic`;
    as many crops as one photo gets), a source named ``synthetic``. Why: flat content read
    with an odd score gives exactly 0, above a threshold fitted on photos alone (stop 38).
    ``cache_dir``: keep each scored stage there (:class:`ScoreCache`), so that a rerun after
    an interruption scores only what is left; the caller removes it once the kit is written.
    ``progress``: a bar over the stages (unprocessed crops, then each processing).
    Signed images are rounded to 8 bits, as they would be once saved.
    """
    min_size = min_size if min_size is not None else (kit.tile_size or 0)
    if by_source:
        names = names or source_names(val_sources)
        if len(names) != len(val_sources):
            raise ConfigError(f"{len(names)} names for {len(val_sources)} calibration sources")
        groups = [(name, [src]) for name, src in zip(names, val_sources)]
    else:
        groups = [(None, list(val_sources))]
    if synthetic:
        # Another seed than training's (TrainConfig.synthetic_fraction draws from ``seed``).
        flat = synthetic_images(synthetic, 2 * kit.work_size, seed=seed + SYNTHETIC_CAL_SEED)
        groups.append(("synthetic", flat))
    clean, origin = [], []
    for i, (name, sources) in enumerate(groups):
        share = math.ceil(num / len(val_sources)) if name == "synthetic" or by_source else num
        crops = calibration_images(
            sources, num=share, work_size=kit.work_size, seed=seed + 7919 * i, min_size=min_size
        )
        clean += crops
        origin += [name] * len(crops)
    bar = tqdm(total=1 + len(processed or []), desc="calibrate", unit="stage", disable=not progress)
    bar.set_postfix_str(f"{len(clean)} clean crops")
    cache = None  # a fitted scale norm changes every score: not cached
    if scale_norm and len(kit.detect_scales) > 1:  # standardise each scale on these clean reads
        reads = kit.scale_logits(clean)  # (N, S, 1 + num_bits)
        sides = [min(fitted_size(*img.shape[-2:], kit.work_size)) for img in clean]
        kit.scale_norm = None
        try:
            kit.fit_scale_norm(reads, sides)
            _keep_norm_where_it_separates(kit, clean, reads, sides, seed=seed)
        except ConfigError as exc:
            logger.warning("the scale search stays unstandardised: %s", exc)
        clean_scores = torch.cat([
            kit.combine_scales(reads[i : i + 1], side=sides[i]) for i in range(len(clean))
        ])[:, 0].numpy()  # fmt: skip
    else:
        kit.scale_norm = None
        if cache_dir is not None:
            # The crops themselves, their sources (strata) and the processings' order (their
            # random draws are replayed in that order).
            recipe = {
                "crops": images_digest(clean), "origin": origin,
                "processed": [a.label for a in processed or []],
            }  # fmt: skip
            cache = ScoreCache(cache_dir, kit_fingerprint(kit, recipe))

        def score_clean() -> list[float]:
            return kit.logits(clean)[:, 0].tolist()

        clean_scores = np.asarray(cache.get("clean", score_clean) if cache else score_clean())
    bar.update()
    strata: dict[str, list[float]] = {}
    for img, score, name in zip(clean, clean_scores, origin):
        key = f"{img.shape[-1]}px" + (f":{name}" if name else "")
        strata.setdefault(key, []).append(float(score))
    sizes = sorted({stratum_size(k) for k in strata})
    whole_summary: dict[str, dict] = {}
    too_small = 0

    def score_sources(sources: dict[str, list[torch.Tensor]], stage: str | None = None) -> None:
        """Score clean images by source into strata; a source's images can go after this.

        ``stage``: the name the scores are cached under (none: not cached).
        """
        nonlocal too_small
        by_key, left_out = whole_image_strata(kit, sources, sizes)
        too_small += left_out

        def compute() -> dict[str, list[float]]:
            return {key: kit.logits(images)[:, 0].tolist() for key, images in by_key.items()}

        scored = cache.get(stage, compute) if cache is not None and stage else compute()
        for key, scores in scored.items():
            size_key, label = key.split(":", 1)
            # A source with too few images of one size for a tail of its own joins the crops.
            strata.setdefault(key if len(scores) >= MIN_STRATUM else size_key, []).extend(scores)
            label = label.split("@", 1)[0]  # a processing's summary pools its photos
            row = whole_summary.setdefault(label, {"num": 0, "score_max": -math.inf})
            row["num"] += len(scores)
            row["score_max"] = max(row["score_max"], max(scores))

    score_sources(dict(whole or {}))
    attack_gen = torch.Generator().manual_seed(seed + 4242)
    for attack in processed or []:  # one processing at a time: 4000 crops x 11 held 20 GB
        if attack.label in (whole or {}):
            raise ConfigError(f"a clean source is already named {attack.label!r}")
        done = [round8(attack(img[None], generator=attack_gen)[0]) for img in clean]
        split = {}  # "jpeg75@moon": one stratum per photo (or synthetic) and size
        for name in dict.fromkeys(origin):
            label = attack.label if name is None else f"{attack.label}@{name}"
            split[label] = [x for x, o in zip(done, origin) if o == name]
        bar.set_postfix_str(attack.label)
        score_sources(split, stage=f"processed-{attack.label}")
        bar.update()
    bar.close()
    if min(len(v) for v in strata.values()) >= MIN_STRATUM:
        kit.calibration = StratifiedCalibration.fit({k: np.array(v) for k, v in strata.items()})
    else:  # too few images per size for a tail each (short test runs): pool them
        kit.calibration = Calibration.fit(np.concatenate([np.asarray(v) for v in strata.values()]))
    at_or_below_zero = [s for s in sizes if kit.bound and kit.threshold(1e-3, size=(s, s)) <= 0]
    if at_or_below_zero:
        # A v2 score reads a flat image as exactly 0 (high-pass x mask is zero): stop 38.
        logger.warning(
            "FPR 1e-3 threshold <= 0 at %s px: this kit flags perfectly flat images there; "
            "calibrate with flat images as well (--synthetic 100)",
            ", ".join(map(str, at_or_below_zero)),
        )
    gen = torch.Generator().manual_seed(seed + 999)
    # Signed crops spread over every photo (by_source orders the crops photo by photo).
    subset = clean[:: max(1, len(clean) // 500)][:500] if by_source else clean[:500]
    psnrs, hits, bit_accs = [], {f: [] for f in STANDARD_FPRS}, []
    for img in subset:
        bits = torch.randint(0, 2, (kit.num_bits,), generator=gen).float()
        code = int("".join(str(int(b)) for b in bits.tolist()) or "0", 2)
        signed = (kit.sign(img, code=code) * 255).round() / 255  # (3, h, w)
        psnrs.append(-10 * math.log10(max(F.mse_loss(signed, img).item(), 1e-12)))
        out = kit.logits(signed)[0]
        for f in STANDARD_FPRS:
            hits[f].append(float(out[0]) >= kit.threshold(f, size=tuple(img.shape[-2:])))
        if kit.num_bits:
            bit_accs.append(((out[1:] > 0).float() == bits).float().mean().item())
    return {
        "num_clean": len(clean),
        "num_signed": len(subset),
        "psnr_db_mean": float(np.mean(psnrs)),
        "psnr_db_min": float(np.min(psnrs)),
        "tpr": {f"{f:g}": float(np.mean(v)) for f, v in hits.items()},
        "bit_accuracy": float(np.mean(bit_accs)) if bit_accs else None,
        "clean_score_max": float(np.max(clean_scores)),
        **({"whole": whole_summary, "whole_too_small": too_small} if whole_summary else {}),
        **({"processed": [a.label for a in processed]} if processed else {}),
        **({"by_source": sorted(set(origin))} if by_source else {}),
        **({"synthetic": synthetic} if synthetic else {}),
        **({"threshold_at_or_below_zero_px": at_or_below_zero} if at_or_below_zero else {}),
    }
