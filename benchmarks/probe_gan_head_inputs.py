"""What the GAN's signature head lacks: its inputs, or its fit?

Distills ``gan-32`` with the injector alone (``--strategy distill --position-map``, 400 steps at
lr 1e-3, as the demo does) with the head fed different inputs, and flags 256 samples (the z of
``eval-generator --num-images 256``) at the kit's FPR 1e-3 threshold, next to W applied post
hoc to the original's samples (the ceiling). About 2 min per variant on 2 CPU cores
(BENCHMARKS.md, stop 36):

- ``coarse``: the shipped head, on the 8 px features;
- ``fine``: also the last (32 px) layer's features, average-pooled to 8 px with their squares
  (the detail that the 16 and 32 px noise inputs add, which the 8 px features cannot know);
- ``rgb``: also the generator's own output, unshuffled to 8 px (a bound only: such a head is a
  copy of W's mask in the released weights, which advsig does not ship);
- ``clamped``: 8 px features, the head added to the clamped output (so its residual survives
  where G overshoots [0, 1], as W's does on the saved image);
- ``--head-only``: the generator frozen, only the head trains (as the latent decoder recipe);
- ``--target-gain A``: distill toward ``G + A (W(G) - G)``, overshooting W's residual to make up
  for the part the head does not copy (fidelity is printed next to W's own).

    python benchmarks/probe_gan_head_inputs.py --kit runs/s33/small-v2-inj --detector small-v2 \
        --variants coarse,fine,rgb --out runs/gan-head-inputs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import advsig.generators.gan_finetune as gan_finetune
from advsig import load_kit
from advsig.generators.base import load_generator
from advsig.generators.evaluate import flag_statistics
from advsig.generators.finetune import FinetuneConfig, finetune_generator
from advsig.generators.gan import with_signature_head
from advsig.generators.position_map import SignatureHead, param_groups
from advsig.models.modeling_utils import load_weights

EXTRA_CHANNELS = {
    "coarse": lambda ch: 0, "clamped": lambda ch: 0, "fine": lambda ch: 2 * ch[-1],
    "rgb": lambda ch: 48,
}  # fmt: skip


def _forward(variant: str):
    """The StyleGAN's forward with the head reading ``variant``'s inputs."""

    def forward(self, z, classes=None, *, noise=None):
        w = self.mapping(self.mapping_input(z, classes))
        nz = noise if noise is not None else [None] * len(self.layers)
        x = self.layers[0](self.const.expand(len(z), -1, -1, -1), w, nz[0])
        rgb, coarse = self.to_rgb[0](x, w), x
        for i in range(1, len(self.to_rgb)):
            x = self.layers[2 * i](self.layers[2 * i - 1](x, w, nz[2 * i - 1]), w, nz[2 * i])
            coarse = x if i == 1 else coarse  # (B, c_1, 8, 8)
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
            rgb = rgb + self.to_rgb[i](x, w)
        rgb = rgb + self.output_bias
        k = x.shape[-1] // coarse.shape[-1]
        if variant == "fine":
            coarse = torch.cat([coarse, F.avg_pool2d(x, k), F.avg_pool2d(x * x, k)], 1)
        elif variant == "rgb":
            coarse = torch.cat([coarse, F.pixel_unshuffle(rgb, k)], 1)
        elif variant == "clamped":  # the head draws on the clamped image, as W signs it
            rgb = rgb.clamp(-1, 1)
        return rgb + self.signature_head.residual(coarse)

    return forward


def build(model: str, variant: str):
    """``model`` with a signature head reading ``variant``'s inputs (zero at first)."""
    m = with_signature_head(load_generator(model))
    g = m.generator
    if g.config.resolution != 32:
        raise SystemExit("this probe's variants are written for the 32 px demo GAN")
    g.__class__ = type(f"{variant}HeadStyleGAN", (type(g),), {"forward": _forward(variant)})
    ch = g.config.channels
    g.signature_head = SignatureHead(ch[1] + EXTRA_CHANNELS[variant](ch), g.config.resolution)
    return m


