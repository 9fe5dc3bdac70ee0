"""Adversaries with access to the models: white-box PGD, black-box queries, signature estimation.

What each adversary holds:
- white-box (``pgd_evasion``, ``pgd_spoof``): the detector F itself, through the kit's
  differentiable :meth:`advsig.kit.Kit.score_tensor` (same tiling as ``detect``);
- black-box (``square_attack``): only the scores ``kit.detect`` returns, with a query budget;
- estimation (``estimate_signature``): only signed images (or a signed generator's samples),
  no clean originals and no model. The signature repeats across images while content does not,
  so averaging high-pass residuals of K images converges to it.

Every function maps float (B, 3, H, W) in [0, 1] to the same layout, returns images rounded to
8 bits (what an attacker would save), and keeps them within the stated budget exactly when the
inputs are 8-bit. Randomness only through an explicit ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from advsig.attacks.forgery import average_residual, fit_to, highpass_residuals, transplant
from advsig.errors import ConfigError

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # (B, 3, H, W) -> (B,) scores


def quantize_delta(x: torch.Tensor, x0: torch.Tensor, *, eps: float, norm: str) -> torch.Tensor:
    """Round ``x - x0`` to 1/255 steps without leaving the ``norm`` ball of radius ``eps``.

    The result lies on the 8-bit grid; the budget holds exactly when ``x0`` does too.

    Rounds to nearest, then (per image) falls back to rounding towards ``x0`` where that broke
    the budget; rounding towards ``x0`` never grows any pixel's change.
    """
    delta = (x - x0) * 255  # (B, 3, H, W) in 8-bit units
    near, toward = delta.round(), delta.trunc()
    if norm == "linf":
        bound = math.floor(eps * 255 + 1e-6)
        q = near.clamp(-bound, bound)
    else:
        over = near.flatten(1).norm(dim=1) > eps * 255 + 1e-6  # (B,)
        q = torch.where(over[:, None, None, None], toward, near)
    return ((x0 * 255).round() + q).clamp(0, 255) / 255  # on the 8-bit grid


def _check_budget(eps: float, norm: str, steps: int) -> None:
    if norm not in ("linf", "l2"):
        raise ConfigError(f"norm must be 'linf' or 'l2', got {norm!r}")
    if not eps > 0:
        raise ConfigError(f"eps must be > 0, got {eps!r}")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps!r}")


def _pgd(
    score: ScoreFn,
    images: torch.Tensor,
    *,
    direction: float,
    eps: float,
    norm: str,
    steps: int,
    step_size: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Move ``images`` to lower (direction -1) or raise (+1) ``score`` within the budget."""
    _check_budget(eps, norm, steps)
    x0 = images.detach().float()  # (B, 3, H, W)
    alpha = step_size if step_size is not None else 2.5 * eps / steps  # Madry et al.'s rule
    x = x0.clone()
    if generator is not None:  # random start inside the L-inf box (or the L2 ball's cube)
        box = eps if norm == "linf" else eps / math.sqrt(x0[0].numel())
        x = (x0 + (torch.rand(x0.shape, generator=generator) * 2 - 1) * box).clamp(0, 1)
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(score(x).sum(), x)  # (B, 3, H, W)
        with torch.no_grad():
            if norm == "linf":
                x = x + direction * alpha * grad.sign()
                x = torch.min(torch.max(x, x0 - eps), x0 + eps)
            else:
                g = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
                delta = x + direction * alpha * g - x0
                n = delta.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
                x = x0 + delta * (eps / n).clamp(max=1.0)
            x = x.clamp(0, 1).detach()
    return quantize_delta(x, x0, eps=eps, norm=norm)


def pgd_evasion(
    kit,
    signed: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 30,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """White-box removal: PGD lowering F's score of (B, 3, H, W) signed images.

    ``eps`` bounds the change per pixel (``linf``) or per image (``l2``, on [0, 1] values);
    ``generator`` adds a random start. Success: score below ``kit.threshold(fpr)``.

    Example:
        >>> attacked = pgd_evasion(kit, signed, eps=4 / 255)
    """
    return _pgd(kit.score_tensor, signed, direction=-1.0, eps=eps, norm=norm, steps=steps,
                step_size=step_size, generator=generator)  # fmt: skip


def pgd_spoof(
    kit,
    clean: torch.Tensor,
    *,
    eps: float,
    norm: str = "linf",
    steps: int = 30,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """White-box forgery: PGD raising F's score of (B, 3, H, W) clean images above threshold."""
    return _pgd(kit.score_tensor, clean, direction=1.0, eps=eps, norm=norm, steps=steps,
                step_size=step_size, generator=generator)  # fmt: skip


# ---------------------------------------------------------------------- black box
def detect_scores(kit, *, batch_size: int = 16) -> ScoreFn:
    """A score function that only uses ``kit.detect`` (what a detection API returns)."""

    def score(images: torch.Tensor) -> torch.Tensor:
        results = kit.detect(images, batch_size=batch_size)
        return torch.tensor([r.score for r in results], dtype=torch.float32)

    return score


@dataclass
class QueryAttackResult:
    """Outcome of a score-based attack on B images.

    Attributes:
        images: (B, 3, H, W) final images, 8-bit.
        scores: (B,) their last queried scores.
        queries: (B,) queries spent on each image (never above the budget).
        success_query: (B,) query count at which the image first scored below the threshold,
            -1 if it never did.
        snapshots: images as they stood after ``q`` queries, for each requested ``q``.
    """

    images: torch.Tensor
    scores: torch.Tensor
    queries: torch.Tensor
    success_query: torch.Tensor
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)

    def success_rate(self, budget: int) -> float:
        ok = (self.success_query >= 0) & (self.success_query <= budget)
        return float(ok.float().mean())


def _square_fraction(i: int, budget: int, p_init: float) -> float:
    """Square Attack's schedule of the share of pixels changed, rescaled to 10k queries."""
    i = int(i / budget * 10_000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32),
                       (4000, 64), (6000, 128), (8000, 256)):  # fmt: skip
        if i <= bound:
            return p_init / div
    return p_init / 512


