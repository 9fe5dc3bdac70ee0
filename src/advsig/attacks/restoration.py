"""The paper's restoration attack: learn to map signed images back to their clean originals.

An attacker who can sign images (a signing service, or a publisher's injector-only kit) makes
pairs (W(x), x) and trains a small network M to invert W. The question the benchmark answers is
how few pairs and steps suffice for M's outputs to pass the detector, and at what image quality.

    fit = train_restorer(signed, clean, steps=500)
    attacked = RestorationAttack(fit.model)(held_out_signed)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advsig.attacks.base import Attack, register_attack
from advsig.errors import CheckpointError, ConfigError
from advsig.models.modeling_utils import load_weights, save_weights
from advsig.modules.blocks import BasicBlock
from advsig.utils import write_text_atomic

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class RestorerConfig:
    """M: a two-level residual UNet (``channels`` at full, twice that at half resolution)."""

    channels: int = 32


class Restorer(nn.Module):
    """Predicts a correction added to its input: ``x + net(x)``, in [0, 1].

    The output convolution starts at zero, so an untrained M is the identity and training only
    has to learn the (small) signature, not the image. About 200 k parameters at 32 channels.
    """

    def __init__(self, config: RestorerConfig = RestorerConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        # Runs on 2x2 pixel cells stacked as channels: lossless and 4x cheaper than full size.
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        self.head = nn.Conv2d(12, c, 3, padding=1)
        self.enc = BasicBlock(c, c)
        self.down = BasicBlock(c, 2 * c, stride=2)
        self.mid = BasicBlock(2 * c, 2 * c)
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.dec = BasicBlock(2 * c, c)
        self.out = nn.Conv2d(c, 12, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = F.pad(x, (0, (-w) % 4, 0, (-h) % 4), mode="replicate")  # (B, 3, H', W'), sides % 4
        e = self.enc(self.head(self.unshuffle(xp * 2 - 1)))  # (B, c, H'/2, W'/2)
        m = self.mid(self.down(e))  # (B, 2c, H'/4, W'/4)
        u = self.up(F.interpolate(m, scale_factor=2.0, mode="nearest"))  # (B, c, H'/2, W'/2)
        d = self.dec(torch.cat([u, e], dim=1))
        return (xp + self.shuffle(self.out(d)))[..., :h, :w].clamp(0, 1)

    def save_pretrained(self, path: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into the folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_weights(self, path / WEIGHTS_NAME)
        write_text_atomic(path / CONFIG_NAME, json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Restorer:
        path = Path(path)
        try:
            config = RestorerConfig(**json.loads((path / CONFIG_NAME).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(f"{path / CONFIG_NAME}: not a restorer config ({exc})") from exc
        model = cls(config)
        load_weights(model, path / WEIGHTS_NAME)
        return model.eval()


@dataclass
class RestorerFit:
    """A trained M and its training loss (MSE to the clean crop) at every step."""

    model: Restorer
    losses: list[float] = field(default_factory=list)
    num_pairs: int = 0
    steps: int = 0


def _check_pairs(signed: Sequence[torch.Tensor], clean: Sequence[torch.Tensor]) -> int:
    if len(signed) != len(clean) or not signed:
        raise ConfigError(f"need as many signed as clean images (>0): {len(signed)}, {len(clean)}")
    for i, (s, c) in enumerate(zip(signed, clean)):
        if s.shape != c.shape or s.dim() != 3:
            raise ConfigError(f"pair {i}: shapes differ or are not (3, H, W): {s.shape}, {c.shape}")
    return min(min(s.shape[-2:]) for s in signed)


def train_restorer(
    pairs_signed: Sequence[torch.Tensor],
    pairs_clean: Sequence[torch.Tensor],
    *,
    steps: int = 500,
    batch_size: int = 8,
    crop_size: int = 48,
    lr: float = 2e-3,
    seed: int = 0,
    config: RestorerConfig = RestorerConfig(),
    callback: Callable[[int, Restorer], None] | None = None,
    progress: bool = False,
) -> RestorerFit:
    """Train M on (signed, clean) pairs of (3, H, W) images in [0, 1] to undo the signature.

    Each step takes ``batch_size`` random crops (same place in both images of a pair) of
    ``crop_size`` pixels (at most the smallest side). ``callback(step, model)`` runs after each
    step (1-based), e.g. to evaluate M part-way; the model is in eval mode during the call.
    """
    smallest = _check_pairs(pairs_signed, pairs_clean)
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps!r}")
    crop = min(crop_size, smallest)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Restorer(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = min(50, max(1, steps // 10))  # Adam's first steps would otherwise wreck the image

    def schedule(s: int) -> float:
        return min(1.0, (s + 1) / warmup) * (
            0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps))
        )

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    losses: list[float] = []
    for step in tqdm(range(1, steps + 1), desc="restorer", disable=not progress, leave=False):
        xs, ys = [], []
        for _ in range(batch_size):
            i = int(torch.randint(len(pairs_signed), (1,), generator=gen))
            h, w = pairs_signed[i].shape[-2:]
            top = int(torch.randint(h - crop + 1, (1,), generator=gen))
            left = int(torch.randint(w - crop + 1, (1,), generator=gen))
            xs.append(pairs_signed[i][:, top : top + crop, left : left + crop])
            ys.append(pairs_clean[i][:, top : top + crop, left : left + crop])
        x, y = torch.stack(xs).float(), torch.stack(ys).float()  # (B, 3, crop, crop)
        model.train()
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if callback is not None:
            model.eval()
            callback(step, model)
    model.eval()
    return RestorerFit(model=model, losses=losses, num_pairs=len(pairs_signed), steps=steps)


@register_attack
class RestorationAttack(Attack):
    """Apply a trained restorer M (a :class:`Restorer` or its saved folder). Deterministic."""

    name = "restore"

    def __init__(self, model: Restorer | str | Path) -> None:
        if isinstance(model, str | Path):
            self.source = str(model)
            model = Restorer.from_pretrained(model)
        else:
            self.source = f"Restorer(channels={model.config.channels})"
        self.model = model.eval()

    def params(self):
        return {"model": self.source}

    @property
    def label(self) -> str:
        return "restore"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, *, generator: torch.Generator | None = None):
        if images.dim() == 3:
            return self.apply(images, generator)
        return self.model(images.float())

    @torch.no_grad()
    def apply(self, image, generator):
        return self.model(image[None].float())[0]
