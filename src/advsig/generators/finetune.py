"""Fine-tune any generator so that everything it samples carries the signature.

:func:`finetune_generator` reads the model's family from its folder, has the family registry
(:mod:`advsig.generators.families`) build that family's recipe (pixel
:mod:`~advsig.generators.pixel_finetune`, latent :mod:`~advsig.generators.latent_finetune`, GAN
:mod:`~advsig.generators.gan_finetune`) and runs it in the one training loop
(:class:`advsig.training.engine.Engine`: Accelerate, EMA, safetensors checkpoints in
``{out}-work``, ``resume="latest"``). It then writes the model's own folder format with
``advsig.json``: what was done (strategy, code, which injector, steps, wall time).

Only the injector is used: the detector stays with its owner (the latent ``decoder`` recipe's
optional ``detector_weight`` is the exception, and says so).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from advsig.errors import ConfigError
from advsig.generators.base import load_generator
from advsig.generators.families import all_strategies, get_family
from advsig.generators.training_data import Signer
from advsig.training.engine import Engine, LoopConfig

logger = logging.getLogger(__name__)

# Every family's strategies (finetune_generator checks the one asked for against the family).
STRATEGIES = all_strategies()


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
            its prediction elsewhere); latent models also ``decoder`` (each family's in
            :mod:`advsig.generators.families`).
        detector_weight: for output-matching recipes (latent ``decoder``), also push the
            kit's detector to read the signature and code on the model's output, with this
            weight (needs a full kit: the owner's detector). Why: a convolutional decoder fed
            a small latent has almost no notion of absolute position, so matching W's nearly
            image-independent pattern by pixel loss alone is slow (measured in BENCHMARKS.md);
            the detector's gradient points at what makes an image read as signed.
        position_map: give the generator what it needs to draw a content-bound signature, whose
            keyed carriers are fixed to the pixel grid and modulated by a mask of the image's
            coarse contrast (convolutions know neither position nor, in their last layers,
            coarse content). Pixel diffusion: a learned per-pixel bias in front of the UNet's
            final GroupNorm, zero at first (BENCHMARKS.md, stop 34). GANs (the built-in
            StyleGAN) and latent ``decoder`` / ``autoencoder``: a
            :class:`~advsig.generators.position_map.SignatureHead`, a per-pixel map modulated
            by the generator's coarse features (the StyleGAN's 8 px features; the VAE
            decoder's mid block, the decoder itself then frozen), zero at first (stop 35).
            A pixel or latent model with a map or head loads whole only through advsig
            (diffusers has no place for it, and drops it).
        residual_gain: GAN ``distill`` learns ``G + residual_gain (W(G) - G)``. Why: the head
            copies W's residual at cosine 0.85, so its signature reads weaker than W's own; in
            one probe on ``gan-32``, 1.3 took 98.8% of 256 samples to 99.2%, at 41.9 dB to the
            original's samples (W's own: 42.9 dB); the demo's run with it: 99.2%, another run
            98.8% (BENCHMARKS.md, stop 36). Other recipes refuse a gain other than 1.
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
    position_map: bool = False
    residual_gain: float = 1.0
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
        if self.strategy in ("data", "distill", "autoencoder") and not self.data:
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
        if self.residual_gain <= 0 or (self.residual_gain != 1 and self.kit is None):
            raise ConfigError("--residual-gain needs a kit and must be > 0")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def signed(self) -> bool:
        return self.kit is not None or self.presigned

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def finetune_generator(config: FinetuneConfig, *, model=None, family: str | None = None) -> Path:
    """Fine-tune ``config.model`` (or the given ``model``) as ``config`` says; returns ``config.out``.

    ``family``: refuse, by name, a model of another family. The saved weights are the EMA's.

    Example:
        >>> finetune_generator(FinetuneConfig(model="ddpm-32", out="runs/ddpm-signed",
        ...                                   kit="small", code="2a5f", steps=600, lr=2e-3))
        PosixPath('runs/ddpm-signed')
    """
    model = model if model is not None else load_generator(config.model)
    if family is not None and model.family != family:
        raise ConfigError(f"{config.model} is a {model.family} generator, not a {family} one")
    spec = get_family(model.family)
    spec.check_strategy(config.strategy)
    spec.check_residual_gain(config.strategy, config.residual_gain)
    out = Path(config.out)
    work = out.with_name(out.name + "-work")  # checkpoints, logs, self-samples
    engine = Engine(
        LoopConfig(
            steps=config.steps, work=work, resume=config.resume, seed=config.seed,
            checkpoint_every=config.checkpoint_every, keep_checkpoints=config.keep_checkpoints,
            log_every=config.log_every, max_grad_norm=config.max_grad_norm,
            ema_decay=config.ema_decay, tracker="finetune",
            description=(
                f"finetune {spec.name} {config.strategy} "
                f"({'signed' if config.signed else 'control'})"
            ),
            hparams=config.to_dict(),
        )
    )  # fmt: skip
    signer = Signer(config.kit, config.code, engine.device) if config.kit else None
    recipe = spec.build_recipe(model, config, engine, signer, work)
    result = engine.run(recipe)
    if engine.is_main_process:
        provenance = {
            "advsig": f"{spec.name}-finetune",
            "base_model": model.source,
            "strategy": config.strategy,
            "signed": config.signed,
            "code": signer.code_hex if signer else None,
            "injector_sha256": signer.fingerprint() if signer else None,
            "presigned_data": config.presigned,
            "steps": config.steps,
            "wall_time_s": round(result.wall_time_s, 1),
            **result.extra,
            "config": config.to_dict(),
        }
        recipe.save(result.ema, out, provenance)
        logger.info(
            "fine-tuned %s model written to %s (%.0f s)", spec.name, out, result.wall_time_s
        )
    engine.wait()
    return out
