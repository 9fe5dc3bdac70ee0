"""What can learn W's residual on a latent model's outputs: the decoder or a signature head?

Fits, on 512 fixed training latents (encoded embedded crops), the target D(z) + (W(D(z)) -
D(z)) by Adam, full batches of 64, and prints the cosine of the learned change with W's residual
on 64 held-out latents. About 40 s per candidate on 2 CPU cores (BENCHMARKS.md, stop 35):

- ``decoder``: every decoder weight learns (the ``decoder`` recipe without a head);
- ``head-N``: the decoder stays frozen and a ``SignatureHead`` of N convolutions learns.

    python benchmarks/probe_decoder_fit.py --model ldm-32 --kit runs/s33/small-v2-inj --code a5c3
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from advsig.generators.latent import (
    decode_latents,
    decoder_parameters,
    encode_latents,
    load_latent_diffusion,
    with_signature_head,
)
from advsig.generators.position_map import param_groups
from advsig.generators.training_data import Signer, training_crops


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ldm-32")
    ap.add_argument("--kit", required=True, help="the injector to fit")
    ap.add_argument("--code", required=True)
    ap.add_argument("--candidates", default="decoder,head-2,head-3,head-4")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_latent_diffusion(args.model)
    signer = Signer(args.kit, args.code, torch.device("cpu"))
    size = model.sample_size

    def batch(n: int, seed: int):
        x = training_crops("embedded", size, seed=seed).sample(
            n, torch.Generator().manual_seed(seed)
        )
        with torch.no_grad():
            z = encode_latents(model.vae, x)
            raw = decode_latents(model.vae, z, clamp=False)
            shown = raw.clamp(0, 1)
            return z, raw, signer.unrounded(shown) - shown

    (z, raw, want), (zh, rawh, wanth) = batch(512, 3), batch(64, 11)
    print(f"{args.model}: fit on 512 latents, {args.steps} steps, lr {args.lr}; held-out cosine")
    for name in args.candidates.split(","):
        vae = copy.deepcopy(model.vae).requires_grad_(False)
        if name == "decoder":
            params = decoder_parameters(vae)
        else:
            with_signature_head(vae, size, depth=int(name.split("-")[1]))
            params = list(vae.decoder.signature_head.parameters())
        for p in params:
            p.requires_grad_(True)
        groups = [
            g for g in param_groups(vae, args.lr) if any(p.requires_grad for p in g["params"])
        ]
        for g in groups:
            g["params"] = [p for p in g["params"] if p.requires_grad]
        opt = torch.optim.Adam(groups, lr=args.lr)
        start = time.time()
        for _ in range(args.steps):
            idx = torch.randperm(len(z))[:64]
            loss = F.mse_loss(decode_latents(vae, z[idx], clamp=False), raw[idx] + want[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            got = decode_latents(vae, zh, clamp=False) - rawh
        print(f"{name}: held-out cosine {cosine(wanth, got):.3f}, norm ratio "
              f"{float(got.norm() / wanth.norm()):.2f} ({time.time() - start:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
