"""Inference precision: where W and F may run their convolutions in bfloat16.

Why: on hardware with native bfloat16 (x86 CPUs with AVX512-BF16 or AMX, recent GPUs) the
kit's convolutions run about twice as fast in it. For signing the difference is below the 8-bit
output's resolution (measured on ``robust-v2``, 128 held-out crops of 256 px: 0.5% of output
pixels differ by one level, PSNR, scores and bits unchanged; BENCHMARKS.md, stop 40), so
signing uses it wherever it is native (``"auto"``). Detection stays in float32 unless asked:
the thresholds were fitted on float32 scores, and bfloat16 moves a score by up to ~0.2.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from advsig.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively (so faster, not emulated)."""
    return _native_bf16(torch.device(device).type)


@functools.cache  # asked once per batch by Kit.sign; the hardware does not change
def _native_bf16(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        # Private but stable since torch 2.0; absent means we cannot tell, so no.
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool((probe and probe()) or (amx and amx()))
    return False


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ConfigError naming them."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"fp32"`` or ``"bf16"``: ``"auto"`` becomes bf16 where it is native on ``device``."""
    if check_precision(precision) == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """A context in which convolutions run at ``precision`` (resolved for ``device``)."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
