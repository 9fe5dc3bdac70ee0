"""No-box forgery and removal: lift a signature from signed images, stamp it on others.

The attacker of the threat model holds signed images (a signed generator's samples, or images
a publisher released), never W or F. Everything here needs nothing else:

- residual estimates: the oracle ``signed - clean`` (an upper bound: the attacker rarely has
  the clean original) and the high-pass estimate ``signed - blur(signed)`` (needs nothing);
- ``transplant``: one estimate added to other images, at a stated PSNR;
- averaging: the mean of K estimates (K = 1, 10, 100, 1000), added for forgery or subtracted
  for removal; on a fixed-pattern signature the mean converges to the pattern itself;
- ``OneImageForger``: a small network trained on one signed image to predict the signature
  from the image's content (its residual from its own denoised self), then applied to clean
  images: the attack that defeats signatures which depend on content in a learnable way.

All functions take and return float (B, 3, H, W) in [0, 1]; outputs are rounded to 8 bits as a
forger's saved files would be. Randomness only through explicit generators.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from advsig.errors import ConfigError
from advsig.modules.binding import highpass


def round8(images: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid, as saving a PNG does."""
    return torch.round(images.clamp(0, 1) * 255) / 255


def oracle_residuals(signed: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """``signed - clean`` (B, 3, H, W): the exact signature, given the clean originals."""
    if signed.shape != clean.shape:
        raise ConfigError(f"signed {tuple(signed.shape)} and clean {tuple(clean.shape)} differ")
    return signed - clean


def highpass_residuals(signed: torch.Tensor, *, sigma: float = 1.0) -> torch.Tensor:
    """``signed - gaussian_blur(signed, sigma)`` (B, 3, H, W): needs no original."""
    return highpass(signed, sigma)


def fit_to(residual: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A (3, h', w') residual cut (top-left) or tiled to (3, h, w).

    Why the top-left: kits anchor their tiles, and so the signature's layout, there.
    """
    rh, rw = residual.shape[-2:]
    reps = (1, math.ceil(h / rh), math.ceil(w / rw))
    return residual.repeat(*reps)[:, :h, :w]


def scale_to_psnr(
    perturbation: torch.Tensor,
    psnr: float,
    *,
    constant_scale: bool = False,
    per_image: bool = False,
) -> torch.Tensor:
    """``perturbation`` (…, 3, H, W) rescaled so its RMS matches ``psnr`` dB on [0, 1] images.

    ``constant_scale``: no gradient flows through the scale (training's attack views: a
    rescaling, not something to learn through). ``per_image``: each (3, H, W) slice is
    rescaled on its own, as an attacker rescales each estimate (a flat image's faint
    high-pass, rescaled, is nearly its pure signature).
    """
    dims = (-3, -2, -1) if per_image else tuple(range(perturbation.dim()))
    rms = perturbation.square().mean(dim=dims, keepdim=True).add(1e-20).sqrt()
    if constant_scale:
        rms = rms.detach()
    return perturbation * (10 ** (-psnr / 20) / rms)


def transplant(
    targets: torch.Tensor, residual: torch.Tensor, *, alpha: float = 1.0, psnr: float | None = None
) -> torch.Tensor:
    """``targets + alpha * residual`` (residual (3, h, w), fitted to each target), 8-bit.

    With ``psnr``, the residual is first rescaled to that strength (dB), so forgeries are
    compared at a stated visibility whatever the estimate's own energy. ``alpha=-1`` removes.
    """
    est = fit_to(residual, *targets.shape[-2:]).to(targets.device)  # (3, H, W)
    if psnr is not None:
        est = scale_to_psnr(est, psnr)
    return round8(targets + alpha * est)


def average_residual(residuals: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Mean (3, h, w) of K residuals, cut to their common top-left region."""
    if len(residuals) == 0:
        raise ConfigError("averaging needs at least one residual")
    h = min(int(r.shape[-2]) for r in residuals)
    w = min(int(r.shape[-1]) for r in residuals)
    total = torch.zeros(3, h, w)
    for r in residuals:
        total += r[:, :h, :w].float().cpu()
    return total / len(residuals)


def mean_pairwise_cosine(residuals: torch.Tensor) -> float:
    """Mean cosine similarity between the flattened residuals of different images, (B, …)."""
    flat = residuals.flatten(1).double()
    if len(flat) < 2:
        raise ConfigError("cosine similarity across images needs at least two residuals")
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-20)
    sims = flat @ flat.T
    n = len(flat)
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


# ---------------------------------------------------------------------- one-image forger
@dataclass(frozen=True)
class ForgerConfig:
    """The one-image forger: a small dilated CNN and its training budget."""

    channels: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    denoise_sigma: float = 1.0
    steps: int = 400
    crop: int = 64
    batch_size: int = 8
    lr: float = 2e-3


class OneImageForger(nn.Module):
    """Learns ``residual = f(denoised image)`` from one signed image, then forges with it.

    The target is the signed image minus its blurred self (the attacker's denoiser), the input
    the blurred image: the network learns what signature goes with which content. Receptive
    field: 2 * sum(dilations) + 1 pixels (31 by default), several content-mask cells wide.
    """

    def __init__(self, config: ForgerConfig = ForgerConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        layers: list[nn.Module] = []
        ch = 3
        for d in config.dilations:
            layers += [nn.Conv2d(ch, c, 3, padding=d, dilation=d), nn.SiLU()]
            ch = c
        layers.append(nn.Conv2d(ch, 3, 1))
        self.net = nn.Sequential(*layers)

    def denoise(self, images: torch.Tensor) -> torch.Tensor:
        return images - highpass(images, self.config.denoise_sigma)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The predicted signature (B, 3, H, W) for images (B, 3, H, W)."""
        return self.net(self.denoise(images) * 2 - 1) * 0.05

    def fit(self, signed: torch.Tensor, *, generator: torch.Generator) -> OneImageForger:
        """Train on one signed image (3, H, W) with random crops; returns self."""
        cfg = self.config
        if signed.dim() != 3:
            raise ConfigError(
                f"the one-image forger trains on one (3, H, W) image, got {tuple(signed.shape)}"
            )
        h, w = signed.shape[-2:]
        crop = min(cfg.crop, h, w)
        target_all = highpass(signed[None], cfg.denoise_sigma)[0]  # (3, H, W)
        opt = torch.optim.Adam(self.parameters(), lr=cfg.lr)
        self.train()
        for _ in range(cfg.steps):
            ys = torch.randint(0, h - crop + 1, (cfg.batch_size,), generator=generator)
            xs = torch.randint(0, w - crop + 1, (cfg.batch_size,), generator=generator)
            batch = torch.stack([signed[:, y : y + crop, x : x + crop] for y, x in zip(ys, xs)])
            target = torch.stack(
                [target_all[:, y : y + crop, x : x + crop] for y, x in zip(ys, xs)]
            )  # (b, 3, crop, crop)
            # The forger sees only the blurred image, so it must infer the residual from content.
            loss = F.mse_loss(self(batch), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return self.eval()

    @torch.no_grad()
    def forge(self, targets: torch.Tensor, *, psnr: float | None = None) -> torch.Tensor:
        """``targets + f(targets)`` (optionally rescaled per image to ``psnr`` dB), 8-bit."""
        pred = self(targets)  # (B, 3, H, W)
        if psnr is not None:
            pred = torch.stack([scale_to_psnr(p, psnr) for p in pred])
        return round8(targets + pred)
