"""Signature detector F: image -> signature logit and bit logits, any input size."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from advsig.config import DetectorConfig
from advsig.modules.binding import DEFAULT_KEY, ContentBinding, highpass
from advsig.modules.blocks import BasicBlock, make_norm

# ImageNet statistics: the paper's ResNet-34 expects them; harmless for the compact net.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class SignatureDetector(nn.Module):
    """ResNet-style classifier with ``1 + num_bits`` outputs and global pooling.

    Input float32 (B, 3, H, W) in [0, 1] with H, W >= 32. Output logits (B, 1 + num_bits):
    column 0 is the signature score, columns 1: are the bit logits. With a decoy reference
    (``DetectorConfig.score_reference``) the score is the logit read through the kit's mask
    minus the logit read through the decoy mask, computed by the same network in one batch;
    with ``DetectorConfig.odd_score`` each of those logits is ``f(u) - f(-u)``, and with
    ``DetectorConfig.odd_bits`` the bit logits are ``b(u) - b(-u)`` as well.

    Example:
        >>> f = SignatureDetector(DetectorConfig(num_bits=8))
        >>> f(torch.rand(2, 3, 64, 80)).shape
        torch.Size([2, 9])
    """

    min_size = 32

    def __init__(self, config: DetectorConfig, *, key: bytes | None = None) -> None:
        super().__init__()
        self.config = config
        self.binding: ContentBinding | None = None
        self.decoy: ContentBinding | None = None
        if config.binding == "content":
            self.binding = ContentBinding(
                cell=config.binding_cell,
                channels=config.binding_channels,
                key=key if key is not None else DEFAULT_KEY,
                floor=config.binding_floor,
                dense=config.binding_dense,
            )
            if config.score_reference == "decoy":
                # Not saved: derived from the kit's mask whenever that is set or loaded.
                self.decoy = ContentBinding(
                    cell=config.binding_cell,
                    channels=config.binding_channels,
                    persistent=False,
                    floor=config.binding_floor,
                    dense=config.binding_dense,
                )
                self.decoy.set_decoy_of(self.binding)
                self.register_load_state_dict_post_hook(_refresh_decoy)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        out_dim = 1 + config.num_bits
        if config.arch == "resnet34":
            self.net = torchvision.models.resnet34(weights=None, num_classes=out_dim)
            return
        c0 = config.base_channels
        # No strided stem: the signature lives in fine detail, which a stride would alias.
        # Pixel-unshuffle keeps every pixel and makes the first layers patch**2 times cheaper.
        p = config.stem_patch
        stem_norm = make_norm(config.norm, c0)
        if config.stem_eps is not None:  # GroupNorm only (DetectorConfig checks)
            stem_norm.eps = config.stem_eps
        layers: list[nn.Module] = [
            nn.PixelUnshuffle(p) if p > 1 else nn.Identity(),
            nn.Conv2d(3 * p * p, c0, 3, padding=1, bias=False),
            stem_norm,
            nn.ReLU(inplace=True),
        ]
        ch = c0
        for i, (mult, n) in enumerate(zip(config.channel_mult, config.blocks_per_stage)):
            out_ch = c0 * mult
            for j in range(n):
                layers.append(
                    BasicBlock(ch, out_ch, stride=2 if (j == 0 and i > 0) else 1, norm=config.norm)
                )
                ch = out_ch
            if i == 0:
                layers.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1, bias=False))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.config.stem_patch
        h, w = x.shape[-2:]
        if p > 1 and (h % p or w % p):
            # Pixel-unshuffle needs sides divisible by p: reflect-pad the last row/column.
            x = torch.nn.functional.pad(x, (0, (-w) % p, 0, (-h) % p), mode="replicate")
        reads = [self.features(x)]  # what F reads through the kit's mask, then the decoy's
        if self.decoy is not None:
            reads.append(self.features(x, mask=self.decoy))
        if len(reads) == 1 and not self.config.odd_score:
            return self.net(reads[0])  # (B, 1 + num_bits)
        out = self._read(torch.cat(reads)).split(len(x))  # one batch: len(reads) x (B, 1 + n)
        scores = [o[:, :1] for o in out]  # (B, 1) each
        if self.config.odd_score:  # f(u) - f(-u), for the kit's mask and the decoy's alike
            half = len(scores) // 2
            scores = [a - b for a, b in zip(scores[:half], scores[half:])]
        score = scores[0] - scores[1] if len(scores) == 2 else scores[0]
        bits = out[0][:, 1:]  # (B, num_bits), read through the kit's mask
        if self.config.odd_bits:  # b(u) - b(-u): the -u read of the kit's mask, already made
            bits = bits - out[len(out) // 2][:, 1:]
        return torch.cat([score, bits], dim=1)

    def _read(self, u: torch.Tensor) -> torch.Tensor:
        """The network on ``u`` and, with ``odd_score``, on ``-u`` after it: (2B or B, 1 + n).

        Why the stem runs once: pixel-unshuffle and a bias-free convolution are linear, so
        ``stem(-u)`` is exactly ``-stem(u)`` (negation is exact in floating point); the odd
        read then costs the network minus its stem twice, not the whole network.
        """
        if not self.config.odd_score:
            return self.net(u)
        if not self._stem_is_linear():  # torchvision's ResNet, or a network swapped in
            return self.net(torch.cat([u, -u]))
        z = self.net[:2](u)  # pixel-unshuffle, stem convolution (bias=False)
        return self.net[2:](torch.cat([z, -z]))

    def _stem_is_linear(self) -> bool:
        """Whether ``net`` starts with advsig's linear stem: pixel-unshuffle, bias-free conv."""
        net = self.net
        return (
            isinstance(net, nn.Sequential)
            and len(net) > 2
            and isinstance(net[0], (nn.PixelUnshuffle, nn.Identity))
            and isinstance(net[1], nn.Conv2d)
            and net[1].bias is None
        )

    def features(self, x: torch.Tensor, *, mask: ContentBinding | None = None) -> torch.Tensor:
        """What the network reads: normalised pixels (v1), or the image's high-pass demodulated
        by its own keyed content mask (v2; ``mask`` swaps in another, e.g. the decoy).
        (B, 3, H, W)."""
        if self.binding is None:
            return (x - self.mean) / self.std
        m = (mask or self.binding)(x)  # (B, 1, H, W)
        return highpass(x, self.config.highpass_sigma) * m / self.std

    @torch.no_grad()
    def rekey(self, key: bytes) -> None:
        """Derive the content mask from ``key`` (v2 detectors only)."""
        if self.binding is None:
            raise ValueError("a v1 (binding='none') detector has no key")
        self.binding.rekey(key)
        if self.decoy is not None:
            self.decoy.set_decoy_of(self.binding)

    def save_pretrained(self, path: str | Path, *, dtype: torch.dtype | None = None) -> None:
        """Write the weights only (configs live in the kit's ``config.json``)."""
        from advsig.models.modeling_utils import save_weights

        save_weights(self, path, dtype=dtype)


def _refresh_decoy(module: SignatureDetector, incompatible_keys) -> None:
    """After weights load, rederive the decoy mask from the loaded (keyed) mask."""
    module.decoy.set_decoy_of(module.binding)
