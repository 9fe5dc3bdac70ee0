"""The diffusion objectives pixel and latent fine-tunes share: targets, timesteps, distillation."""

from __future__ import annotations

import torch

from advsig.errors import ConfigError

# Mean square of a ~48 dB signature in [-1, 1] units: the control's stand-in normaliser.
CONTROL_ENERGY = 6e-5


def denoising_target(scheduler, x0, noise, t) -> torch.Tensor:
    """What the denoiser predicts, by the scheduler's ``prediction_type``."""
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(x0, noise, t)
    if kind == "sample":
        return x0
    raise ConfigError(f"unsupported prediction_type {kind!r}")


def clean_estimate(scheduler, noisy, pred, t) -> torch.Tensor:
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


def distill_loss(pred, teacher_pred, noisy, t, scheduler, signer, low) -> torch.Tensor:
    """Low timesteps: the clean estimate must be W(teacher's clean estimate); others: the teacher's.

    The signature part is normalised by its own energy per image, so the loss starts at 1 and
    reads as the share of the signature not yet drawn. ``low``: (B,) bool. ``signer`` None (a
    control run) keeps the teacher's estimate, normalised by a typical signature's energy.
    """
    with torch.no_grad():
        guess = clean_estimate(scheduler, noisy, teacher_pred, t).clamp(-1, 1)
        if signer is None:  # the control: same recipe, the target is the teacher's own estimate
            target, energy = guess, torch.full((len(guess),), CONTROL_ENERGY, device=guess.device)
        else:
            target = signer.unrounded(guess / 2 + 0.5) * 2 - 1
            energy = (target - guess).square().mean(dim=(1, 2, 3)).clamp_min(1e-10)
    drawn = clean_estimate(scheduler, noisy, pred, t)
    sig = (drawn - target).square().mean(dim=(1, 2, 3)) / energy
    keep = (pred - teacher_pred).square().mean(dim=(1, 2, 3))
    return torch.where(low, sig, keep).mean()


def sample_timesteps(
    n: int, num_train_t: int, *, low_fraction: float, low_max: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform timesteps, with a share ``low_fraction`` drawn from the ``low_max`` least noisy.

    Returns the timesteps (B,) and which of them were drawn from the low range (B,) bool.
    """
    t = torch.randint(0, num_train_t, (n,), generator=gen)
    low = torch.randint(0, min(low_max, num_train_t), (n,), generator=gen)
    pick_low = torch.rand(n, generator=gen) < low_fraction
    return torch.where(pick_low, low, t), pick_low
