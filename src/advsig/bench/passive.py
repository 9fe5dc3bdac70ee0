"""A passive detector baseline: a small CNN trained on real images vs one generator's samples.

The paper's argument for signatures is that passive detection ("does this look generated?")
learns one generator's artefacts and does not generalise: it separates real images from the
generator it trained on, and falls apart on another generator's samples. This module measures
that: train on real vs generator A, test on held-out real vs A (in distribution) and vs B
(out of distribution), with AUC and TPR at FPR 1e-2 (threshold set on the held-out real images).

Example:
    >>> model = train_passive(real_train, fake_train, config=PassiveConfig(steps=300))
    >>> evaluate_passive(model, real_test, fake_other).auc
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advsig.bench.metrics import auc, tpr_at_fpr
from advsig.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassiveConfig:
    """Training of the passive detector (defaults: ~10 s on one CPU thread at 32x32)."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ConfigError(f"steps must be >= 1 and batch_size >= 2, got {self}")


class PassiveCNN(nn.Module):
    """Three strided conv stages and a linear head: (B, 3, H, W) -> (B,) logit 'generated'."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.head = nn.Linear(4 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 2 - 1)  # (B, 4w, H/8, W/8)
        return self.head(h.mean(dim=(2, 3)))[:, 0]  # (B,)


def load_images(source: torch.Tensor | str | Path, *, size: int = 32) -> torch.Tensor:
    """A (N, 3, size, size) tensor from a tensor (checked) or a folder (centre crops, resized)."""
    if isinstance(source, torch.Tensor):
        if source.dim() != 4 or source.shape[1] != 3:
            raise ConfigError(f"images must be (N, 3, H, W), got {tuple(source.shape)}")
        return source.float()
    from advsig.bench.runner import _center_crop
    from advsig.data.io import list_images, load_image

    files = list_images(source)
    if not files:
        raise ConfigError(f"{source}: no images found")
    return torch.stack([_center_crop(load_image(p).image, size) for p in files])


def train_passive(
    real: torch.Tensor | str | Path,
    fake: torch.Tensor | str | Path,
    *,
    config: PassiveConfig = PassiveConfig(),
    progress: bool = False,
) -> PassiveCNN:
    """Train the CNN to tell ``fake`` (label 1) from ``real`` (label 0); balanced batches."""
    real, fake = load_images(real), load_images(fake)
    if len(real) < 2 or len(fake) < 2:
        raise ConfigError(
            f"need at least 2 real and 2 fake images, got {len(real)} and {len(fake)}"
        )
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # BatchNorm / init: the module's own RNG draws
    model = PassiveCNN(config.width)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.steps)
    half = config.batch_size // 2
    model.train()
    for _ in tqdm(range(config.steps), desc="passive", disable=not progress):
        r = real[torch.randint(len(real), (half,), generator=gen)]  # (half, 3, H, W)
        f = fake[torch.randint(len(fake), (half,), generator=gen)]
        flip = torch.rand(2 * half, generator=gen) < 0.5  # mirrored copies: no free shortcut
        x = torch.cat([r, f])
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.cat([torch.zeros(half), torch.ones(half)])
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def score_passive(model: PassiveCNN, images: torch.Tensor | str | Path) -> np.ndarray:
    """(N,) logits, higher = judged generated."""
    x = load_images(images)
    return np.concatenate([model(x[i : i + 256]).numpy() for i in range(0, len(x), 256)])


@dataclass(frozen=True)
class PassiveResult:
    """Separation of held-out real images from one set of generated ones.

    ``fpr`` is what the threshold reached on the real images (1/num_real is the finest step).
    """

    auc: float
    tpr_at_1e_2: float
    fpr: float
    threshold: float
    num_real: int
    num_fake: int

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_passive(
    model: PassiveCNN, real: torch.Tensor | str | Path, fake: torch.Tensor | str | Path
) -> PassiveResult:
    """AUC and TPR at FPR 1e-2 with the threshold set on the ``real`` scores."""
    r, f = score_passive(model, real), score_passive(model, fake)
    d = tpr_at_fpr(f, r, 1e-2)
    return PassiveResult(auc=auc(f, r), tpr_at_1e_2=d.tpr, fpr=d.fpr, threshold=d.threshold,
                         num_real=len(r), num_fake=len(f))  # fmt: skip


def passive_benchmark(
    train_real: torch.Tensor | str | Path,
    train_fake: torch.Tensor | str | Path,
    test_real: torch.Tensor | str | Path,
    test_fakes: dict[str, torch.Tensor | str | Path],
    *,
    config: PassiveConfig = PassiveConfig(),
    progress: bool = False,
) -> dict[str, PassiveResult]:
    """Train once, then evaluate held-out real vs each named set of generated images."""
    model = train_passive(train_real, train_fake, config=config, progress=progress)
    return {name: evaluate_passive(model, test_real, fake) for name, fake in test_fakes.items()}
