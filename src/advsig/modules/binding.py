"""Content binding: a keyed mask computed from an image's own coarse content.

Why: a signature that is one fixed texture can be lifted from a signed image (or averaged over
many) and stamped onto any real photo. Version 2 signatures multiply the code texture by a mask
M(x) in [-1, 1] that a keyed random network computes from the image's coarse luminance:

    W(x) - x ~ g * T_code * M(x)           (T_code: the code texture, keyed carriers)
    F reads  highpass(y) * M(y)            (demodulation with the suspect image's own mask)

On the image it was made for, the product T * M(x) * M(y) ~ T * M(x)^2 keeps the code texture's
narrow-band structure. Moved onto another image x', it becomes T * M(x) * M(x'), which is a
sign-scrambled, spread-spectrum copy: nothing that F (trained with such transplants as
negatives) accepts. Averaged over K images, sum_i M(x_i) / K tends to E[M] = 0, because the mask
network is an odd function of local contrast (no biases, tanh activations) and natural images
are close to symmetric under contrast inversion: the average converges to nothing usable.

The mask reads only what light processing keeps: luminance pooled over ``cell`` x ``cell``
squares, local contrast normalised by the tile's own contrast (brightness and contrast changes
cancel), so JPEG, mild noise and brightness leave it nearly unchanged, while a different image
gives an unrelated mask. The network's weights derive from the kit's secret key, so without it
an attacker cannot compute M for a photo it wants to frame.
"""

from __future__ import annotations

import functools
import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

_LUMA = (0.299, 0.587, 0.114)
# Networks built without a key (tests, ``create_model``) use this public one; ``advsig train``
# always draws a secret key (see ``advsig.keys``).
DEFAULT_KEY = b"advsig-public-default-key"


