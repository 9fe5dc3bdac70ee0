"""A compact StyleGAN2-style generator and a small residual discriminator (the demo's GAN).

The generator keeps what makes StyleGAN2 StyleGAN2: a mapping MLP z -> w, a learned 4x4
constant, 3x3 convolutions modulated by w with weight demodulation, a per-layer noise input
with a learned strength, skip toRGB outputs summed across resolutions, equalised learning rate;
optional class conditioning (an embedding concatenated to z). Left out, because they matter at
scale and not for a 32x32 demo: the FIR up/down-sampling filters, style mixing,
path-length regularisation and truncation.

Noise inputs are explicit: ``forward(z, classes, noise=[...])`` with one (B, 1, r, r) tensor per
styled layer (shapes from :meth:`StyleGANGenerator.noise_shapes`); with ``noise=None`` the
noise is zero, so a call without it is deterministic. Images come out in about [-1, 1].

Example:
    >>> g = stylegan2_small(resolution=32)
    >>> g(torch.randn(2, g.latent_dim)).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from advsig.errors import ConfigError
from advsig.generators.position_map import SignatureHead

_GAIN = math.sqrt(2.0)  # keeps leaky-ReLU activations at unit variance


def _levels(resolution: int, channels: tuple[int, ...], what: str) -> int:
    """Number of resolutions 4, 8, ..., ``resolution``; checks ``channels`` has one per level."""
    if resolution < 4 or resolution & (resolution - 1):
        raise ConfigError(f"{what}: resolution must be a power of two >= 4, got {resolution}")
    levels = int(math.log2(resolution)) - 1
    if len(channels) != levels or any(c < 1 for c in channels):
        raise ConfigError(
            f"{what}: channels needs {levels} positive entries for resolution {resolution} "
            f"(one per resolution 4..{resolution}), got {list(channels)}"
        )
    return levels


@dataclass(frozen=True)
class StyleGANConfig:
    """Generator shape. ``channels[i]`` is the width at resolution ``4 * 2**i``.

    ``output_bias``: a learned (3, r, r) image added to the output, zero at initialisation.
    Why: convolutions are translation-equivariant, so a StyleGAN cannot easily draw a pattern
    fixed to the pixel grid, and a signature residual is mostly such a pattern (measured on
    gan-32 with the small kit: 98% of its energy is the same for every image). Distillation
    learns it in a few hundred steps with this term and barely at all without it.

    ``position_map``: a learned (c, r, r) bias in front of the last styled layer's activation,
    zero at first (what ``advsig finetune --position-map`` added in stops 33-34; it now adds a
    signature head, which signs more, and this stays so those folders load). Why: a
    content-bound (v2) signature is the keyed carriers, fixed to the grid, times the image's own
    mask; the output bias draws only the fixed part. With the map, the activation gates the
    content features by position, and distillation learns the image-dependent part twice as
    well (BENCHMARKS.md, "Stop 33").

    ``signature_head``: a :class:`~advsig.generators.position_map.SignatureHead` on the 8 px
    features, added to the output (its modulation zero at first). Why: the keyed mask is a
    function of the image's coarse contrast, which the 8 px features hold and the last layers'
    3 x 3 convolutions cannot gather (BENCHMARKS.md, "Stop 35").

    ``head_on_clamped``: the head adds its residual to the output clamped to [-1, 1], as W adds
    its residual to the saved image. Why: where G overshoots the range, a residual added to
    the raw output is clamped away when sampling; the GAN's missed samples were its saturated
    ones, and in a probe on ``gan-32`` this took 97.3% of 256 samples to 98.8% (BENCHMARKS.md,
    stop 36). Off for heads saved before it, so they load and sample as they did.
    """

    resolution: int = 32
    latent_dim: int = 64
    w_dim: int = 64
    mapping_layers: int = 2
    channels: tuple[int, ...] = (64, 64, 48, 32)
    num_classes: int | None = None
    mapping_lr_mul: float = 0.01
    output_bias: bool = True
    position_map: bool = False
    signature_head: bool = False
    head_on_clamped: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        _levels(self.resolution, self.channels, "StyleGANConfig")
        if self.latent_dim < 1 or self.w_dim < 1 or self.mapping_layers < 1:
            raise ConfigError("latent_dim, w_dim and mapping_layers must be >= 1")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"num_classes must be None or >= 1, got {self.num_classes}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator shape. ``channels[i]`` is the width at resolution ``resolution / 2**i``."""

    resolution: int = 32
    channels: tuple[int, ...] = (32, 48, 64, 64)
    num_classes: int | None = None
    mbstd_group: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        _levels(self.resolution, self.channels, "DiscriminatorConfig")
        if self.mbstd_group < 1:
            raise ConfigError(f"mbstd_group must be >= 1, got {self.mbstd_group}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


# ---------------------------------------------------------------------- layers
class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights N(0, 1), scaled at run time)."""

    def __init__(
        self, cin: int, cout: int, *, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * _GAIN if self.act else x


class EqualConv(nn.Module):
    """Conv2d with equalised learning rate; ``down`` average-pools 2x first (4x cheaper)."""

    def __init__(self, cin: int, cout: int, k: int, *, bias: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.pad, self.down = 1 / math.sqrt(cin * k * k), k // 2, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution, computed as scale-inputs -> shared conv -> demodulate.

    Why not the grouped-conv form: it is mathematically the same (demodulation is a per-sample,
    per-output-channel scale) and a plain conv is much faster on CPUs. Upsampling layers are
    transposed stride-2 convolutions: unlike interpolation followed by a convolution, they can
    draw patterns locked to the pixel grid (periods 2, 4, 8...), which is what a signature
    residual is made of.
    """

    def __init__(
        self, cin: int, cout: int, k: int, w_dim: int, *, demodulate: bool = True, up: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.scale, self.pad = 1 / math.sqrt(cin * k * k), k // 2
        self.demodulate, self.up = demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # (B, cin)
        weight = self.weight * self.scale  # (cout, cin, k, k)
        x = x * s[:, :, None, None]
        if self.up:  # transposed stride-2 conv, as StyleGAN2 (without its blur filter)
            x = F.conv_transpose2d(
                x, weight.transpose(0, 1), stride=2, padding=self.pad, output_padding=1
            )  # (B, cout, 2h, 2w)
        else:
            x = F.conv2d(x, weight, padding=self.pad)  # (B, cout, h, w)
        if self.demodulate:
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (B, cout)
            x = x * d[:, :, None, None]
        return x


class StyledLayer(nn.Module):
    """Modulated 3x3 conv + scaled noise + bias (+ position map) + leaky ReLU."""

    def __init__(
        self, cin: int, cout: int, w_dim: int, *, up: bool = False, position: int | None = None
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        # (1, cout, r, r): a bias per pixel, zero so the function is unchanged; None: no map.
        position_map = nn.Parameter(torch.zeros(1, cout, position, position)) if position else None
        self.register_parameter("position", position_map)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        x = self.conv(x, w)
        if noise is not None:
            x = x + self.noise_strength * noise  # noise: (B, 1, h, w)
        x = x + self.bias[None, :, None, None]
        if self.position is not None:
            x = x + self.position
        return F.leaky_relu(x, 0.2) * _GAIN


class ToRGB(nn.Module):
    def __init__(self, cin: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


# ---------------------------------------------------------------------- networks
class StyleGANGenerator(nn.Module):
    """z (B, latent_dim) [+ classes (B,) long] -> image (B, 3, r, r) in about [-1, 1]."""

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.latent_dim, self.num_classes, self.resolution = (
            c.latent_dim,
            c.num_classes,
            c.resolution,
        )
        in_dim = c.latent_dim
        if c.num_classes:
            self.embed = nn.Embedding(c.num_classes, c.latent_dim)
            in_dim += c.latent_dim
        dims = [in_dim] + [c.w_dim] * c.mapping_layers
        self.mapping = nn.Sequential(
            *[EqualLinear(a, b, lr_mul=c.mapping_lr_mul, act=True) for a, b in zip(dims, dims[1:])]
        )
        ch = c.channels
        self.const = nn.Parameter(torch.randn(1, ch[0], 4, 4))
        self.layers = nn.ModuleList([StyledLayer(ch[0], ch[0], c.w_dim)])
        self.to_rgb = nn.ModuleList([ToRGB(ch[0], c.w_dim)])
        self._noise_res = [4]
        for i in range(1, len(ch)):
            r = 4 * 2**i
            self.layers.append(StyledLayer(ch[i - 1], ch[i], c.w_dim, up=True))
            pos = r if i == len(ch) - 1 and c.position_map else None
            self.layers.append(StyledLayer(ch[i], ch[i], c.w_dim, position=pos))
            self.to_rgb.append(ToRGB(ch[i], c.w_dim))
            self._noise_res += [r, r]
        if c.output_bias:
            self.output_bias = nn.Parameter(torch.zeros(1, 3, c.resolution, c.resolution))
        if c.signature_head:
            self.signature_head = SignatureHead(ch[1], c.resolution)

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        """Shape (1, r, r) of each styled layer's noise input, per sample."""
        return [(1, r, r) for r in self._noise_res]

    def mapping_input(self, z: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # (B, latent_dim)
        if not self.num_classes:
            return z
        if classes is None:
            raise ConfigError(f"this generator is class-conditional ({self.num_classes} classes)")
        e = self.embed(classes)  # (B, latent_dim)
        e = e * torch.rsqrt(e.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return torch.cat([z, e], dim=1)

    def forward(
        self,
        z: torch.Tensor,
        classes: torch.Tensor | None = None,
        *,
        noise: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        w = self.mapping(self.mapping_input(z, classes))  # (B, w_dim)
        if noise is not None and len(noise) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} noise tensors, got {len(noise)}")
        nz = noise if noise is not None else [None] * len(self.layers)
        x = self.const.expand(len(z), -1, -1, -1)  # (B, c0, 4, 4)
        x = self.layers[0](x, w, nz[0])
        rgb = self.to_rgb[0](x, w)  # (B, 3, 4, 4)
        coarse = x
        for i in range(1, len(self.to_rgb)):
            x = self.layers[2 * i - 1](x, w, nz[2 * i - 1])  # (B, c_i, 2h, 2w)
            x = self.layers[2 * i](x, w, nz[2 * i])
            coarse = x if i == 1 else coarse  # (B, c_1, 8, 8)
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
            rgb = rgb + self.to_rgb[i](x, w)
        if self.config.output_bias:
            rgb = rgb + self.output_bias
        if self.config.signature_head:
            if self.config.head_on_clamped:
                rgb = rgb.clamp(-1, 1)
            rgb = rgb + self.signature_head.residual(coarse)
        return rgb


class _DBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) + a 1x1 downsampling skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = EqualConv(cin, cin, 3)
        self.conv2 = EqualConv(cin, cout, 3, down=True)
        self.skip = EqualConv(cin, cout, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2) * _GAIN
        h = F.leaky_relu(self.conv2(h), 0.2) * _GAIN
        return (h + self.skip(x)) / math.sqrt(2.0)


class StyleGANDiscriminator(nn.Module):
    """image (B, 3, r, r) in [-1, 1] [+ classes] -> realness logit (B,).

    Residual blocks down to 4x4, minibatch standard deviation, then a small head; classes (when
    given to a conditional discriminator) enter by projection, so unlabeled images also work.
    """

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.channels
        self.from_rgb = EqualConv(3, ch[0], 1)
        self.blocks = nn.Sequential(*[_DBlock(a, b) for a, b in zip(ch, ch[1:])])
        self.conv = EqualConv(ch[-1] + 1, ch[-1], 3)
        self.fc = EqualLinear(ch[-1] * 16, ch[-1], act=True)
        self.out = EqualLinear(ch[-1], 1)
        self.embed = nn.Embedding(config.num_classes, ch[-1]) if config.num_classes else None

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        b = len(x)
        g = max(d for d in range(1, min(self.config.mbstd_group, b) + 1) if b % d == 0)
        y = x.reshape(g, b // g, *x.shape[1:])  # (g, b/g, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b/g,)
        y = y.repeat(g)[:, None, None, None].expand(-1, 1, *x.shape[2:])  # (b, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        h = F.leaky_relu(self.from_rgb(x), 0.2) * _GAIN
        h = self.blocks(h)  # (B, c, 4, 4)
        h = F.leaky_relu(self.conv(self._mbstd(h)), 0.2) * _GAIN
        h = self.fc(h.flatten(1))  # (B, c)
        logit = self.out(h)[:, 0]
        if self.embed is not None and classes is not None:
            logit = logit + (self.embed(classes) * h).sum(dim=1) / math.sqrt(h.shape[1])
        return logit


# ---------------------------------------------------------------------- factories
# Factories take JSON-able keyword arguments: an advsig GAN folder names one by import path.
_TINY_G = dict(latent_dim=16, w_dim=32, mapping_layers=2)
_TINY_D = dict(mbstd_group=2)


def _tiny_channels(resolution: int, widths: tuple[int, ...]) -> list[int]:
    levels = max(1, int(math.log2(max(resolution, 4))) - 1)
    return [widths[min(i, len(widths) - 1)] for i in range(levels)]


def stylegan2_small(**kwargs) -> StyleGANGenerator:
    """The demo generator (32x32 by default, about 0.25 M parameters)."""
    return StyleGANGenerator(StyleGANConfig(**kwargs))


def stylegan2_tiny(**kwargs) -> StyleGANGenerator:
    """A few thousand parameters: for tests."""
    res = int(kwargs.get("resolution", 32))
    defaults = dict(_TINY_G, resolution=res, channels=_tiny_channels(res, (16, 16, 8)))
    return StyleGANGenerator(StyleGANConfig(**{**defaults, **kwargs}))


def discriminator_small(**kwargs) -> StyleGANDiscriminator:
    """The demo discriminator (32x32 by default)."""
    return StyleGANDiscriminator(DiscriminatorConfig(**kwargs))


def discriminator_tiny(**kwargs) -> StyleGANDiscriminator:
    res = int(kwargs.get("resolution", 32))
    defaults = dict(_TINY_D, resolution=res, channels=_tiny_channels(res, (8, 16, 16)))
    return StyleGANDiscriminator(DiscriminatorConfig(**{**defaults, **kwargs}))


def default_discriminator(resolution: int, *, tiny: bool = False) -> tuple[str, dict]:
    """(factory import path, kwargs) of the built-in discriminator for ``resolution``."""
    name = "discriminator_tiny" if tiny else "discriminator_small"
    kwargs: dict = {"resolution": resolution}
    if not tiny:
        levels = int(math.log2(resolution)) - 1
        kwargs["channels"] = [min(32 + 16 * i, 64) for i in range(levels)]
    return f"{__name__}:{name}", kwargs
