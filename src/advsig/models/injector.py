"""Signature injector W: image -> nearly identical image carrying the signature (and a code)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advsig.config import InjectorConfig
from advsig.modules.binding import DEFAULT_KEY, ContentBinding, highpass, key_generator
from advsig.modules.blocks import (
    FiLMResBlock,
    carrier_frequencies,
    code_texture,
    position_carriers,
)

_SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(_SOFTPLUS_ONE) == 1
# Colour-opponent axis for ``residual_chroma`` (orthogonal to gray): the axis with the least
# high-passed photo detail of those measured (green-blue 0.00032, red-green 0.00058, blue-yellow
# 0.00074, gray 0.0162; test photos, sigma 4 high-pass: benchmarks/probe_code.py).
_CHROMA_AXIS = (0.0, 1 / math.sqrt(2), -1 / math.sqrt(2))


def residual_colour(chroma: float) -> torch.Tensor:
    """The fixed colour vector (3,) a luma residual is spread along: per-channel mean square 1,
    a share ``chroma`` of it along ``_CHROMA_AXIS`` and the rest along gray."""
    gray = torch.ones(3)
    axis = torch.tensor(_CHROMA_AXIS)
    # mean over channels of gray**2 is 1, of axis**2 is 1/3: the weights give shares 1-c and c.
    return math.sqrt(1 - chroma) * gray + math.sqrt(3 * chroma) * axis


class SignatureInjector(nn.Module):
    """A UNet that outputs ``x + max_delta * tanh(residual)``, conditioned on an n-bit code.

    Fully convolutional: any input size (sides are reflect-padded to a multiple of
    ``config.size_multiple`` and cropped back). Input and output are float32 (B, 3, H, W) in [0, 1].
    Bits are (B, num_bits) with values in {0, 1}.

    Example:
        >>> w = SignatureInjector(InjectorConfig(num_bits=8))
        >>> signed = w(torch.rand(2, 3, 64, 64), torch.randint(0, 2, (2, 8)))
    """

    def __init__(self, config: InjectorConfig, *, key: bytes | None = None) -> None:
        super().__init__()
        self.config = config
        c = config
        d = c.cond_dim
        if c.num_bits > 0:
            self.code_embed = nn.Sequential(nn.Linear(c.num_bits, d), nn.SiLU(), nn.Linear(d, d))
        else:
            self.code_embed = None
            self.signature_embed = nn.Parameter(torch.randn(d) * 0.1)
        cells = c.patch_size**2
        self.unshuffle = nn.PixelUnshuffle(c.patch_size)
        self.shuffle = nn.PixelShuffle(c.patch_size)
        # One-bit kits still get a fixed texture: the code of 16 zero bits.
        self.num_components = c.num_bits or 16
        self.binding: ContentBinding | None = None
        if c.binding == "content":
            # Keyed carriers travel in the weights file (the key itself stays with the owner).
            self.binding = ContentBinding(
                cell=c.binding_cell, channels=c.binding_channels, floor=c.binding_floor,
                dense=c.binding_dense,
            )  # fmt: skip
            self.register_buffer("carrier_freqs", torch.zeros(self.num_components, 2, 2))
            self.register_buffer("carrier_phases", torch.zeros(self.num_components))
            self.rekey(key if key is not None else DEFAULT_KEY)
        else:
            freqs, phases = carrier_frequencies(self.num_components, c.carrier_band, c.carrier_seed)
            self.register_buffer("carrier_freqs", freqs, persistent=False)
            self.register_buffer("carrier_phases", phases, persistent=False)
        in_ch = 4 * cells + 4 * len(c.periods)
        chans = [c.base_channels * m for m in c.channel_mult]
        self.head = nn.Conv2d(in_ch, chans[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        ch = chans[0]
        skip_chs = []
        for level, out_ch in enumerate(chans):
            blocks = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                blocks.append(FiLMResBlock(ch, out_ch, d))
                ch = out_ch
            self.down_blocks.append(blocks)
            skip_chs.append(ch)
            last = level == len(chans) - 1
            self.downsamples.append(
                nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1)
            )
        self.mid = FiLMResBlock(ch, ch, d)
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for level in reversed(range(len(chans))):
            out_ch = chans[level]
            self.up_blocks.append(FiLMResBlock(ch + skip_chs[level], out_ch, d))
            ch = out_ch
            self.upsamples.append(nn.Identity() if level == 0 else nn.Conv2d(ch, ch, 3, padding=1))
        self.out = nn.Conv2d(ch, 3 * cells, 3, padding=1)
        # Zero init: the network's own contribution starts at nothing...
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # ...while a per-channel skip passes the code texture straight to the residual, so F has
        # a readable code from step 0 and W learns to adapt it to each image. Without a budget
        # the skip starts closed (the paper's identity start).
        # v2 (bound) injectors start from the keyed, content-modulated texture itself: W could
        # otherwise learn a signature of its own that ignores the key and the content (measured:
        # bit accuracy 0.5 after 1000 tiny steps with a closed skip).
        gain = 1.0 if self.binding is not None else 0.0
        self.texture_gain = nn.Parameter(torch.full((3,), gain))
        # The colour a luma residual is spread along (derived from the config, not saved).
        colour = residual_colour(c.residual_chroma).view(1, 3, 1, 1)
        self.register_buffer("residual_colour", colour, persistent=False)

    @torch.no_grad()
    def rekey(self, key: bytes) -> None:
        """Derive the code carriers and the content mask from ``key`` (v2 injectors only)."""
        if self.binding is None:
            raise ValueError("a v1 (binding='none') injector has no key")
        freqs, phases = carrier_frequencies(
            self.num_components, self.config.carrier_band, 0,
            generator=key_generator(key, "carriers"),
        )  # fmt: skip
        self.carrier_freqs.copy_(freqs)
        self.carrier_phases.copy_(phases)
        self.binding.rekey(key)

    def _cond(self, bits: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        if self.code_embed is None:
            return self.signature_embed[None].expand(batch, -1)  # (B, D)
        if bits is None:
            raise ValueError(f"this injector embeds a {self.config.num_bits}-bit code: pass bits")
        if bits.shape != (batch, self.config.num_bits):
            raise ValueError(
                f"bits must be ({batch}, {self.config.num_bits}), got {tuple(bits.shape)}"
            )
        return self.code_embed(bits.to(device=device, dtype=torch.float32) * 2 - 1)  # (B, D)

    def residual(self, x: torch.Tensor, bits: torch.Tensor | None = None) -> torch.Tensor:
        """The signature W(x) - x before clipping: (B, 3, H, W), each value within +-max_delta."""
        b, _, h, w = x.shape
        m = self.config.size_multiple
        ph, pw = (-h) % m, (-w) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x  # (B, 3, H', W')
        hp, wp = xp.shape[-2:]
        cond = self._cond(bits, b, x.device)  # validates bits first
        code_bits = (
            bits if bits is not None else torch.zeros(b, self.num_components, device=x.device)
        )
        texture = code_texture(code_bits.float(), hp, wp, self.carrier_freqs, self.carrier_phases)
        if self.binding is not None:
            texture = texture * self.binding(xp)  # (B, 1, H', W'): bound to this image
        grid = self.unshuffle(torch.cat([xp * 2 - 1, texture], dim=1))  # (B, 4*p*p, H'/p, W'/p)
        gh, gw = grid.shape[-2:]
        carriers = position_carriers(gh, gw, self.config.periods, device=x.device)
        inp = torch.cat([grid, carriers.expand(b, -1, -1, -1)], dim=1)  # (B, 3*p*p + 4P, h, w)
        h_ = self.head(inp)
        skips = []
        for blocks, down in zip(self.down_blocks, self.downsamples):
            for block in blocks:
                h_ = block(h_, cond)
            skips.append(h_)
            h_ = down(h_)
        h_ = self.mid(h_, cond)
        for block, up, skip in zip(self.up_blocks, self.upsamples, reversed(skips)):
            if h_.shape[-2:] != skip.shape[-2:]:
                h_ = F.interpolate(h_, size=skip.shape[-2:], mode="nearest")
            h_ = block(torch.cat([h_, skip], dim=1), cond)
            h_ = up(h_)
        learned = self.shuffle(self.out(F.silu(h_)))  # (B, 3, H', W')
        gain = self.texture_gain[None, :, None, None]
        if self.binding is None:  # v1: a learned residual plus the code texture
            res = learned + gain * texture
        else:
            # v2: W only shapes the keyed, content-modulated texture (where and in which
            # channel its energy goes: a non-negative gain map, 1 at initialisation). Measured
            # with a free additive part instead: W grew a signature of its own that carried
            # neither the key nor the code (bit accuracy 0.5).
            res = gain * texture * F.softplus(learned + _SOFTPLUS_ONE)
            if self.config.residual_luma:
                res = res.mean(dim=1, keepdim=True) * self.residual_colour  # (B, 3, H', W')
            if self.config.residual_sigma > 0:  # keep only what light processing keeps
                res = res - highpass(res, self.config.residual_sigma)
            res = self.binding.remove_cell_means(res)  # W cannot move the mask F will read
        if self.config.target_psnr is not None:
            budget = 10 ** (-self.config.target_psnr / 20)  # RMS in [0, 1] units
            rms = res.square().mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()  # (B, 1, 1, 1)
            # v1 scales down only; v2 pins every image's residual to the budget, so W decides
            # where the energy goes, not how much (measured: with scale-down only, the forgery
            # negatives drove W below its budget, 51 dB for a 48 dB budget, and the 32-bit code
            # stayed at chance for the first 400 steps).
            res = res * (
                budget / rms if self.binding is not None else (budget / rms).clamp(max=1.0)
            )
        d = self.config.max_delta
        res = d * torch.tanh(res / d)  # ~identity for small values, hard bound +-max_delta
        if self.binding is not None:
            # The bound's curvature moves cell means a little where the residual saturates:
            # remove them again, and clip so the hard bound still holds.
            res = self.binding.remove_cell_means(res).clamp(-d, d)
        return res[..., :h, :w]

    def forward(self, x: torch.Tensor, bits: torch.Tensor | None = None) -> torch.Tensor:
        """Signed images (B, 3, H, W) in [0, 1]."""
        return (x + self.residual(x, bits)).clamp(0, 1)

    def save_pretrained(self, path: str | Path, *, dtype: torch.dtype | None = None) -> None:
        """Write the weights only (configs live in the kit's ``config.json``)."""
        from advsig.models.modeling_utils import save_weights

        save_weights(self, path, dtype=dtype)