def key_generator(key: bytes, purpose: str) -> torch.Generator:
    """A CPU generator seeded from ``key`` and a purpose string (independent streams per use)."""
    digest = hashlib.sha256(key + b"\x00advsig:" + purpose.encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


# Sides up to this use the banded-matrix blur (``_blur_band``; 17 MB of matrix at the limit);
# larger ones the depthwise convolution, which needs no matrix.
_BAND_MAX_SIDE = 2048


def highpass(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images - gaussian_blur(images, sigma)`` per channel, reflect-padded. (B, C, H, W).

    The separable blur is two matrix products with banded matrices rather than two depthwise
    convolutions: the same sums of the same products (a zero in the band adds nothing), but
    on a CPU a 25-tap depthwise convolution ran 9x slower than the product, and was a quarter
    of v2 detection's time (stop 41; ``benchmarks/bench_kit_speed.py --profile``).
    """
    radius = max(1, math.ceil(3 * sigma))
    h, w = images.shape[-2:]
    pad = min(radius, w - 1, h - 1)
    mode = "reflect" if pad == radius else "replicate"
    xp = F.pad(images, (radius, radius, radius, radius), mode=mode)
    if max(h, w) <= _BAND_MAX_SIDE:
        along_w = xp @ _blur_band(w, float(sigma), images.dtype, images.device)
        blurred = _blur_band(h, float(sigma), images.dtype, images.device).T @ along_w
        return images - blurred
    k = _gaussian_taps(float(sigma), images.dtype, images.device)
    c = images.shape[1]
    blurred = F.conv2d(xp, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    blurred = F.conv2d(blurred, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return images - blurred


def _gaussian_taps(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised Gaussian kernel of ``highpass``, ``2 * ceil(3 sigma) + 1`` taps."""
    radius = max(1, math.ceil(3 * sigma))
    xs = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-(xs**2) / (2 * sigma**2))
    return k / k.sum()


@functools.lru_cache(maxsize=32)
def _blur_band(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n + 2 r, n): column j holds the blur's taps on rows j .. j + 2 r, so that a row padded by
    r on each side, times this matrix, is the row blurred."""
    with torch.inference_mode(False):  # cached: usable later by autograd, whoever built it
        return _build_band(n, sigma, dtype, device)


def _build_band(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k = _gaussian_taps(sigma, dtype, device)
    taps = len(k)
    rows = torch.arange(taps, device=device)[:, None] + torch.arange(n, device=device)[None, :]
    band = torch.zeros(n + taps - 1, n, dtype=dtype, device=device)
    band[rows, torch.arange(n, device=device).expand(taps, n)] = k[:, None].expand(taps, n)
    return band


class ContentBinding(nn.Module):
    """Keyed mask M(x): float (B, 3, H, W) in [0, 1] -> (B, 1, H, W) in (-1, 1).

    The random weights are persistent buffers: they travel in the injector's and the detector's
    safetensors, so loading a kit needs no key; training derives them from the key.

    Example:
        >>> m = ContentBinding(cell=16, channels=8, key=b"k" * 32)(torch.rand(2, 3, 96, 96))
        >>> m.shape
        torch.Size([2, 1, 96, 96])
    """

    # Contrast below this (luminance RMS over the tile, in [0, 1] units) counts as flat: the
    # floor keeps a flat tile's mask from amplifying sensor or JPEG noise into random signs.
    contrast_floor = 0.01
    # tanh(gain * z): z has unit-order scale, so most cells are decisively +-1 and the ones near
    # zero (unstable under processing) carry little signature.
    gain = 4.0

    def __init__(
        self,
        *,
        cell: int,
        channels: int,
        key: bytes | None = None,
        persistent: bool = True,
        floor: float = 0.0,
        dense: bool = False,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.floor = float(floor)
        self.dense = dense
        self.register_buffer("conv1", torch.zeros(channels, 1, 3, 3), persistent=persistent)
        self.register_buffer("conv2", torch.zeros(1, channels, 3, 3), persistent=persistent)
        if key is not None:
            self.rekey(key)

    @torch.no_grad()
    def rekey(self, key: bytes) -> None:
        """Draw the mask network's weights from ``key`` (deterministic)."""
        g = key_generator(key, "binding")
        c = self.conv1.shape[0]
        self.conv1.copy_(torch.randn(self.conv1.shape, generator=g) / 3.0)
        self.conv2.copy_(torch.randn(self.conv2.shape, generator=g) / math.sqrt(9 * c))

    @torch.no_grad()
    def set_decoy_of(self, other: ContentBinding) -> None:
        """Make this mask ``other``'s decoy: weights drawn from a digest of ``other``'s weights.

        Why a digest and not the key: a kit holds no key (only the weights it derived), and
        kits saved before decoys existed must get the same decoy every time they load. The
        decoy is no secret: it only references the score, and knowing it says nothing about
        the kit's own mask.
        """
        # Rounded to float16 first, so a kit saved in half precision keeps the same decoy.
        weights = torch.cat([other.conv1.flatten(), other.conv2.flatten()]).detach().cpu()
        self.rekey(b"decoy:" + weights.half().numpy().tobytes())

    def remove_cell_means(self, residual: torch.Tensor) -> torch.Tensor:
        """``residual`` (B, C, H, W) minus its mean over each mask cell (same grid as M).

        Why: the mask is computed from cell means of luminance. A residual with zero cell
        means leaves M(W(x)) = M(x), so W cannot write the mask F demodulates with (and so
        cannot carry a fixed pattern that modulates itself).
        """
        if self.dense:
            # The mean over the cell around every pixel, as a dense mask reads it. Unlike the
            # cell grid's, this does not zero what the mask sees (the box's side lobes pass
            # part of the residual): a dense mask is only nearly out of W's reach.
            return residual - self._box(residual)
        h, w = residual.shape[-2:]
        means = F.avg_pool2d(residual, self.cell, ceil_mode=True)  # (B, C, h', w')
        up = means.repeat_interleave(self.cell, dim=-2).repeat_interleave(self.cell, dim=-1)
        return residual - up[..., :h, :w]

    def _box(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the ``cell`` x ``cell`` square around every pixel (replicate-padded)."""
        lo, hi = (self.cell - 1) // 2, self.cell // 2
        return F.avg_pool2d(F.pad(x, (lo, hi, lo, hi), mode="replicate"), self.cell, stride=1)

    def _neighbours(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """A 3 x 3 convolution over cells: on the cell grid, or at every pixel with taps one
        cell apart (dense). Replicate-padded; ``weight`` (out, in, 3, 3)."""
        step = self.cell if self.dense else 1
        return F.conv2d(F.pad(x, (step,) * 4, mode="replicate"), weight, dilation=step)

    def _neighbourhood_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the 3 x 3 cells around each cell (or pixel, dense); (B, 1, h, w)."""
        if self.dense:
            return self._neighbours(
                x, torch.full((1, 1, 3, 3), 1 / 9, dtype=x.dtype, device=x.device)
            )
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)

    def contrast(self, images: torch.Tensor) -> torch.Tensor:
        """Local contrast of luminance on the cell grid, in [0, 1] units: (B, 1, h', w').

        Dense masks compute it around every pixel instead, (B, 1, H, W): the cell means of a
        shifted image are then the shifted cell means, so a crop keeps the mask it was signed
        with (away from the borders), where the cell grid would move against the image.
        """
        luma = torch.tensor(_LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        gray = (images * luma).sum(dim=1, keepdim=True)  # (B, 1, H, W)
        if self.dense:
            cells = self._box(gray)  # (B, 1, H, W)
        else:
            cells = F.avg_pool2d(gray, self.cell, ceil_mode=True)  # (B, 1, h, w)
        return cells - self._neighbourhood_mean(cells)

    def coarse(self, contrast: torch.Tensor) -> torch.Tensor:
        """``contrast`` normalised by each image's own: (B, 1, ceil(H/c), ceil(W/c))."""
        rms = contrast.square().mean(dim=(2, 3), keepdim=True).add(1e-10).sqrt()  # (B, 1, 1, 1)
        return contrast / (rms + self.contrast_floor)

    def weight(self, contrast: torch.Tensor) -> torch.Tensor:
        """Per-cell trust in the mask, in [0, 1): ``a^4 / (a^4 + floor^4)`` (B, 1, h', w').

        ``a`` is the RMS of the absolute local contrast over 3 x 3 cells. Why: on a flat region
        the mask is set by whatever faint structure lies there, and a transplanted high-pass
        brings its source's structure along with its signature, so on a flat target it sets
        the very mask its signature was modulated by (``benchmarks/probe_one_image_forgery.py``
        on ``base-v2-light``: mask cosine with the source 0.155 on the flattest third of the
        targets, 0.043 with a floor of 0.012). A 40 dB high-pass adds 0.001-0.009 of such
        contrast; photos have a median of 0.03. Below ``floor`` the mask fades, so neither W
        nor F uses such cells. It does not stop F from reading a moved signature's energy
        from the cells that are not flat (docs/signature-v2.md, stop 26).
        """
        a2 = self._neighbourhood_mean(contrast.square())
        if self.floor <= 0:  # no floor: every cell trusted (a flat one would give 0 / 0)
            return torch.ones_like(a2)
        return a2.square() / (a2.square() + self.floor**4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        contrast = self.contrast(images)  # (B, 1, h', w'), read once for the mask and its trust
        c = self.coarse(contrast)
        z = self._neighbours(c, self.conv1)  # (B, C, h', w')
        z = self._neighbours(torch.tanh(z), self.conv2)
        # Interpolate before the tanh: M is then close to +-1 everywhere except along the zero
        # crossings of z (and on flat tiles), so demodulation keeps most of the signal.
        if not self.dense:
            z = F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False)
        mask = torch.tanh(self.gain * z)  # (B, 1, H, W), odd in the image's contrast
        if self.floor > 0:  # even in the contrast, so the mask stays odd
            trust = self.weight(contrast)
            if not self.dense:
                trust = F.interpolate(trust, size=(h, w), mode="bilinear")
            mask = mask * trust
        return mask
