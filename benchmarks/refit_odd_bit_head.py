"""Refit an odd kit's bit readout for ``b(u) - b(-u)``: the detector's last layer, bit rows only.

F's bit head was trained on ``b(u)`` alone; ``DetectorConfig.odd_bits`` reads ``b(u) - b(-u)``
with the same weights. This fits those rows (a logistic regression on F's pooled features
``phi(u) - phi(-u)``, from the current weights) on signed crops of the *training* photos, each
with a random code, picks the L2 weight on the validation photos, and writes a kit whose only
change is those rows. The score (row 0) and every other weight are untouched, so the
thresholds, and every detection and forgery figure, stay exactly as they were.

    python benchmarks/refit_odd_bit_head.py --kit base-v2-odd --out runs/base-v2-odd-bithead
    python benchmarks/probe_odd_bits.py --kit runs/base-v2-odd-bithead
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
from torch import nn

from advsig.codes.bits import hex_to_bits, random_code
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.errors import OutputError
from advsig.kit import Kit


def signed_features(kit: Kit, split: str, num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(phi(u) - phi(-u), code bits) for ``num`` signed one-tile crops of ``split``'s photos."""
    f, t = kit.detector, kit.tile_size
    pool = ImagePool([img for _, img in embedded_images(split)], max_side=kit.work_size)
    gen = torch.Generator().manual_seed(seed)
    crops = RandomCrops(pool, t).sample(num, gen)
    trunk = f.net[:-1]  # everything up to the pooled features
    feats, bits = [], []
    with torch.inference_mode():
        for batch in crops.split(64):
            code = random_code(kit.num_bits, gen)
            signed = (kit.sign(batch, code=code) * 255).round() / 255
            u = f.features(signed)
            feats.append(trunk(u) - trunk(-u))  # (b, C)
            bits.append(hex_to_bits(code, kit.num_bits)[None].expand(len(batch), -1))
    return torch.cat(feats), torch.cat(bits)


def fit(head: nn.Linear, x: torch.Tensor, y: torch.Tensor, l2: float, steps: int = 300):
    """Bit rows of ``head`` fitted to ``y`` from ``x`` (odd readout: the bias cancels)."""
    w = head.weight[1:].detach().clone().requires_grad_(True)  # (n_bits, C)
    w0 = w.detach().clone()
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(x @ w.T, y)
        loss = loss + l2 * (w - w0).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def accuracy(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((((x @ w.T) > 0).float() == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2-odd")
    ap.add_argument("--out", required=True)
    ap.add_argument("--num-train", type=int, default=8192)
    ap.add_argument("--num-val", type=int, default=2048)
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        raise OutputError(f"{out}: exists; choose a new folder")
    t0 = time.time()
    kit = Kit.from_pretrained(args.kit)
    cfg = kit.detector.config
    if not (cfg.odd_score and cfg.odd_bits):
        raise SystemExit(f"{args.kit}: needs odd_score and odd_bits")
    x, y = signed_features(kit, "train", args.num_train, seed=0)
    xv, yv = signed_features(kit, "val", args.num_val, seed=1)
    head = kit.detector.net[-1]
    current = head.weight[1:].detach()
    print(f"features {tuple(x.shape)} in {time.time() - t0:.0f} s; one tile ({kit.tile_size} px)")
    print(f"current head: train {accuracy(current, x, y):.4f}  val {accuracy(current, xv, yv):.4f}")
    best = (accuracy(current, xv, yv), None, current)
    for l2 in (10.0, 1.0, 1e-1, 1e-2, 1e-3):
        w = fit(head, x, y, l2)
        val = accuracy(w, xv, yv)
        print(f"l2 {l2:g}: train {accuracy(w, x, y):.4f}  val {val:.4f}")
        if val > best[0]:
            best = (val, l2, w)
    val, l2, w = best
    if l2 is None:
        print("no refit beat the current head on the validation photos; nothing written")
        return
    refit = copy.deepcopy(kit)
    with torch.no_grad():
        refit.detector.net[-1].weight[1:] = w
    refit.training = {**kit.training, "bit_head_refit": {
        "from": args.kit, "l2": l2, "num_train": args.num_train, "num_val": args.num_val,
        "val_bit_accuracy_one_tile": val}}  # fmt: skip
    refit.save_pretrained(out)
    print(f"chose l2 {l2:g} (val {val:.4f}); written to {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