def head_only_groups(generator: torch.nn.Module, lr: float) -> list[dict]:
    """Optimizer groups for the head alone; every other generator weight is frozen."""
    for name, p in generator.named_parameters():
        p.requires_grad_(name.startswith("signature_head."))
    return param_groups(generator.signature_head, lr, suffixes=("position_map",))


def overshoot(gain: float) -> None:
    """Make the GAN recipe's target ``G + gain (W(G) - G)`` (its signer, wrapped)."""
    init = gan_finetune.GanRecipe.__init__

    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        sign = self.signer
        if sign is not None:
            self.signer = lambda image: image + gain * (sign(image) - image)

    gan_finetune.GanRecipe.__init__ = wrapped


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gan-32")
    ap.add_argument("--kit", required=True, help="injector-only kit that signs")
    ap.add_argument("--detector", default="small-v2", help="kit that detects (its threshold)")
    ap.add_argument("--code", default="a5c3")
    ap.add_argument("--variants", default="coarse,fine,rgb")
    ap.add_argument("--head-only", action="store_true")
    ap.add_argument("--target-gain", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--num-images", type=int, default=256)
    ap.add_argument("--out", default="runs/gan-head-inputs")
    args = ap.parse_args()
    detector = load_kit(args.detector)
    indices = list(range(args.num_images))
    original = (load_generator(args.model).sample(indices, seed=0) * 255).round() / 255
    posthoc = (load_kit(args.kit).sign(original, code=args.code) * 255).round() / 255
    print(
        f"W post hoc on {args.model}'s samples: {flag_statistics(detector, posthoc, code=args.code)}"
    )
    posthoc_score = detector.logits(posthoc)[:, 0]
    clipped = ((original <= 0) | (original >= 1)).float().mean(dim=(1, 2, 3))  # (N,)
    threshold = detector.threshold(1e-3)
    print(f"  PSNR to the original's samples {psnr(posthoc, original):.1f} dB")
    if args.head_only:
        gan_finetune._head_groups = head_only_groups
    if args.target_gain != 1.0:
        overshoot(args.target_gain)
    for variant in args.variants.split(","):
        tags = ("-head-only" if args.head_only else "") + (
            f"-gain{args.target_gain:g}" if args.target_gain != 1.0 else ""
        )
        out = Path(args.out) / f"{variant}{tags}-{args.steps}"
        if not (out / "generator.safetensors").is_file():
            config = FinetuneConfig(
                model=args.model, out=str(out), strategy="distill", steps=args.steps, lr=1e-3,
                kit=args.kit, code=args.code,
            )  # fmt: skip
            finetune_generator(config, model=build(args.model, variant))
        model = build(args.model, variant)
        load_weights(model.generator, out / "generator.safetensors")
        samples = (model.sample(indices, seed=0) * 255).round() / 255
        print(f"{out.name}: {flag_statistics(detector, samples, code=args.code)}")
        # How close the learned change is to W's residual, and what W itself scores where the
        # distilled model is missed.
        cos = F.cosine_similarity((samples - original).flatten(1), (posthoc - original).flatten(1))
        score = detector.logits(samples)[:, 0]
        missed = (score < threshold).nonzero().flatten()
        print(f"  residual cosine with W's, mean {cos.mean():.3f}; mean score {score.mean():.1f} "
              f"(W post hoc {posthoc_score.mean():.1f}); PSNR to the original's samples "
              f"{psnr(samples, original):.1f} dB; W's own scores where missed: "
              f"{[round(float(v), 1) for v in posthoc_score[missed]]}; share of their values "
              f"clipped at 0 or 1 {[round(float(v), 2) for v in clipped[missed]]} "
              f"(all samples: mean {clipped.mean():.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
