"""A released generator as a signing oracle: can its weights sign a real photo? (about 1 minute)

threat-model.md calls every signed generator an oracle for what it can reproduce. This measures
it on 256 clean 32 px crops of the test photos, at the kit's own FPR 1e-3 threshold: the share
of forged crops flagged, the share carrying the generator's exact code, and their PSNR to the
real crop. Attacks, by family:

- latent: ``round trip`` (the photo encoded and decoded by the signed model, D'(E(x)), at the
  autoencoder's fidelity); ``residual lift`` (x + D'(E(x)) - D(E(x)), the photo itself plus
  the decoder's change, at full fidelity). D is what the attacker can decode with unsigned: a
  signature head's model loaded by plain diffusers (which drops the head), else ``--original``
  (the unsigned decoder; an attacker would have to retrain one, BENCHMARKS.md stop 33).
- pixel: ``low-t estimate`` (the signed UNet's clean estimate of the photo noised to t = 0).

    python benchmarks/probe_generator_oracle.py --model RUN [--original ldm-32]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402

from advsig.attacks.forgery import round8  # noqa: E402
from advsig.bench.metrics import psnr  # noqa: E402
from advsig.codes.bits import hex_to_bits  # noqa: E402
from advsig.generators.base import load_generator  # noqa: E402
from advsig.kit import Kit  # noqa: E402


def _plain_vae(folder: str):
    """The VAE as plain diffusers loads the folder (a signature head is dropped)."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    vae = pipe.components.get("vqvae") or pipe.components.get("vae")
    return vae.eval()


def forgeries(model, x: torch.Tensor, original: str | None) -> dict[str, torch.Tensor]:
    """Attack name -> forged images (N, 3, s, s) in [0, 1]."""
    from advsig.generators.latent import decode_latents, has_signature_head

    with torch.no_grad():
        if model.family == "latent":
            z = model.encode(x)
            signed = model.decode(z)
            out = {"round trip D'(E(x))": signed}
            if has_signature_head(model.vae):
                plain, what = _plain_vae(model.source), "head dropped by diffusers"
            elif original:
                plain, what = load_generator(original).vae.eval(), f"decoder of {original}"
            else:
                return out
            unsigned = decode_latents(plain, z)
            out[f"residual lift x + D'(E(x)) - D(E(x)) ({what})"] = x + (signed - unsigned)
            return out
        if model.family == "pixel":
            from advsig.generators.diffusion_loss import clean_estimate

            t = torch.zeros(len(x), dtype=torch.long)
            noisy = model.scheduler.add_noise(x * 2 - 1, torch.zeros_like(x), t)
            est = clean_estimate(model.scheduler, noisy, model.unet(noisy, t).sample, t)
            return {"low-t estimate (t = 0)": est / 2 + 0.5}
    raise SystemExit(f"{model.family} generators: no oracle attack here yet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the signed generator (folder or name)")
    ap.add_argument("--kit", default="small-v2")
    ap.add_argument("--original", default=None, help="latent: the unsigned model, for its decoder")
    ap.add_argument("--num", type=int, default=256)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = Kit.from_pretrained(args.kit)
    model = load_generator(args.model)
    code = (model.provenance or {}).get("code")
    if not code:
        raise SystemExit(f"{args.model}: no code in its advsig.json; is it signed?")
    size = model.sample_size
    x = round8(torch.stack(targets(size, args.num, 0)))  # (N, 3, s, s)
    threshold = kit.threshold(1e-3, size=(size, size))
    want = hex_to_bits(code, kit.num_bits).bool()

    def row(name: str, images: torch.Tensor) -> None:
        images = round8(images.clamp(0, 1))
        logits = kit.logits(images)  # (N, 1 + bits)
        flagged = logits[:, 0] >= threshold
        exact = flagged & ((logits[:, 1:] > 0) == want).all(dim=1)
        print(f"| {name} | {flagged.float().mean():.3f} | {exact.float().mean():.3f} | "
              f"{psnr(images, x):.1f} |")  # fmt: skip

    print(f"{args.model} (code {code}), kit {args.kit}, {args.num} clean {size} px test crops; "
          f"threshold {threshold:.2f} at FPR 1e-3\n")  # fmt: skip
    print("| forged from | flagged | exact code | PSNR to the photo (dB) |\n|---|---|---|---|")
    row("the clean photo (none)", x)
    row("W(x), the injector itself (ceiling)", kit.sign(x, code=code))
    for name, images in forgeries(model, x, args.original).items():
        row(name, images)


if __name__ == "__main__":
    main()
