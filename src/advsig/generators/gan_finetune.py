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

Both run in the shared loop of :func:`advsig.generators.finetune.finetune_generator`, with an
EMA of G' (the saved generator; ``ema_decay=0`` saves the raw weights), safetensors checkpoints
in ``{out}-work`` and ``resume="latest"``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advsig.generators.gan import DISCRIMINATOR_NAME, GanModel, build_module, with_signature_head
from advsig.generators.position_map import SIGNATURE_HEAD_MAP, param_groups
from advsig.generators.training_data import ImageSet, load_whole, round8, training_crops
from advsig.models.modeling_utils import load_weights

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


def _head_groups(generator: nn.Module, lr: float) -> list[dict]:
    """The generator's optimizer groups: a signature head's map learns faster (as the latent
    decoder's does); the StyleGAN's additive position map keeps the generator's rate (20x did
    nothing for it, BENCHMARKS.md stop 34)."""
    return param_groups(generator, lr, suffixes=(SIGNATURE_HEAD_MAP,))


class GanRecipe:
    """Trains G' (and, for ``data``, the discriminator); the saved generator is G''s EMA."""

    ema_module = "generator"
    progress_keys = ("loss", "d_loss", "g_loss")

    def __init__(self, model: GanModel, config, engine, signer, work: Path) -> None:
        if config.position_map:  # zero modulation: the teacher below still computes G exactly
            model = with_signature_head(model)
        self.model, self.config, self.signer = model, config, signer
        self.adversarial = config.strategy == "data"
        device = engine.device
        model.generator.to(device)
        self.teacher = model.generator.eval().requires_grad_(False)
        student = copy.deepcopy(self.teacher).train().requires_grad_(True)
        d_net, self.d_spec = _named_discriminator(model), model.spec.discriminator
        self.d_given = d_net is not None
        self.modules = {"generator": student}
        if self.adversarial:
            if d_net is None:
                d_net, self.d_spec = _fresh_discriminator(model, config.seed)
            d_net = d_net.to(device).train().requires_grad_(True)
            self.modules["discriminator"] = d_net
            self.source = (
                ImageSet(load_whole(Path(config.data), model.sample_size))
                if config.presigned
                else training_crops(config.data, model.sample_size, seed=config.seed)
            )
            groups = [*_head_groups(student, config.lr), {"params": list(d_net.parameters())}]
            self.optimizer = torch.optim.Adam(groups, lr=config.lr, betas=GAN_BETAS)
        else:
            self.optimizer = torch.optim.Adam(_head_groups(student, config.lr), lr=config.lr)
        self.d_net = d_net  # distill keeps it only to carry it over into the saved folder
        discriminator = None if not self.adversarial else (
            "from the model" if self.d_given else "new (built-in)"
        )  # fmt: skip
        self.extra: dict = {"discriminator": discriminator}

    def prepare(self, engine) -> None:
        acc = engine.accelerator
        if self.adversarial:
            self.student, self.d, self.optimizer = acc.prepare(
                self.modules["generator"], self.modules["discriminator"], self.optimizer
            )
        else:
            self.student, self.optimizer = acc.prepare(self.modules["generator"], self.optimizer)

    def _generate(self, z, cls, noise) -> torch.Tensor:  # (B, 3, s, s), [0, 1] scale, unclamped
        return self.model.forward(z, cls, noise, generator=self.student)

    def step(self, engine, step: int, *, log: bool) -> dict[str, float]:
        config, device = self.config, engine.device
        z, cls, noise = _train_latents(self.model, config.batch_size, engine.data_gen, device)
        if not self.adversarial:
            with torch.no_grad():
                raw = self.model.forward(z, cls, noise, generator=self.teacher)  # unclamped
                image = raw.clamp(0, 1)
                # W(G(z)) as a saved signed image would be; the control only rounds.
                signed = self.signer(image) if self.signer else round8(image)
                # The residual is added to the teacher's output: where G overshoots [0, 1] (a
                # head drawing on the clamped output sees no overshoot), G' is not pulled to the
                # boundary; sampling clamps both the same way.
                target = raw + config.residual_gain * (signed - image)
            loss = F.mse_loss(self._generate(z, cls, noise).float(), target.float())
            engine.update(loss, self.optimizer, self.student.parameters())
            return {"loss": loss.item()} if log else {}
        real = self.source.sample(config.batch_size, engine.data_gen).to(device)  # (B, 3, s, s)
        if self.signer is not None:
            real = self.signer(real)
        real = real * 2 - 1
        d_net = self.d
        # Discriminator step: G's output detached, so only D's parameters get gradients.
        d_net.requires_grad_(True)
        fake = self._generate(z, cls, noise).detach() * 2 - 1
        regularise = R1_GAMMA > 0 and step % R1_EVERY == 0
        if regularise:
            real_logits, r1 = _r1(d_net, real)
        else:
            real_logits, r1 = d_net(real), torch.zeros((), device=device)
        d_loss = F.softplus(d_net(fake)).mean() + F.softplus(-real_logits).mean()
        engine.update(d_loss + R1_GAMMA / 2 * R1_EVERY * r1, self.optimizer, d_net.parameters())
        # Generator step: D frozen, so its parameters keep no gradient and Adam skips them.
        d_net.requires_grad_(False)
        g_loss = F.softplus(-d_net(self._generate(z, cls, noise) * 2 - 1)).mean()
        engine.update(g_loss, self.optimizer, self.student.parameters())
        if not log:
            return {}
        logs = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if regularise:
            logs["r1"] = r1.item()
        return logs

    def save(self, ema: nn.Module, out: Path, provenance: dict) -> None:
        # distill leaves D as it was; it is carried over so a later ``data`` run can start from it.
        d_out = self.modules.get("discriminator", self.d_net)
        spec = dataclasses.replace(
            self.model.spec, discriminator=self.d_spec if d_out is not None else None
        )
        GanModel(ema.cpu(), spec, self.model.source, None, d_out.cpu() if d_out else None).save(
            out, provenance=provenance
        )