def square_attack(
    score: ScoreFn,
    images: torch.Tensor,
    *,
    threshold: float,
    eps: float = 8 / 255,
    queries: int = 1000,
    p_init: float = 0.1,
    generator: torch.Generator | None = None,
    snapshots: Sequence[int] = (),
) -> QueryAttackResult:
    """Square Attack (L-inf, Andriushchenko et al. 2020) lowering ``score`` below ``threshold``.

    Random search: start from vertical stripes of +-eps, then repeatedly set a random square
    (shrinking with the schedule) to +-eps per channel and keep it if the score went down.
    Each image spends at most ``queries`` score calls and stops once below ``threshold``.
    """
    _check_budget(eps, "linf", queries)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    x0 = images.detach().float()  # (B, 3, H, W)
    b, c, h, w = x0.shape
    stripes = torch.randint(0, 2, (b, c, 1, w), generator=gen).float() * 2 - 1
    x = quantize_delta(x0 + eps * stripes, x0, eps=eps, norm="linf")
    best = score(x).float()  # (B,)
    used = torch.ones(b, dtype=torch.long)
    success = torch.where(best < threshold, used, torch.full_like(used, -1))
    taken: dict[int, torch.Tensor] = {}
    wanted = sorted(set(int(q) for q in snapshots))
    for q in wanted:
        if q <= 1:
            taken[q] = x.clone()
    for i in range(1, queries):
        active = ((success < 0) & (used < queries)).nonzero().flatten()
        if len(active):
            p = _square_fraction(i, queries, p_init)
            s = max(1, min(h, w, round(math.sqrt(p * h * w))))
            cand = x[active].clone()
            for k in range(len(active)):
                top = int(torch.randint(h - s + 1, (1,), generator=gen))
                left = int(torch.randint(w - s + 1, (1,), generator=gen))
                signs = torch.randint(0, 2, (c, 1, 1), generator=gen).float() * 2 - 1
                win = x0[active[k], :, top : top + s, left : left + s]
                cand[k, :, top : top + s, left : left + s] = win + eps * signs
            cand = quantize_delta(cand, x0[active], eps=eps, norm="linf")
            new = score(cand).float()
            used[active] += 1
            better = new < best[active]
            x[active[better]] = cand[better]
            best[active[better]] = new[better]
            done = active[best[active] < threshold]
            success[done] = used[done]
        if i + 1 in wanted:
            taken[i + 1] = x.clone()
    for q in wanted:
        taken.setdefault(q, x.clone())
    return QueryAttackResult(x, best, used, success, taken)


# ---------------------------------------------------------------------- estimation
# Signature estimation is the no-box forgery family of ``advsig.attacks.forgery``; these names
# keep the model-access runner's vocabulary.
def highpass(images: torch.Tensor, *, sigma: float = 1.0) -> torch.Tensor:
    """``images - gaussian_blur(images, sigma)``: the fine detail a signature lives in."""
    return highpass_residuals(images, sigma=sigma)


fit_estimate = fit_to


def estimate_signature(images: Sequence[torch.Tensor], *, sigma: float = 1.0) -> torch.Tensor:
    """Mean high-pass residual (3, h, w) of K signed images; needs no clean originals.

    Images of different sizes are cut to their common top-left h x w region.
    """
    if len(images) == 0:
        raise ConfigError("signature estimation needs at least one signed image")
    return average_residual([highpass(img[None].float().cpu(), sigma=sigma)[0] for img in images])


def apply_estimate(images: torch.Tensor, estimate: torch.Tensor, alpha: float) -> torch.Tensor:
    """``images + alpha * estimate`` (tiled to their size), clipped and rounded to 8 bits.

    ``alpha = -1`` removes the signature from signed images; ``alpha = +1`` forges it on clean.
    """
    return transplant(images, estimate, alpha=alpha)
