"""Convolutional blocks: FiLM-conditioned residual blocks, position carriers, a ResNet stage."""

from __future__ import annotations

import math

import torch
from torch import nn


class FiLMResBlock(nn.Module):
    """Pre-activation residual block whose features are scaled/shifted by a condition vector.

    The condition carries the bit code, so every block can write code-dependent structure.
    """

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(x))  # (B, C, H, W)
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        h = h * (1 + scale) + shift
        h = self.conv2(self.act(h))
        return self.skip(x) + h


def position_carriers(
    height: int, width: int, periods: tuple[int, ...], *, device=None
) -> torch.Tensor:
    """Sine/cosine maps with the given periods (in pixels) along rows and columns.

    Why: a purely convolutional network cannot draw a pattern on a flat region (sky, walls);
    these fixed carriers give it something to modulate. Returns (1, 4 * len(periods), H, W).
    """
    ys = torch.arange(height, device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    maps = []
    for p in periods:
        wy = 2 * math.pi * ys / p  # (H,)
        wx = 2 * math.pi * xs / p  # (W,)
        maps += [
            torch.sin(wy)[:, None].expand(height, width),
            torch.cos(wy)[:, None].expand(height, width),
            torch.sin(wx)[None, :].expand(height, width),
            torch.cos(wx)[None, :].expand(height, width),
        ]
    return torch.stack(maps)[None]  # (1, 4P, H, W)


def make_norm(kind: str, channels: int) -> nn.Module:
    """``"group"``: GroupNorm with groups of at least 4 channels (per-image statistics, so a
    mixed signed/clean training batch and a single image at inference are normalised alike; one
    channel per group would normalise away the channel energy the code is read from).
    ``"batch"``: BatchNorm, which trains the smallest detectors much faster."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(max(1, min(8, channels // 4)), channels)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs, normalised), optional stride-2 downsampling."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, norm: str = "group") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = make_norm(norm, out_ch)
        self.act = nn.ReLU(inplace=True)
        if stride != 1 or in_ch != out_ch:
            self.down = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), make_norm(norm, out_ch)
            )
        else:
            self.down = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.act(h + self.down(x))


def carrier_frequencies(
    num_components: int,
    band: tuple[float, float],
    seed: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random 2-D frequencies (cycles/pixel) for the code texture.

    Drawn from ``generator`` when given (v2 kits: keyed), else from ``seed`` (v1 kits).
    Returns (freqs (n, 2, 2): per bit, the (fy, fx) used for bit 0 and for bit 1; phases (n,)).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    lo, hi = band
    radius = lo + (hi - lo) * torch.rand(num_components, 2, generator=g)  # (n, 2)
    angle = math.pi * torch.rand(num_components, 2, generator=g)  # (n, 2)
    freqs = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=-1)  # (n, 2, 2)
    phases = 2 * math.pi * torch.rand(num_components, generator=g)
    return freqs, phases


def code_texture(
    bits: torch.Tensor, height: int, width: int, freqs: torch.Tensor, phases: torch.Tensor
) -> torch.Tensor:
    """A texture keyed by the code: bit i adds a sinusoid at ``freqs[i, bit_i]``.

    Why: the detector is translation invariant (convolutions + global pooling), so a bit must
    live in something a shift does not change. The sign of a sinusoid is only a phase, which a
    crop changes; *which frequency* carries energy survives shifts (frequency-shift keying).
    W learns how to shape and hide this texture in each image; F learns to read it.
    bits (B, n) in {0, 1} -> (B, 1, H, W), unit variance.
    """
    dev = bits.device
    ys = torch.arange(height, device=dev, dtype=torch.float32)
    xs = torch.arange(width, device=dev, dtype=torch.float32)
    f = freqs.to(dev)  # (n, 2, 2)
    # Separable evaluation: sin(a + b) = sin a cos b + cos a sin b, a over rows, b over columns.
    a = 2 * math.pi * f[..., 0, None] * ys + phases.to(dev)[:, None, None]  # (n, 2, H)
    b = 2 * math.pi * f[..., 1, None] * xs  # (n, 2, W)
    sin_a, cos_a, sin_b, cos_b = a.sin(), a.cos(), b.sin(), b.cos()
    w1 = torch.stack([1 - bits, bits], dim=-1).float()  # (B, n, 2)
    # sum_i,k w1[b,i,k] * (sin_a[i,k,h] cos_b[i,k,w] + cos_a[i,k,h] sin_b[i,k,w])
    tex = torch.einsum("bik,ikh,ikw->bhw", w1, sin_a, cos_b) + torch.einsum(
        "bik,ikh,ikw->bhw", w1, cos_a, sin_b
    )
    return (tex * math.sqrt(2.0 / bits.shape[1]))[:, None]  # (B, 1, H, W)
