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


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs, batch norm), optional stride-2 downsampling."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU(inplace=True)
        if stride != 1 or in_ch != out_ch:
            self.down = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        else:
            self.down = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.act(h + self.down(x))
