"""Can a v2 detector learn to read a signature off its signing grid? Tiny kits, trained three ways.

Why: a crop moves the signing grid by an unknown offset, and the shipped v2 kits read only on
it (``probe_shift.py``); finding the grid again from the carriers does not work at these
strengths (``probe_sync.py``, ``probe_pilot_sync.py``). The other way is a detector that reads
at any phase. The v1 ``robust`` kit learnt that with shifted training windows (and lost its
bits); a v2 kit adds the keyed mask, computed on ``binding_cell`` px cells that a shift also
moves. Seven tiny kits (``preset tiny``, no augmentation, 8 bits, 64 px):

- ``aligned``: F always reads on the signing grid (``shift`` 0);
- ``shift``: F reads a random 64 px window of W's 64 + ``--shift`` px crop, any offset;
- ``shift-cells``: the same at offsets that are multiples of the mask's cell (the mask stays on
  grid, only the carriers' phase moves);
- ``shift-dense``: any offset, with a dense mask (``binding_dense``), which moves with the image;
- ``aligned-dense``: the dense mask read on grid (what the dense mask costs by itself);
- ``shift-dense-odd``: ``shift-dense`` with the odd score ``f(u) - f(-u)`` of the shipped v2
  kits (a phase-free read and an odd one may not go together: ``-u`` is ``u`` with every
  carrier half a period off);
- ``aligned-odd``: the odd score on the grid (whether a tiny kit learns it at all);
- ``dense-from-aligned`` / ``dense-from-aligned-odd``: ``shift-dense`` started from the weights
  (and key) of a kit trained on the grid, ``aligned`` or ``aligned-odd`` in ``--init-dir``
  (odd score off). Why: the shipped robust kit is such a kit; does retraining it to read at
  any phase go faster or slower than training from scratch (stop 44: 800 steps were not enough)?
- ``aligned-32bits`` / ``shift-dense-32bits``: ``aligned`` and ``shift-dense`` with the
  robust kit's 32-bit code instead of 8 bits. Why: a phase-free read splits the signature's
  energy over twice as many keyed carriers as bits; does the code still train at 32 bits?
- ``dense-from-aligned-odd-lr3e-4``: the same at the robust kit's learning rate (3e-4, not 2e-3);
- ``dense-from-aligned-odd-hard``: the same with the robust kit's attacks and negatives
  (photometric attacks on 80% of batches, transplant, lifted and flat negatives, 20% synthetic
  flat crops, trusted positives). Why: those two are what stop 44's robust stage had and these tiny runs lack.

Each is then measured on held-out test crops signed at 64 + ``--shift`` px: windows at offset
(0, 0) and at a random offset, against the same windows of the clean crops (AUC, detected above
every clean window, bit accuracy); and each clean crop carrying the next crop's exact residual
(a transplant; the dense mask is no longer exactly out of W's reach), read at the random
offsets, which should read as clean (AUC 0.5, none above every clean window). Kits go to ``--out``; a variant already trained there is
measured again, not retrained.

    python benchmarks/exp_shift_read.py --steps 600 --out runs/exp-shift
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from advsig.codes.bits import hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.training.presets import preset_config
from advsig.training.trainer import train_signature

VARIANTS = {
    "aligned": dict(shift=0),
    "shift": dict(shift_step=1),
    "shift-cells": dict(shift_step=8),
    "shift-dense": dict(shift_step=1, binding_dense=True),
    "aligned-dense": dict(shift=0, binding_dense=True),
    "shift-dense-odd": dict(shift_step=1, binding_dense=True, odd_score=True),
    "aligned-odd": dict(shift=0, odd_score=True),
    "dense-from-aligned": dict(shift_step=1, binding_dense=True, init="aligned"),
    "dense-from-aligned-odd": dict(shift_step=1, binding_dense=True, init="aligned-odd"),
    "aligned-32bits": dict(shift=0, num_bits=32),
    "shift-dense-32bits": dict(shift_step=1, binding_dense=True, num_bits=32),
    "dense-from-aligned-odd-lr3e-4": dict(
        shift_step=1, binding_dense=True, init="aligned-odd", lr=3e-4
    ),
    "dense-from-aligned-odd-hard": dict(
        shift_step=1,
        binding_dense=True,
        init="aligned-odd",
        augment="photometric",
        augment_ramp=1,
        augment_max=0.8,
        transplant_weight=1.0,
        lifted_negatives=True,
        flat_weight=1.0,
        synthetic_fraction=0.2,
        trusted_positives=True,
    ),  # fmt: skip
}


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Probability that a signed score beats a clean one (ties count half)."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).float().mean() + 0.5 * (diff == 0).float().mean())


def _windows(batch: torch.Tensor, offsets: torch.Tensor, c: int) -> torch.Tensor:
    """The ``c`` px window of each image at its (y, x) offset: (B, 3, c, c)."""
    return torch.stack([s[:, y : y + c, x : x + c] for s, (y, x) in zip(batch, offsets.tolist())])


def measure(kit: Kit, shift: int, num: int) -> dict[str, tuple[float, float, float]]:
    """Per window placement: (AUC, share of signed windows above every clean one, bits)."""
    c = 64
    photos = [img for _, img in embedded_images("test")]
    clean = RandomCrops(ImagePool(photos, max_side=512), c + shift).sample(
        num, torch.Generator().manual_seed(3)
    )
    bits = hex_to_bits(0xA5, kit.num_bits)
    with torch.no_grad():
        res = kit.injector.residual(clean, bits[None].expand(num, -1).float())
    signed = ((clean + res).clamp(0, 1) * 255).round() / 255
    # Each clean crop plus the next crop's exact residual: a transplant must read as clean.
    moved = ((clean + res.roll(1, dims=0)).clamp(0, 1) * 255).round() / 255
    offsets = torch.randint(0, shift + 1, (num, 2), generator=torch.Generator().manual_seed(7))
    out = {}
    placements = (("on grid (0, 0)", torch.zeros_like(offsets)), ("random offset", offsets))
    for name, offs in placements:
        s_out, c_out = kit.logits(_windows(signed, offs, c)), kit.logits(_windows(clean, offs, c))
        above = float((s_out[:, 0] > c_out[:, 0].max()).float().mean())
        bit_acc = float(((s_out[:, 1:] > 0).long() == bits.long()).float().mean())
        out[name] = (auc(s_out[:, 0], c_out[:, 0]), above, bit_acc)
    # The transplant, at the random offsets: AUC against clean (0.5: reads as clean) and the
    # share above every clean window (0: never flagged at a threshold with no false positives).
    t_out = kit.logits(_windows(moved, offsets, c))
    out["transplant, random offset"] = (
        auc(t_out[:, 0], c_out[:, 0]), float((t_out[:, 0] > c_out[:, 0].max()).float().mean()),
        float("nan"),
    )  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--shift", type=int, default=32)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--num-images", type=int, default=256)
    ap.add_argument("--out", default="runs/exp-shift")
    ap.add_argument("--init-dir", help="where the dense-from-* variants find their seed kits")
    args = ap.parse_args()
    print(f"tiny kits, {args.steps} steps, windows of 64 px in crops of {64 + args.shift} px")
    print("| kit | window | AUC | signed above every clean | bits | training |")
    print("|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        out = Path(args.out) / name
        took = "kept"
        if not (out / "config.json").exists():
            start = time.time()
            overrides = {"shift": args.shift, **VARIANTS[name]}
            if "init" in overrides:
                seed_kit = Path(args.init_dir or args.out) / overrides.pop("init")
                overrides |= dict(init_kit=str(seed_kit), odd_score=False)  # key kept
            config = preset_config(
                "tiny", data="embedded", out=str(out), steps=args.steps,
                **{"augment": "none", "seed": 0, **overrides},
            )  # fmt: skip
            train_signature(config)
            took = f"{time.time() - start:.0f} s"
        kit = Kit.from_pretrained(out)
        for window, (a, above, b) in measure(kit, args.shift, args.num_images).items():
            print(f"| {name} | {window} | {a:.3f} | {above:.3f} | {b:.3f} | {took} |")


if __name__ == "__main__":
    main()
